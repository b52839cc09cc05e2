//! Forwarding: a follower sends its clients' requests to the group's master, which runs them
//! as its own and answers with their replies.
//!
//! ```text
//!   follower shard                                      master shard
//!   queue (writes) --flush--> Request{Write, batch} -->  entries join its queue (remote
//!   forward_reads  --flush--> Request{Lease|Lin.}  -->   tokens), or take its read path
//!   Forwarded{entries, batch, to, first, resend}         Remote{replies, missing}
//!        answered <----------- Replies{id, replies} <--  all entries answered
//!        resent / run here <-- Refused{id, reason}  <--  one failed, or not the master
//! ```
//!
//! Exactly once: a forwarded batch carries every write's (client, sequence), so a resend (no
//! answer within [`SHARD_FORWARD_RESEND_TICKS`], a refusal during an election, or this replica
//! becoming the master and running the entries itself) applies at most once wherever it
//! lands; the follower answers each client once, from the first answer. A request without
//! any answer after [`SHARD_FORWARD_GIVE_UP_TICKS`] fails with an error that says its outcome
//! is unknown. Bounds: [`SHARD_FORWARDS_IN_FLIGHT_MAX`] requests per group on a follower
//! (writes beyond wait in the bounded queue), [`SHARD_REMOTE_REQUESTS_MAX`] running on a
//! master (more are refused as overloaded), [`FORWARD_PAYLOAD_BYTES_MAX`] per message.

use super::{
    Consistency, FORWARD_PAYLOAD_BYTES_MAX, Fatal, ForwardMessage, ForwardRefusal, Forwarded,
    ForwardedEntries, Group, GroupId, Machine, NodeId, Phase, Queued, Remote,
    SHARD_FORWARD_GIVE_UP_TICKS, SHARD_FORWARD_RESEND_TICKS, SHARD_FORWARD_RETRY_TICKS,
    SHARD_FORWARDS_IN_FLIGHT_MAX, SHARD_REMOTE_REQUESTS_MAX, Shard, ShardError, Token,
    WireForwardKind, batch_prefix, is_remote,
};

/// The master of `group` when it is another node and this replica is not serving.
pub(super) fn remote_master<M: Machine>(group: &Group<M>) -> Option<NodeId> {
    if group.replica.is_serving() {
        return None;
    }
    group.replica.master().filter(|master| *master != group.replica.node())
}

impl<C> ForwardedEntries<C> {
    /// What the master is asked to do with them.
    fn kind(&self) -> WireForwardKind {
        match self {
            ForwardedEntries::Writes(_) => WireForwardKind::Write,
            ForwardedEntries::Reads(Consistency::Lease, _) => WireForwardKind::Lease,
            ForwardedEntries::Reads(Consistency::Linearizable | Consistency::Stale, _) => {
                WireForwardKind::Linearizable
            }
        }
    }
}

impl<M: Machine> Shard<M> {
    /// Sends the queued writes of group `index` to its master, a batch per request, up to
    /// the in-flight bound (the rest waits in the queue).
    pub(super) fn forward_queue(&mut self, index: usize) {
        loop {
            let Phase::Serving(_, groups) = &mut self.phase else { return };
            let group = &mut groups[index];
            let Some(master) = remote_master(group) else { return };
            if group.queue.is_empty() || group.forwarded.len() >= SHARD_FORWARDS_IN_FLIGHT_MAX {
                return;
            }
            let (count, bytes) = batch_prefix(&group.queue);
            let entries: Vec<Queued<M::Command>> = group.queue.drain(..count).collect();
            group.queued_bytes -= bytes;
            let encoded: Vec<(u64, u64, &M::Command)> =
                entries.iter().map(|q| (q.client, q.sequence, &q.command)).collect();
            let batch = group.machine.encode_batch(&encoded);
            self.start_forward(index, master, ForwardedEntries::Writes(entries), batch);
        }
    }

    /// Sends a new forwarded request of group `index` to `master` and keeps it until answered.
    fn start_forward(
        &mut self,
        index: usize,
        master: NodeId,
        entries: ForwardedEntries<M::Command>,
        batch: Vec<u8>,
    ) {
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        self.next_forward += 1;
        let id = self.next_forward;
        let request = ForwardMessage::Request {
            group: group.id,
            id,
            kind: entries.kind(),
            batch: batch.clone(),
        };
        self.forwards.push((master, request));
        self.stats.forwards_sent += 1;
        let (first, resend) = (self.ticks, self.ticks + SHARD_FORWARD_RESEND_TICKS);
        group.forwarded.insert(id, Forwarded { entries, batch, to: master, first, resend });
    }

    /// Sends this turn's reads of group `index` to its master: one request per consistency.
    pub(super) fn forward_reads(&mut self, index: usize) {
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        if group.forward_reads.is_empty() {
            return;
        }
        let Some(master) = remote_master(group) else {
            // The master changed within the turn: they take this replica's read path again.
            let reads = std::mem::take(&mut group.forward_reads);
            let id = group.id;
            for (consistency, command, token) in reads {
                if let Err(error) = self.read(id, consistency, command, token) {
                    self.replies.push((token, Err(error)));
                }
            }
            return;
        };
        let reads = std::mem::take(&mut group.forward_reads);
        let (lease, linearizable): (Vec<_>, Vec<_>) =
            reads.into_iter().partition(|(consistency, _, _)| *consistency == Consistency::Lease);
        for (consistency, reads) in
            [(Consistency::Linearizable, linearizable), (Consistency::Lease, lease)]
        {
            let Phase::Serving(_, groups) = &mut self.phase else { return };
            let group = &mut groups[index];
            if reads.is_empty() {
                continue;
            }
            let same: Vec<(M::Command, Token)> =
                reads.into_iter().map(|(_, command, token)| (command, token)).collect();
            let encoded: Vec<(u64, u64, &M::Command)> =
                same.iter().map(|(command, _)| (0, 0, command)).collect();
            let batch = group.machine.encode_batch(&encoded);
            self.start_forward(index, master, ForwardedEntries::Reads(consistency, same), batch);
        }
    }

    /// Per tick: gives up on forwarded requests unanswered for too long, runs them here if
    /// this replica became the master, and resends the due ones to the master known now.
    pub(super) fn forward_timers(&mut self, index: usize) {
        let ticks = self.ticks;
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        if group.forwarded.is_empty() {
            return;
        }
        let due: Vec<u64> = group
            .forwarded
            .iter()
            .filter(|(_, f)| f.resend <= ticks || f.first + SHARD_FORWARD_GIVE_UP_TICKS <= ticks)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Phase::Serving(_, groups) = &mut self.phase else { return };
            let group = &mut groups[index];
            let Some(forwarded) = group.forwarded.get(&id) else { continue };
            if forwarded.first + SHARD_FORWARD_GIVE_UP_TICKS <= ticks {
                let Some(forwarded) = group.forwarded.remove(&id) else { continue };
                let error = ShardError::Unavailable(format!(
                    "no answer from the master (node {}) to the forwarded request; a write may \
                     or may not have been applied",
                    forwarded.to
                ));
                for token in forwarded.entries.tokens() {
                    self.replies.push((token, Err(error.clone())));
                }
                continue;
            }
            self.resend(index, id);
        }
    }

    /// Sends forwarded request `id` of group `index` again, to the master known now, or runs
    /// its entries here if this replica is the master now; waits if none is known.
    fn resend(&mut self, index: usize, id: u64) {
        let ticks = self.ticks;
        let Phase::Serving(_, groups) = &mut self.phase else { return };
        let group = &mut groups[index];
        if let Some(master) = remote_master(group) {
            let Some(forwarded) = group.forwarded.get_mut(&id) else { return };
            forwarded.to = master;
            forwarded.resend = ticks + SHARD_FORWARD_RESEND_TICKS;
            let kind = forwarded.entries.kind();
            let request = ForwardMessage::Request {
                group: group.id,
                id,
                kind,
                batch: forwarded.batch.clone(),
            };
            self.forwards.push((master, request));
            self.stats.forwards_sent += 1;
            return;
        }
        if group.awaits_master() && !group.replica.is_serving() {
            // An election runs (or this replica is becoming the master): wait for it.
            if let Some(forwarded) = group.forwarded.get_mut(&id) {
                forwarded.resend = ticks + SHARD_FORWARD_RETRY_TICKS;
            }
            return;
        }
        // This replica is the master now: its entries run here.
        let Some(forwarded) = group.forwarded.remove(&id) else { return };
        match forwarded.entries {
            ForwardedEntries::Writes(entries) => {
                for queued in entries.into_iter().rev() {
                    group.queued_bytes += queued.bytes;
                    group.queue.push_front(queued);
                }
            }
            ForwardedEntries::Reads(consistency, reads) => {
                let group = group.id;
                for (command, token) in reads {
                    if let Err(error) = self.read(group, consistency, command, token) {
                        self.replies.push((token, Err(error)));
                    }
                }
            }
        }
    }

    /// A forwarding message from peer `from`.
    ///
    /// # Errors
    /// [`Fatal`]: the process must stop.
    pub fn on_forward(&mut self, from: NodeId, message: ForwardMessage) -> Result<(), Fatal> {
        self.last_heard.insert(from, self.ticks);
        match message {
            ForwardMessage::Request { group, id, kind, batch } => {
                self.forwarded_request(from, group, id, kind, &batch);
                Ok(())
            }
            ForwardMessage::Replies { group, id, replies } => {
                let Some(index) = self.group_index(group) else { return Ok(()) };
                let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
                let target = &mut groups[index];
                let Some(forwarded) = target.forwarded.remove(&id) else { return Ok(()) };
                let tokens = forwarded.entries.tokens();
                match target.machine.decode_replies(&replies) {
                    Ok(replies) if replies.len() == tokens.len() => {
                        for (token, reply) in tokens.into_iter().zip(replies) {
                            self.replies.push((token, Ok(reply)));
                        }
                    }
                    _ => {
                        let error = ShardError::Unavailable(format!(
                            "node {from} answered a forwarded request with replies that do \
                             not decode"
                        ));
                        for token in tokens {
                            self.replies.push((token, Err(error.clone())));
                        }
                    }
                }
                Ok(())
            }
            ForwardMessage::Refused { group, id, reason, master: _ } => {
                let Some(index) = self.group_index(group) else { return Ok(()) };
                let Phase::Serving(_, groups) = &mut self.phase else { return Ok(()) };
                let target = &mut groups[index];
                let Some(forwarded) = target.forwarded.get_mut(&id) else { return Ok(()) };
                let error = match reason {
                    ForwardRefusal::NotMaster => {
                        // Sent again soon, to whichever master this replica knows then.
                        let retry = self.ticks + SHARD_FORWARD_RETRY_TICKS;
                        forwarded.resend = forwarded.resend.min(retry);
                        return Ok(());
                    }
                    ForwardRefusal::Overloaded => ShardError::Overloaded,
                    ForwardRefusal::Invalid => ShardError::Unavailable(format!(
                        "node {from}, the group's master, refused the forwarded request (a \
                         reply too large to forward, or a version mismatch)"
                    )),
                };
                let Some(forwarded) = target.forwarded.remove(&id) else { return Ok(()) };
                for token in forwarded.entries.tokens() {
                    self.replies.push((token, Err(error.clone())));
                }
                Ok(())
            }
        }
    }

    /// Runs a request `from` forwarded, as master, or refuses it.
    fn forwarded_request(
        &mut self,
        from: NodeId,
        group: GroupId,
        id: u64,
        kind: WireForwardKind,
        batch: &[u8],
    ) {
        self.stats.forwards_received += 1;
        let key = (from, group, id);
        if self.remote.contains_key(&key) {
            return; // A resend of a request still running: its answer is on the way.
        }
        let refuse = |reason, master| ForwardMessage::Refused { group, id, reason, master };
        let Some(index) = self.group_index(group) else {
            self.forwards.push((from, refuse(ForwardRefusal::Invalid, None)));
            return;
        };
        let Phase::Serving(_, groups) = &self.phase else { return };
        let target = &groups[index];
        if !target.replica.is_serving() && !target.awaits_master() {
            let master = target.replica.master();
            self.forwards.push((from, refuse(ForwardRefusal::NotMaster, master)));
            return;
        }
        if self.remote.len() >= SHARD_REMOTE_REQUESTS_MAX {
            self.stats.overloaded += 1;
            self.forwards.push((from, refuse(ForwardRefusal::Overloaded, None)));
            return;
        }
        let Ok(entries) = target.machine.decode_batch(batch) else {
            self.forwards.push((from, refuse(ForwardRefusal::Invalid, None)));
            return;
        };
        let count = entries.len();
        if count == 0 {
            let replies = target.machine.encode_replies(&[]);
            self.forwards.push((from, ForwardMessage::Replies { group, id, replies }));
            return;
        }
        let replies = (0..count).map(|_| None).collect();
        self.remote.insert(key, Remote { replies, missing: count, failed: None });
        let share = batch.len() / count.max(1);
        for (position, (client, sequence, command)) in entries.into_iter().enumerate() {
            let token = Token(self.next_remote);
            self.next_remote += 1;
            self.remote_tokens.insert(token, (key, position));
            let outcome = match kind {
                WireForwardKind::Write => {
                    let since = self.ticks;
                    let queued = Queued { client, sequence, command, token, bytes: share, since };
                    self.enqueue(group, queued)
                }
                WireForwardKind::Linearizable => {
                    self.read(group, Consistency::Linearizable, command, token)
                }
                WireForwardKind::Lease => self.read(group, Consistency::Lease, command, token),
            };
            if let Err(error) = outcome {
                self.replies.push((token, Err(error)));
            }
        }
    }

    /// Moves the replies of forwarded entries out of the host's replies into their requests,
    /// and answers every request whose entries are all answered.
    pub(super) fn route_remote_replies(&mut self) {
        if self.remote.is_empty() {
            return;
        }
        let mut finished = Vec::new();
        let replies = std::mem::take(&mut self.replies);
        for (token, reply) in replies {
            if !is_remote(token) {
                self.replies.push((token, reply));
                continue;
            }
            let Some((key, position)) = self.remote_tokens.remove(&token) else { continue };
            let Some(remote) = self.remote.get_mut(&key) else { continue };
            match reply {
                Ok(reply) => remote.replies[position] = Some(reply),
                Err(error) => {
                    remote.failed.get_or_insert(error);
                }
            }
            remote.missing -= 1;
            if remote.missing == 0 {
                finished.push(key);
            }
        }
        for key in finished {
            let remote = self.remote.remove(&key).expect("finished once");
            let (from, group, id) = key;
            let message = if let Some(error) = remote.failed {
                let (reason, master) = match error {
                    ShardError::NotMaster { master } => (ForwardRefusal::NotMaster, master),
                    ShardError::Overloaded => (ForwardRefusal::Overloaded, None),
                    ShardError::Unavailable(_) => (ForwardRefusal::NotMaster, None),
                };
                ForwardMessage::Refused { group, id, reason, master }
            } else {
                let replies: Vec<M::Reply> = remote.replies.into_iter().flatten().collect();
                let encoded = match (self.group_index(group), &self.phase) {
                    (Some(index), Phase::Serving(_, groups)) => {
                        groups[index].machine.encode_replies(&replies)
                    }
                    _ => continue,
                };
                if encoded.len() > FORWARD_PAYLOAD_BYTES_MAX {
                    let reason = ForwardRefusal::Invalid;
                    ForwardMessage::Refused { group, id, reason, master: None }
                } else {
                    ForwardMessage::Replies { group, id, replies: encoded }
                }
            };
            self.forwards.push((from, message));
        }
    }
}
