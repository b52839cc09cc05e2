//! The superblock's write path: versions made durable one at a time, changes coalesced.
//!
//! The consensus core asks for a change (a higher promised ballot, a membership change, a new
//! truncation point) and must not send the Promise or Accepted that depends on it before the
//! change is durable. The store applies changes to the *next* version in memory, writes that
//! version (both copies of its pair, then one fdatasync), and reports the sequence that became
//! durable; every change requested before the write started is covered by it. Changes that
//! arrive while a write is in flight ride the next one, so a burst of promises costs one
//! superblock write, not one each (group commit for acceptor metadata).
//!
//! ```text
//!   update() --> next version (memory) --pump--> Write copy A, Write copy B --> Sync --> durable
//!                  ^ changes coalesce here          \_____ one version in flight _____/
//! ```
//!
//! After a restart the first write is the recovery rewrite from
//! [`crate::log::superblock::Recovered::rewrite`]; a fresh file is formatted first. A failed
//! write or sync is fatal ([`StoreError`]): the durability of the metadata is unknown.

use super::disk::{Completion, DiskError, FileId, OpId, Request, Response};
use super::superblock::{Superblock, WritePlan, encode_copy};
use crate::constants::SUPERBLOCK_COPY_SIZE_BYTES;

/// The first operation id the store uses; its ids never meet the writer's.
pub const SUPERBLOCK_OP_BASE: u64 = 1 << 48;

/// A superblock write failed: the process must stop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("superblock {operation} failed: {error}")]
pub struct StoreError {
    /// `write` or `sync`.
    pub operation: &'static str,
    /// The disk's error.
    pub error: DiskError,
}

/// The version being made durable.
#[derive(Debug)]
struct InFlight {
    superblock: Superblock,
    /// Copy writes not completed yet.
    writes_left: Vec<OpId>,
    /// The sync, once both writes completed.
    sync: Option<OpId>,
}

/// The write path of one core's superblock. See the module documentation.
#[derive(Debug)]
pub struct SuperblockStore {
    durable: Option<Superblock>,
    /// The version the next write will carry (changes accumulate here).
    next: Superblock,
    /// Whether `next` differs from what is durable or in flight.
    is_dirty: bool,
    in_flight: Option<InFlight>,
    /// The plan of the first write: the format or the recovery rewrite.
    first_plan: Option<WritePlan>,
    next_op: u64,
    requests: Vec<(OpId, Request)>,
}

impl SuperblockStore {
    /// A store for a freshly created, zeroed superblock file: its first write formats it with
    /// `superblock` (sequence 0, no groups).
    #[must_use]
    pub fn format(superblock: Superblock) -> SuperblockStore {
        let plan = WritePlan::format(&superblock);
        SuperblockStore::starting(None, superblock, plan)
    }

    /// A store for a recovered superblock: its first write is the mandatory recovery rewrite
    /// (`rewrite` and `plan` from [`crate::log::superblock::Recovered::rewrite`]).
    ///
    /// # Panics
    /// If `rewrite` does not go forward from `chosen` or does not match `plan`.
    #[must_use]
    pub fn recovered(chosen: Superblock, rewrite: Superblock, plan: WritePlan) -> SuperblockStore {
        assert_eq!(rewrite.sequence, plan.sequence);
        assert!(rewrite.sequence > chosen.sequence);
        SuperblockStore::starting(Some(chosen), rewrite, plan)
    }

    fn starting(
        durable: Option<Superblock>,
        first: Superblock,
        plan: WritePlan,
    ) -> SuperblockStore {
        SuperblockStore {
            durable,
            next: first,
            is_dirty: true,
            in_flight: None,
            first_plan: Some(plan),
            next_op: SUPERBLOCK_OP_BASE,
            requests: Vec::new(),
        }
    }

    /// The newest durable version (none before the format write completes).
    #[must_use]
    pub fn durable(&self) -> Option<&Superblock> {
        self.durable.as_ref()
    }

    /// Applies `change` to the next version; returns the sequence that will carry it. A reply
    /// that depends on the change may leave once [`SuperblockStore::on_completion`] reports
    /// that sequence (or a later one) durable.
    ///
    /// # Panics
    /// If called before the first write (format or recovery rewrite) was handed to the disk
    /// with [`SuperblockStore::pump`]: that write must carry exactly what recovery decided.
    pub fn update(&mut self, change: impl FnOnce(&mut Superblock)) -> u64 {
        assert!(self.first_plan.is_none(), "pump the first write before updating");
        if !self.is_dirty {
            // The next write starts from the newest version written or being written.
            let base = self.in_flight.as_ref().map(|flight| &flight.superblock);
            let base = base.or(self.durable.as_ref()).expect("formatted or recovered first");
            self.next = base.next();
            self.is_dirty = true;
        }
        change(&mut self.next);
        self.next.sequence
    }

    /// Starts the next write if none is in flight and there is something to write; returns
    /// every request to submit.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        if self.in_flight.is_none() && self.is_dirty {
            self.start_write();
        }
        std::mem::take(&mut self.requests)
    }

    fn start_write(&mut self) {
        let superblock = self.next.clone();
        let plan = if let Some(plan) = self.first_plan.take() {
            plan
        } else {
            let base = self.durable.as_ref().expect("the first write came first");
            WritePlan::successor(base, &superblock)
        };
        assert_eq!(plan.sequence, superblock.sequence);
        let mut writes_left = Vec::with_capacity(2);
        for (copy, offset) in plan.copy_indexes.iter().zip(plan.offsets_bytes) {
            let mut area = vec![0; SUPERBLOCK_COPY_SIZE_BYTES];
            encode_copy(&superblock, *copy, &mut area).expect("updates respect the limits");
            area.truncate(plan.write_size_bytes);
            let op = self.allocate_op();
            self.requests
                .push((op, Request::Write { file: FileId::Superblock, offset, data: area }));
            writes_left.push(op);
        }
        self.in_flight = Some(InFlight { superblock, writes_left, sync: None });
        self.is_dirty = false;
    }

    fn allocate_op(&mut self) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        op
    }

    /// Whether `op` is one of this store's requests.
    #[must_use]
    pub fn owns(op: OpId) -> bool {
        (SUPERBLOCK_OP_BASE..SUPERBLOCK_OP_BASE + (1 << 48)).contains(&op.0)
    }

    /// Handles a completion of one of this store's requests; returns the sequence that became
    /// durable, if one did.
    ///
    /// # Errors
    /// A failed write or sync ([`StoreError`]): fatal.
    ///
    /// # Panics
    /// Only on a broken invariant of the store's own state.
    pub fn on_completion(&mut self, completion: &Completion) -> Result<Option<u64>, StoreError> {
        let Some(flight) = self.in_flight.as_mut() else { return Ok(None) };
        if let Some(index) = flight.writes_left.iter().position(|op| *op == completion.op) {
            match &completion.result {
                Ok(Response::Written) => {}
                other => return Err(failure("write", other)),
            }
            flight.writes_left.swap_remove(index);
            if flight.writes_left.is_empty() {
                // Both copies completed, so one sync covers them (the disk contract).
                let op = self.allocate_op();
                self.requests.push((op, Request::Sync { file: FileId::Superblock }));
                self.in_flight.as_mut().expect("in flight").sync = Some(op);
            }
            return Ok(None);
        }
        if flight.sync == Some(completion.op) {
            match &completion.result {
                Ok(Response::Synced) => {}
                other => return Err(failure("sync", other)),
            }
            let done = self.in_flight.take().expect("in flight");
            let sequence = done.superblock.sequence;
            self.durable = Some(done.superblock);
            return Ok(Some(sequence));
        }
        Ok(None)
    }

    /// The version being written, if one is in flight (a crash may leave it or the durable
    /// one on disk, never anything else).
    #[must_use]
    pub fn in_flight(&self) -> Option<&Superblock> {
        self.in_flight.as_ref().map(|flight| &flight.superblock)
    }

    /// Whether nothing is waiting to be written or in flight.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none() && !self.is_dirty
    }
}

fn failure(operation: &'static str, result: &Result<Response, DiskError>) -> StoreError {
    StoreError { operation, error: DiskError::of_unexpected(result) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};
    use crate::log::superblock::{Chosen, GroupMeta, choose};
    use crate::types::{Ballot, CoreIndex, GroupId, NodeId};

    fn created_disk(options: SimDiskOptions) -> SimDisk {
        let mut disk = SimDisk::new(11, options);
        let size_bytes = 4 * SUPERBLOCK_COPY_SIZE_BYTES as u64;
        disk.submit(OpId(1), Request::Create { file: FileId::Superblock, size_bytes });
        disk.submit(OpId(2), Request::SyncDirectory);
        let mut completions = Vec::new();
        while disk.in_flight_count() > 0 {
            disk.poll(&mut completions);
        }
        disk
    }

    /// Runs store and disk until idle; returns the sequences reported durable.
    fn settle(store: &mut SuperblockStore, disk: &mut SimDisk) -> Vec<u64> {
        let mut durable = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..1000 {
            for (op, request) in store.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                durable.extend(store.on_completion(&completion).expect("no faults"));
            }
            if store.is_idle() && disk.in_flight_count() == 0 {
                return durable;
            }
        }
        panic!("store did not settle");
    }

    fn identity() -> Superblock {
        Superblock::new(7, NodeId::new(2).unwrap(), CoreIndex(0))
    }

    fn promise(superblock: &mut Superblock, group: u32, round: u64) {
        let group = GroupId(group);
        if superblock.group(group).is_none() {
            superblock.groups.push(GroupMeta::new(group));
            superblock.groups.sort_by_key(|meta| meta.group);
        }
        let meta = superblock.groups.iter_mut().find(|meta| meta.group == group).unwrap();
        meta.promised = Ballot { round, node: 1 };
    }

    fn read_back(disk: &SimDisk) -> Superblock {
        let bytes = disk.contents(FileId::Superblock).unwrap();
        let areas: Vec<&[u8]> = bytes.chunks(SUPERBLOCK_COPY_SIZE_BYTES).collect();
        match choose(&areas).unwrap() {
            Chosen::Found(found) => found.superblock,
            Chosen::Fresh => panic!("fresh"),
        }
    }

    #[test]
    fn format_then_updates_become_durable_in_order() {
        let mut disk = created_disk(SimDiskOptions::default());
        let mut store = SuperblockStore::format(identity());
        assert_eq!(settle(&mut store, &mut disk), vec![0]);
        let sequence = store.update(|superblock| promise(superblock, 1, 3));
        assert_eq!(sequence, 1);
        assert_eq!(settle(&mut store, &mut disk), vec![1]);
        let on_disk = read_back(&disk);
        assert_eq!(on_disk.sequence, 1);
        assert_eq!(on_disk.group(GroupId(1)).unwrap().promised, Ballot { round: 3, node: 1 });
        assert_eq!(store.durable(), Some(&on_disk));
    }

    #[test]
    fn changes_during_a_write_coalesce_into_the_next_version() {
        let mut disk = created_disk(SimDiskOptions::default());
        let mut store = SuperblockStore::format(identity());
        settle(&mut store, &mut disk);
        store.update(|superblock| promise(superblock, 1, 2));
        for (op, request) in store.pump() {
            disk.submit(op, request);
        }
        // Version 1 is in flight: these three changes all ride version 2.
        let sequences: Vec<u64> =
            (3..6).map(|round| store.update(|superblock| promise(superblock, 2, round))).collect();
        assert_eq!(sequences, vec![2, 2, 2]);
        assert_eq!(settle(&mut store, &mut disk), vec![1, 2]);
        let on_disk = read_back(&disk);
        assert_eq!(on_disk.group(GroupId(2)).unwrap().promised.round, 5);
        assert_eq!(on_disk.group(GroupId(1)).unwrap().promised.round, 2, "kept from version 1");
    }

    #[test]
    fn a_restart_rewrites_before_any_update() {
        let mut disk = created_disk(SimDiskOptions::default());
        let mut store = SuperblockStore::format(identity());
        settle(&mut store, &mut disk);
        store.update(|superblock| promise(superblock, 1, 4));
        settle(&mut store, &mut disk);
        let crashed = disk.crash(3);
        let bytes = crashed.contents(FileId::Superblock).unwrap();
        let areas: Vec<&[u8]> = bytes.chunks(SUPERBLOCK_COPY_SIZE_BYTES).collect();
        let Chosen::Found(found) = choose(&areas).unwrap() else { panic!("fresh") };
        let (rewrite, plan) = found.rewrite();
        let mut disk = crashed;
        let mut store = SuperblockStore::recovered(found.superblock.clone(), rewrite.clone(), plan);
        assert_eq!(settle(&mut store, &mut disk), vec![rewrite.sequence]);
        let next = store.update(|superblock| promise(superblock, 1, 5));
        assert_eq!(next, rewrite.sequence + 1);
        settle(&mut store, &mut disk);
        assert_eq!(read_back(&disk).group(GroupId(1)).unwrap().promised.round, 5);
    }

    #[test]
    fn a_failed_sync_is_fatal() {
        let options = SimDiskOptions { sync_error_ppm: 1_000_000, ..SimDiskOptions::default() };
        let mut disk = created_disk(options);
        let mut store = SuperblockStore::format(identity());
        let mut completions = Vec::new();
        let mut failure = None;
        for _ in 0..20 {
            for (op, request) in store.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            for completion in completions.drain(..) {
                if let Err(error) = store.on_completion(&completion) {
                    failure = Some(error);
                }
            }
        }
        assert_eq!(failure.map(|error| error.operation), Some("sync"));
        assert_eq!(store.durable(), None);
    }
}
