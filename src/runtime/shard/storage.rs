//! [`Storage`]: the durable side of one core's replicas, over that core's [`Log`].
//!
//! ```text
//!   Effect::Persist --persist()--> Accepted / Chosen records --(queue on backpressure)--> Log
//!                   \--> promise not covered by a record --> superblock (GroupMeta.promised)
//!   records durable (append order) + superblock sequence durable --> Persisted { group, id }
//!   take_snapshot / install_snapshot --> snapshot chunks --> installed + named by superblock
//!                                    --> SnapshotTaken / SnapshotInstalled (or Aborted)
//!   Opened log --recover()--> read_range + snapshot chunks per group --> Recovered groups
//! ```
//!
//! A persist is reported only when every part of it is durable: the records it appended
//! (the log reports them durable in append order, so a count of durable records suffices) and
//! the superblock sequence that carries its promise. Bookkeeping per persist is one entry
//! while it waits, so it is bounded by the persists the replicas have in flight
//! ([`STORAGE_PERSISTS_PER_GROUP_MAX`]); appends the log refuses with backpressure wait in a
//! FIFO queue that the same bound limits, and are retried after every completion.
//!
//! Chosen marks become `Chosen` records that carry the value again: the log's index keeps
//! only the latest record of a slot, so an empty `Chosen` record would hide the value. The
//! storage therefore keeps the value of each slot accepted and not yet known chosen (the
//! replica holds the same values; `ValueKind::Batch` shares its bytes).
//!
//! A new log is usable at once; [`Storage::is_formatted`] tells when its format write is
//! durable (a crash before then leaves a log that opens as new again).
//!
//! A promise that no record of this persist covers goes to the superblock. A record covers a
//! promise only while it is in the log, so when a snapshot truncates the log the superblock's
//! promise is first raised to the highest ballot ever written for the group.
//!
//! Snapshot slots: a [`SnapshotMeta`] names the truncation point (every slot below
//! `meta.slot`); the log names the last slot covered, `meta.slot - 1`. The snapshot file
//! holds the meta's encoding followed by the state machine's bytes (`codec`), because the
//! superblock holds one membership and the meta carries every configuration and the stamp.
//! A snapshot the disk has no room for is aborted ([`StorageEvent::SnapshotAborted`]); the
//! replica is then not told it was taken (it keeps its log and asks again after a restart)
//! or, for one being installed, is told `on_snapshot_aborted`.
//!
//! Recovery reads each group's records at or above its truncation point and its snapshot,
//! all at once (the replica restarts from a `Vec` of records anyway); transient read errors
//! are retried up to [`RECOVERY_READ_RETRIES_MAX`] times. A group the opener found suspect
//! (corruption near it, or its snapshot damaged) or whose bytes do not decode is reported
//! damaged, never restarted as if nothing happened.
//!
//! Must never: report a persist before all its parts are durable, block, read a clock, or
//! draw randomness.

use std::collections::{BTreeMap, VecDeque};

use super::codec::{self, DecodeError};
use crate::consensus::{DurableState, PersistId, Record, SnapshotMeta, Value};
use crate::constants::PERSISTS_IN_FLIGHT_MAX;
use crate::log::disk::{Completion, FileId, OpId, Request};
use crate::log::format::RecordKind;
use crate::log::log::{Log, LogError, Progress};
use crate::log::open::Opened;
use crate::log::reader::{ReadError, ReadRecord};
use crate::log::snapshot::{
    SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX, SnapshotChunk, SnapshotError, SnapshotReadError,
};
use crate::log::superblock::{GroupMeta, Superblock};
use crate::log::writer::{AppendError, Entry};
use crate::types::{Ballot, GroupId, Slot};

/// Most persists of one group waiting in the storage (queued or in the log): the core never
/// has more than [`PERSISTS_IN_FLIGHT_MAX`] waiting, so more is a host bug.
pub const STORAGE_PERSISTS_PER_GROUP_MAX: usize = PERSISTS_IN_FLIGHT_MAX;

/// Times recovery reads one record range or snapshot again after a disk error before it
/// declares the group damaged.
pub const RECOVERY_READ_RETRIES_MAX: u32 = 16;

/// What became durable (or could not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageEvent {
    /// Every part of the persist is durable: call `Replica::on_persisted(id)`.
    Persisted {
        /// The group.
        group: GroupId,
        /// The persist.
        id: PersistId,
    },
    /// The snapshot of `take_snapshot` is durable: call `Replica::on_snapshot_taken(slot)`.
    SnapshotTaken {
        /// The group.
        group: GroupId,
        /// The snapshot's truncation point (`SnapshotMeta::slot`).
        slot: Slot,
    },
    /// The snapshot of `install_snapshot` is durable: load it, then call
    /// `Replica::on_snapshot_installed(meta)`.
    SnapshotInstalled {
        /// The group.
        group: GroupId,
        /// Its meta.
        meta: SnapshotMeta,
    },
    /// A snapshot was given up (a full disk) and nothing of it remains.
    SnapshotAborted {
        /// The group.
        group: GroupId,
        /// Whether it was being installed (the replica must hear `on_snapshot_aborted`).
        installing: bool,
        /// Why.
        reason: String,
    },
}

/// Why the storage refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The log failed: durability is unknown and the process must stop with
    /// [`crate::constants::EXIT_CODE_STORAGE_FAILURE`].
    #[error(transparent)]
    Failed(#[from] LogError),
    /// More persists of a group than the core ever has in flight (a host bug).
    #[error("group {group}: more than {STORAGE_PERSISTS_PER_GROUP_MAX} persists waiting")]
    Overloaded {
        /// The group.
        group: GroupId,
    },
    /// A snapshot could not start (one is being written, or it is not newer).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Asked to write while recovery is still reading.
    #[error("storage is still recovering")]
    Recovering,
}

/// One group's state as recovery found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredGroup {
    /// What the replica restarts from (`Replica::restart`).
    pub durable: DurableState,
    /// The state machine's bytes of the snapshot at `durable.snapshot.slot`, if there is one.
    pub state: Option<Vec<u8>>,
}

/// A group recovery found damaged, and why: it must not vote with this log.
pub type Damage = String;

/// An append waiting for room in the log, or the end of a persist's appends.
#[derive(Debug)]
enum Queued {
    Record { kind: RecordKind, group: GroupId, slot: Slot, ballot: Ballot, payload: Vec<u8> },
    End { group: GroupId, id: PersistId, superblock: Option<u64> },
}

/// A persist whose records are all appended, waiting for durability.
#[derive(Debug)]
struct Waiting {
    group: GroupId,
    id: PersistId,
    /// Durable when this many records are durable...
    records_through: u64,
    /// ... and this superblock sequence (if any).
    superblock: Option<u64>,
}

/// A snapshot being written.
#[derive(Debug)]
struct SnapshotJob {
    meta: SnapshotMeta,
    installing: bool,
    payload: Vec<u8>,
    pushed: usize,
    finished: bool,
}

/// One group being recovered.
#[derive(Debug)]
struct GroupRecovery {
    damage: Option<Damage>,
    promised: Ballot,
    truncated_before: Slot,
    snapshot_chunks: Option<Vec<Option<Vec<u8>>>>,
    records: BTreeMap<Slot, Record>,
    /// Slots whose read failed and must be read again.
    failed_slots: Vec<Slot>,
    snapshot_read_failed: bool,
    retries: u32,
}

/// Recovery in progress.
#[derive(Debug)]
struct Recovering {
    initial: SnapshotMeta,
    groups: BTreeMap<GroupId, GroupRecovery>,
}

/// The durable side of one core's replicas. See the module documentation.
#[derive(Debug)]
pub struct Storage {
    log: Log,
    requests: Vec<(OpId, Request)>,
    appended: u64,
    durable: u64,
    superblock_durable: u64,
    queue: VecDeque<Queued>,
    waiting: Vec<Waiting>,
    persists: BTreeMap<GroupId, usize>,
    /// Per group, the value of each slot accepted and not yet known chosen.
    unchosen: BTreeMap<GroupId, BTreeMap<Slot, (Ballot, Value)>>,
    /// Per group, the highest ballot of any record written.
    ballots: BTreeMap<GroupId, Ballot>,
    snapshots: BTreeMap<GroupId, SnapshotJob>,
    recovering: Option<Recovering>,
    recovered: Option<BTreeMap<GroupId, Result<RecoveredGroup, Damage>>>,
    events: Vec<StorageEvent>,
}

impl Storage {
    /// Storage over `log` (opened, with nothing to recover, or whose groups the host starts
    /// afresh).
    #[must_use]
    pub fn new(mut log: Log) -> Storage {
        // The first superblock write (format or recovery rewrite) must be handed out before
        // any update: pump it now.
        let requests = log.pump();
        let superblock_durable = log.superblock().map_or(0, |superblock| superblock.sequence);
        Storage {
            log,
            requests,
            appended: 0,
            durable: 0,
            superblock_durable,
            queue: VecDeque::new(),
            waiting: Vec::new(),
            persists: BTreeMap::new(),
            unchosen: BTreeMap::new(),
            ballots: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            recovering: None,
            recovered: None,
            events: Vec::new(),
        }
    }

    /// Storage over a log just opened, recovering `groups`; a group without a snapshot starts
    /// from `initial` (slot 0 and its first membership). [`Storage::take_recovered`] hands out
    /// the result once every read completed.
    #[must_use]
    pub fn recover(opened: Opened, groups: &[GroupId], initial: &SnapshotMeta) -> Storage {
        let suspect = |group: &GroupId| {
            let near = opened.suspect_groups.contains(group) || opened.every_group_suspect;
            let snapshot = opened.snapshot_damage.iter().find(|(damaged, _)| damaged == group);
            match (snapshot, near) {
                (Some((_, reason)), _) => Some(format!("snapshot damaged: {reason}")),
                (None, true) => Some(format!("corruption near the group: {:?}", opened.corruption)),
                (None, false) => None,
            }
        };
        let damage: Vec<Option<Damage>> = groups.iter().map(suspect).collect();
        let mut storage = Storage::new(opened.log);
        let mut recovering = Recovering { initial: initial.clone(), groups: BTreeMap::new() };
        for (group, damage) in groups.iter().zip(damage) {
            let mut state = GroupRecovery {
                damage,
                promised: Ballot::ZERO,
                truncated_before: Slot(0),
                snapshot_chunks: None,
                records: BTreeMap::new(),
                failed_slots: Vec::new(),
                snapshot_read_failed: false,
                retries: 0,
            };
            if state.damage.is_none() {
                storage.start_reading(*group, &mut state);
            }
            recovering.groups.insert(*group, state);
        }
        storage.recovering = Some(recovering);
        storage.finish_recovery_if_read();
        storage
    }

    fn start_reading(&mut self, group: GroupId, state: &mut GroupRecovery) {
        let meta = self.log.superblock().and_then(|superblock| superblock.group(group)).cloned();
        let meta = meta.unwrap_or_else(|| GroupMeta::new(group));
        state.promised = meta.promised;
        state.truncated_before = meta.truncated_before;
        self.log.read_range(group, meta.truncated_before..);
        match (self.log.snapshot(group).copied(), meta.snapshot_slot) {
            (Some(info), _) => {
                state.snapshot_chunks = Some(vec![None; info.chunk_count as usize]);
                for index in 0..info.chunk_count {
                    self.log.read_snapshot_chunk(group, index).expect("installed");
                }
            }
            (None, Some(slot)) => state.damage = Some(format!("snapshot {slot} is not installed")),
            (None, None) if meta.truncated_before > Slot(0) => {
                state.damage =
                    Some(format!("truncated at {} without a snapshot", meta.truncated_before));
            }
            (None, None) => {}
        }
    }

    /// The recovered groups, once recovery is done (each at most once).
    pub fn take_recovered(&mut self) -> Option<BTreeMap<GroupId, Result<RecoveredGroup, Damage>>> {
        self.recovered.take()
    }

    /// Whether the log's superblock is durable (a new log's format write completed).
    #[must_use]
    pub fn is_formatted(&self) -> bool {
        self.log.superblock().is_some()
    }

    /// Whether recovery is still reading.
    #[must_use]
    pub fn is_recovering(&self) -> bool {
        self.recovering.is_some()
    }

    /// The log underneath.
    #[must_use]
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Whether events wait for [`Storage::take_events`].
    #[must_use]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// What happened since the last call.
    pub fn take_events(&mut self) -> Vec<StorageEvent> {
        std::mem::take(&mut self.events)
    }

    /// Every request to submit to the disk now.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        let mut requests = std::mem::take(&mut self.requests);
        requests.extend(self.log.pump());
        if requests.is_empty() {
            self.finish_recovery_if_read();
        }
        requests
    }

    /// Makes the persist `id` of `group` durable; [`StorageEvent::Persisted`] reports it.
    ///
    /// # Errors
    /// [`StorageError::Overloaded`] beyond [`STORAGE_PERSISTS_PER_GROUP_MAX`] persists waiting,
    /// [`StorageError::Recovering`] before recovery is done.
    pub fn persist(
        &mut self,
        group: GroupId,
        id: PersistId,
        promised: Option<Ballot>,
        records: &[Record],
        chosen: &[Slot],
    ) -> Result<(), StorageError> {
        if self.recovering.is_some() {
            return Err(StorageError::Recovering);
        }
        let persists = self.persists.entry(group).or_insert(0);
        if *persists >= STORAGE_PERSISTS_PER_GROUP_MAX {
            return Err(StorageError::Overloaded { group });
        }
        *persists += 1;
        let mut superblock = None;
        if let Some(ballot) = promised
            && !records.iter().any(|record| record.ballot >= ballot)
        {
            superblock = Some(self.raise_promise(group, ballot));
        }
        let highest = self.ballots.entry(group).or_insert(Ballot::ZERO);
        let unchosen = self.unchosen.entry(group).or_default();
        for record in records {
            *highest = (*highest).max(record.ballot);
            let kind = if record.chosen {
                unchosen.remove(&record.slot);
                RecordKind::Chosen
            } else {
                unchosen.insert(record.slot, (record.ballot, record.value.clone()));
                RecordKind::Accepted
            };
            let payload = codec::encode_value(&record.value);
            let (slot, ballot) = (record.slot, record.ballot);
            self.queue.push_back(Queued::Record { kind, group, slot, ballot, payload });
        }
        for slot in chosen {
            // A mark for a slot whose value is unknown here (truncated meanwhile) is dropped:
            // marks are an optimisation, the replica learns the slot again after a restart.
            if let Some((ballot, value)) = unchosen.remove(slot) {
                let payload = codec::encode_value(&value);
                let (kind, slot) = (RecordKind::Chosen, *slot);
                self.queue.push_back(Queued::Record { kind, group, slot, ballot, payload });
            }
        }
        self.queue.push_back(Queued::End { group, id, superblock });
        self.drain_queue();
        Ok(())
    }

    /// Raises `group`'s promise in the next superblock; returns the sequence carrying it.
    fn raise_promise(&mut self, group: GroupId, ballot: Ballot) -> u64 {
        self.log.update_superblock(|superblock| {
            let meta = group_meta(superblock, group);
            meta.promised = meta.promised.max(ballot);
        })
    }

    /// Appends queued records while the log takes them; persists whose records are all
    /// appended start waiting for durability.
    fn drain_queue(&mut self) {
        while let Some(front) = self.queue.front() {
            match front {
                Queued::Record { kind, group, slot, ballot, payload } => {
                    let entry =
                        Entry { kind: *kind, group: *group, slot: *slot, ballot: *ballot, payload };
                    match self.log.append(&entry) {
                        Ok(_) => self.appended += 1,
                        Err(AppendError::Backpressure { .. }) => break,
                    }
                }
                Queued::End { group, id, superblock } => {
                    let (group, id, superblock) = (*group, *id, *superblock);
                    let records_through = self.appended;
                    self.waiting.push(Waiting { group, id, records_through, superblock });
                }
            }
            self.queue.pop_front();
        }
        self.report_durable();
    }

    fn report_durable(&mut self) {
        let (durable, superblock_durable) = (self.durable, self.superblock_durable);
        let events = &mut self.events;
        let persists = &mut self.persists;
        self.waiting.retain(|waiting| {
            let done = waiting.records_through <= durable
                && waiting.superblock.is_none_or(|sequence| sequence <= superblock_durable);
            if done {
                events.push(StorageEvent::Persisted { group: waiting.group, id: waiting.id });
                *persists.get_mut(&waiting.group).expect("counted") -= 1;
            }
            !done
        });
    }

    /// Writes a snapshot of `group` taken by this replica: `state` is the state machine at
    /// `meta.slot`. [`StorageEvent::SnapshotTaken`] reports it durable.
    ///
    /// # Errors
    /// [`StorageError::Snapshot`] when one is being written or it is not newer than the
    /// installed one; [`StorageError::Recovering`].
    pub fn take_snapshot(
        &mut self,
        group: GroupId,
        meta: &SnapshotMeta,
        state: &[u8],
    ) -> Result<(), StorageError> {
        self.start_snapshot(group, meta, state, false)
    }

    /// Writes a snapshot of `group` received from a peer. [`StorageEvent::SnapshotInstalled`]
    /// reports it durable.
    ///
    /// # Errors
    /// As [`Storage::take_snapshot`].
    pub fn install_snapshot(
        &mut self,
        group: GroupId,
        meta: &SnapshotMeta,
        state: &[u8],
    ) -> Result<(), StorageError> {
        self.start_snapshot(group, meta, state, true)
    }

    fn start_snapshot(
        &mut self,
        group: GroupId,
        meta: &SnapshotMeta,
        state: &[u8],
        installing: bool,
    ) -> Result<(), StorageError> {
        if self.recovering.is_some() {
            return Err(StorageError::Recovering);
        }
        assert!(meta.slot > Slot(0), "a snapshot covers at least one slot");
        self.log.begin_snapshot(group, Slot(meta.slot.0 - 1))?;
        // Records covering promises may leave the log with the truncation.
        let highest = self.ballots.get(&group).copied().unwrap_or(Ballot::ZERO);
        self.raise_promise(group, highest);
        let payload = codec::encode_snapshot(meta, state);
        let job =
            SnapshotJob { meta: meta.clone(), installing, payload, pushed: 0, finished: false };
        self.snapshots.insert(group, job);
        self.push_snapshot_chunks();
        Ok(())
    }

    /// Pushes the chunks of every snapshot being written while the log takes them.
    fn push_snapshot_chunks(&mut self) {
        let mut aborted = Vec::new();
        for (group, job) in &mut self.snapshots {
            while !job.finished {
                if job.pushed == job.payload.len() {
                    let finish = self.log.finish_snapshot(*group, job.meta.slot);
                    finish.expect("a snapshot in progress");
                    job.finished = true;
                    break;
                }
                let end = job.payload.len().min(job.pushed + SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX);
                match self.log.push_snapshot_chunk(*group, &job.payload[job.pushed..end]) {
                    Ok(()) => job.pushed = end,
                    Err(SnapshotError::Backpressure { .. }) => break,
                    Err(error) => {
                        aborted.push((*group, job.installing, error.to_string()));
                        break;
                    }
                }
            }
        }
        for (group, installing, reason) in aborted {
            self.snapshots.remove(&group);
            let _ = self.log.abort_snapshot(group);
            self.events.push(StorageEvent::SnapshotAborted { group, installing, reason });
        }
    }

    /// Handles one disk completion.
    ///
    /// # Errors
    /// [`StorageError::Failed`] when the log failed: fatal for the process.
    pub fn on_completion(&mut self, completion: &Completion) -> Result<(), StorageError> {
        let progress = self.log.on_completion(completion)?;
        self.durable += progress.durable.len() as u64;
        if let Some(sequence) = progress.superblock_durable {
            self.superblock_durable = self.superblock_durable.max(sequence);
        }
        self.on_snapshot_progress(&progress);
        if self.recovering.is_some() {
            self.on_recovery_progress(progress);
        }
        self.drain_queue();
        self.push_snapshot_chunks();
        Ok(())
    }

    fn on_snapshot_progress(&mut self, progress: &Progress) {
        for info in &progress.snapshots_installed {
            let Some(job) = self.snapshots.remove(&info.group) else { continue };
            let slot = job.meta.slot;
            if let Some(unchosen) = self.unchosen.get_mut(&info.group) {
                *unchosen = unchosen.split_off(&slot);
            }
            self.events.push(if job.installing {
                StorageEvent::SnapshotInstalled { group: info.group, meta: job.meta }
            } else {
                StorageEvent::SnapshotTaken { group: info.group, slot }
            });
        }
        for (group, reason) in &progress.snapshots_aborted {
            if let Some(job) = self.snapshots.remove(group) {
                let (group, installing, reason) = (*group, job.installing, reason.clone());
                self.events.push(StorageEvent::SnapshotAborted { group, installing, reason });
            }
        }
    }

    fn on_recovery_progress(&mut self, progress: Progress) {
        let recovering = self.recovering.as_mut().expect("recovering");
        for read in progress.reads {
            on_record_read(recovering, read);
        }
        for chunk in progress.snapshot_chunks {
            on_chunk_read(recovering, chunk);
        }
        self.finish_recovery_if_read();
    }

    /// Once every read completed: retries what failed, or hands out the result.
    fn finish_recovery_if_read(&mut self) {
        if self.recovering.is_none() || !self.log.is_idle() {
            return;
        }
        let mut recovering = self.recovering.take().expect("recovering");
        let mut retried = false;
        for (group, state) in &mut recovering.groups {
            if state.damage.is_some()
                || (state.failed_slots.is_empty() && !state.snapshot_read_failed)
            {
                continue;
            }
            state.retries += 1;
            if state.retries > RECOVERY_READ_RETRIES_MAX {
                state.damage = Some(format!("reads failed {RECOVERY_READ_RETRIES_MAX} times"));
                continue;
            }
            retried = true;
            for slot in std::mem::take(&mut state.failed_slots) {
                self.log.read_range(*group, slot..=slot);
            }
            if std::mem::take(&mut state.snapshot_read_failed) {
                let chunks = state.snapshot_chunks.as_ref().expect("reading a snapshot");
                for (index, chunk) in chunks.iter().enumerate() {
                    if chunk.is_none() {
                        let index = u32::try_from(index).expect("chunk count is u32");
                        self.log.read_snapshot_chunk(*group, index).expect("installed");
                    }
                }
            }
        }
        if retried {
            self.recovering = Some(recovering);
            return;
        }
        let mut result = BTreeMap::new();
        for (group, state) in recovering.groups {
            let recovered = self.finish_group(group, state, &recovering.initial);
            result.insert(group, recovered);
        }
        self.recovered = Some(result);
    }

    /// The durable state of one group whose reads all completed.
    fn finish_group(
        &mut self,
        group: GroupId,
        state: GroupRecovery,
        initial: &SnapshotMeta,
    ) -> Result<RecoveredGroup, Damage> {
        if let Some(damage) = state.damage {
            return Err(damage);
        }
        let (snapshot, bytes) = match state.snapshot_chunks {
            None => (initial.clone(), None),
            Some(chunks) => {
                let payload: Vec<u8> = chunks.into_iter().flatten().flatten().collect();
                let (meta, bytes) =
                    codec::decode_snapshot(&payload).map_err(|error| error.to_string())?;
                if meta.slot != state.truncated_before {
                    return Err(format!(
                        "snapshot at {} but truncated before {}",
                        meta.slot, state.truncated_before
                    ));
                }
                (meta, Some(bytes.to_vec()))
            }
        };
        let records: Vec<Record> =
            state.records.into_values().filter(|record| record.slot >= snapshot.slot).collect();
        let highest = records.iter().map(|record| record.ballot).max().unwrap_or(Ballot::ZERO);
        self.ballots.insert(group, highest.max(state.promised));
        let unchosen = records
            .iter()
            .filter(|record| !record.chosen)
            .map(|record| (record.slot, (record.ballot, record.value.clone())))
            .collect();
        self.unchosen.insert(group, unchosen);
        let durable = DurableState { promised: state.promised, snapshot, records };
        Ok(RecoveredGroup { durable, state: bytes })
    }
}

fn on_record_read(recovering: &mut Recovering, read: Result<ReadRecord, ReadError>) {
    match read {
        Ok(record) => {
            let Some(state) = recovering.groups.get_mut(&record.group) else { return };
            match decode_record(&record) {
                Ok(decoded) => {
                    state.records.insert(record.slot, decoded);
                }
                Err(error) => state.damage = Some(format!("slot {}: {error}", record.slot)),
            }
        }
        Err(ReadError::Disk { group, slot, .. }) => {
            if let Some(state) = recovering.groups.get_mut(&group) {
                state.failed_slots.push(slot);
            }
        }
        Err(error @ ReadError::Corrupt { group, .. }) => {
            if let Some(state) = recovering.groups.get_mut(&group) {
                state.damage = Some(error.to_string());
            }
        }
    }
}

fn on_chunk_read(recovering: &mut Recovering, chunk: Result<SnapshotChunk, SnapshotReadError>) {
    match chunk {
        Ok(chunk) => {
            let Some(state) = recovering.groups.get_mut(&chunk.group) else { return };
            let index = chunk.index as usize;
            if let Some(slot) = state.snapshot_chunks.as_mut().and_then(|c| c.get_mut(index)) {
                *slot = Some(chunk.payload);
            }
        }
        // The error names the file, not the chunk: the group reads its missing chunks again
        // (a retry of a chunk already read is harmless).
        Err(SnapshotReadError::Disk { file, .. }) => {
            if let Some(state) = group_of(file).and_then(|group| recovering.groups.get_mut(&group))
            {
                state.snapshot_read_failed = true;
            }
        }
        Err(error @ SnapshotReadError::Corrupt { file, .. }) => {
            if let Some(state) = group_of(file).and_then(|group| recovering.groups.get_mut(&group))
            {
                state.damage = Some(error.to_string());
            }
        }
    }
}

fn group_of(file: FileId) -> Option<GroupId> {
    match file {
        FileId::Snapshot { group, .. } | FileId::SnapshotStaging { group, .. } => Some(group),
        FileId::Superblock | FileId::Segment(_) => None,
    }
}

fn decode_record(record: &ReadRecord) -> Result<Record, DecodeError> {
    Ok(Record {
        slot: record.slot,
        ballot: record.ballot,
        value: codec::decode_value(&record.payload)?,
        chosen: record.kind == RecordKind::Chosen,
    })
}

/// `group`'s metadata in `superblock`, added in order if missing.
fn group_meta(superblock: &mut Superblock, group: GroupId) -> &mut GroupMeta {
    let index = match superblock.groups.binary_search_by_key(&group, |meta| meta.group) {
        Ok(index) => index,
        Err(index) => {
            superblock.groups.insert(index, GroupMeta::new(group));
            index
        }
    };
    &mut superblock.groups[index]
}
