//! Tests of the shard's storage over the simulated disk: round trips through restarts, the
//! durability rule of persists, power loss at every step, snapshots and truncation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::storage::{RecoveredGroup, Storage, StorageEvent};
use crate::consensus::{Membership, PersistId, Record, SnapshotMeta, Value, ValueKind};
use crate::log::disk::Disk;
use crate::log::open::{Opened, Opener};
use crate::log::sim_disk::{SimDisk, SimDiskOptions};
use crate::log::superblock::Superblock;
use crate::log::writer::WriterOptions;
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

const OPTIONS: WriterOptions =
    WriterOptions { segment_size_bytes: 8 * 4096, staged_bytes_max: 4 * 4096 };

const GROUPS: [GroupId; 2] = [GroupId(1), GroupId(2)];

fn initial() -> SnapshotMeta {
    let voters = (1..=3).map(|id| NodeId::new(id).unwrap()).collect();
    let membership = Membership::majority(1, voters, BTreeSet::new()).unwrap();
    SnapshotMeta { slot: Slot(0), configurations: vec![(Slot(0), membership)], stamp_millis: 0 }
}

fn open(disk: &mut SimDisk) -> Opened {
    let identity = Superblock::new(1, NodeId::new(1).unwrap(), CoreIndex(0));
    let mut opener = Opener::new(OPTIONS, identity, disk.list());
    let mut completions = Vec::new();
    for _ in 0..100_000 {
        if let Some(result) = opener.poll_ready() {
            return result.expect("opens");
        }
        for (op, request) in opener.pump() {
            disk.submit(op, request);
        }
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            if let Some(result) = opener.on_completion(&completion) {
                return result.expect("opens");
            }
        }
    }
    panic!("opening did not finish");
}

/// One round of the disk: submit, poll, complete. Returns the events.
fn step(storage: &mut Storage, disk: &mut SimDisk) -> Vec<StorageEvent> {
    for (op, request) in storage.pump() {
        disk.submit(op, request);
    }
    let mut completions = Vec::new();
    disk.poll(&mut completions);
    for completion in completions {
        storage.on_completion(&completion).expect("no faults");
    }
    storage.take_events()
}

fn settle(storage: &mut Storage, disk: &mut SimDisk) -> Vec<StorageEvent> {
    let mut events = Vec::new();
    for _ in 0..10_000 {
        events.extend(step(storage, disk));
        if storage.log().is_idle() && disk.in_flight_count() == 0 && !storage.is_recovering() {
            events.extend(step(storage, disk));
            return events;
        }
    }
    panic!("storage did not settle");
}

fn recover(disk: &mut SimDisk) -> BTreeMap<GroupId, RecoveredGroup> {
    let (_, groups) = recover_storage(disk);
    groups
}

fn recover_storage(disk: &mut SimDisk) -> (Storage, BTreeMap<GroupId, RecoveredGroup>) {
    let opened = open(disk);
    assert!(opened.corruption.is_empty(), "{:?}", opened.corruption);
    let mut storage = Storage::recover(opened, &GROUPS, &initial());
    for _ in 0..10_000 {
        if let Some(groups) = storage.take_recovered() {
            let groups = groups.into_iter().map(|(group, result)| (group, result.unwrap()));
            return (storage, groups.collect());
        }
        step(&mut storage, disk);
    }
    panic!("recovery did not finish");
}

fn new_storage(seed: u64, delay: u32) -> (Storage, SimDisk) {
    let options = SimDiskOptions { completion_delay_polls_max: delay, ..SimDiskOptions::default() };
    let mut disk = SimDisk::new(seed, options);
    let opened = open(&mut disk);
    let mut storage = Storage::new(opened.log);
    while !storage.is_formatted() {
        step(&mut storage, &mut disk);
    }
    (storage, disk)
}

fn ballot(round: u64) -> Ballot {
    Ballot { round, node: 2 }
}

fn value(slot: u64) -> Value {
    let batch: Arc<[u8]> = Arc::from(format!("value of slot {slot}").as_bytes());
    Value { stamp_millis: slot * 10, kind: ValueKind::Batch(batch) }
}

fn record(slot: u64, round: u64, chosen: bool) -> Record {
    Record { slot: Slot(slot), ballot: ballot(round), value: value(slot), chosen }
}

fn persisted(events: &[StorageEvent]) -> Vec<(GroupId, PersistId)> {
    events
        .iter()
        .filter_map(|event| match event {
            StorageEvent::Persisted { group, id } => Some((*group, *id)),
            _ => None,
        })
        .collect()
}

#[test]
fn persists_round_trip_through_a_restart() {
    let (mut storage, mut disk) = new_storage(1, 2);
    let group = GROUPS[0];
    storage.persist(group, PersistId(1), Some(ballot(3)), &[], &[]).unwrap();
    let records: Vec<Record> = (0..10).map(|slot| record(slot, 4, false)).collect();
    storage.persist(group, PersistId(2), Some(ballot(4)), &records, &[]).unwrap();
    storage
        .persist(group, PersistId(3), None, &[record(10, 4, true)], &[Slot(2), Slot(5)])
        .unwrap();
    storage.persist(GROUPS[1], PersistId(1), Some(ballot(9)), &[], &[]).unwrap();
    let events = settle(&mut storage, &mut disk);
    assert_eq!(persisted(&events).len(), 4, "{events:?}");
    for seed in 0..4 {
        let mut crashed = disk.crash(seed);
        let groups = recover(&mut crashed);
        let durable = &groups[&group].durable;
        assert_eq!(durable.promised, ballot(3), "the promise covered by records is not needed");
        assert_eq!(durable.snapshot, initial());
        let mut records = durable.records.clone();
        records.sort_by_key(|record| record.slot);
        assert_eq!(records.len(), 11);
        for record in &records {
            let chosen = [2, 5, 10].contains(&record.slot.0);
            assert_eq!(record, &self::record(record.slot.0, 4, chosen));
        }
        assert_eq!(groups[&GROUPS[1]].durable.promised, ballot(9));
        assert!(groups[&GROUPS[1]].durable.records.is_empty());
        assert!(groups.values().all(|group| group.state.is_none()));
    }
}

/// At every step, a reported persist has its records in the log's durable index and its
/// promise in the durable superblock.
#[test]
fn a_persist_is_reported_only_when_records_and_superblock_are_durable() {
    for seed in 0..10 {
        let (mut storage, mut disk) = new_storage(seed, 3);
        let group = GROUPS[1];
        let mut expected: BTreeMap<PersistId, (Option<Ballot>, Vec<Record>)> = BTreeMap::new();
        let mut reported = 0;
        for id in 1..=40_u64 {
            let promised = (id % 3 == 0).then(|| ballot(id));
            let records: Vec<Record> = if id % 2 == 0 {
                vec![record(id, 1, false), record(id + 100, 1, false)]
            } else {
                vec![]
            };
            storage.persist(group, PersistId(id), promised, &records, &[]).unwrap();
            expected.insert(PersistId(id), (promised, records));
            for _ in 0..(id % 4) {
                for (_, id) in persisted(&step(&mut storage, &mut disk)) {
                    check_durable(&storage, group, &expected[&id]);
                    reported += 1;
                }
            }
        }
        for (_, id) in persisted(&settle(&mut storage, &mut disk)) {
            check_durable(&storage, group, &expected[&id]);
            reported += 1;
        }
        assert_eq!(reported, 40, "seed {seed}");
    }
}

fn check_durable(
    storage: &Storage,
    group: GroupId,
    (promised, records): &(Option<Ballot>, Vec<Record>),
) {
    for record in records {
        let location = storage.log().location(group, record.slot);
        assert!(location.is_some_and(|l| l.ballot == record.ballot), "{:?}", record.slot);
    }
    if let Some(promised) = promised {
        let superblock = storage.log().superblock().and_then(|s| s.group(group).cloned());
        assert!(superblock.is_some_and(|meta| meta.promised >= *promised), "{promised}");
    }
}

/// Power loss after every poll: every persist reported before the crash survives in every
/// crash image; the records and promises of unreported ones may or may not.
#[test]
fn a_crash_loses_only_unreported_persists() {
    for seed in 0..6 {
        for crash_after in [1_u64, 2, 3, 5, 8, 13, 21, 34] {
            let (mut storage, mut disk) = new_storage(seed, 2);
            let group = GROUPS[0];
            let mut done: Vec<(Option<Ballot>, Vec<Record>)> = Vec::new();
            let mut sent: BTreeMap<PersistId, (Option<Ballot>, Vec<Record>)> = BTreeMap::new();
            for round in 0..crash_after {
                let id = PersistId(round + 1);
                let records: Vec<Record> =
                    (0..3).map(|i| record(round * 3 + i, round + 1, round % 2 == 1)).collect();
                let promised = Some(ballot(round + 2));
                storage.persist(group, id, promised, &records, &[]).unwrap();
                sent.insert(id, (promised, records));
                for (_, id) in persisted(&step(&mut storage, &mut disk)) {
                    done.push(sent[&id].clone());
                }
            }
            for image in 0..3 {
                let mut crashed = disk.crash(seed * 100 + image);
                let groups = recover(&mut crashed);
                let durable = &groups[&group].durable;
                let promised =
                    durable.records.iter().map(|r| r.ballot).max().unwrap_or(Ballot::ZERO);
                let promised = promised.max(durable.promised);
                for (ballot, records) in &done {
                    assert!(ballot.is_none_or(|b| promised >= b), "promise lost");
                    for record in records {
                        assert!(durable.records.contains(record), "lost {record:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_snapshot_truncates_and_survives_restarts() {
    let (mut storage, mut disk) = new_storage(5, 1);
    let group = GROUPS[0];
    for slot in 0..200_u64 {
        let records = [record(slot, 7, false)];
        storage.persist(group, PersistId(slot + 1), None, &records, &[Slot(slot)]).unwrap();
        if slot % 10 == 9 {
            settle(&mut storage, &mut disk);
        }
    }
    settle(&mut storage, &mut disk);
    let meta = SnapshotMeta { slot: Slot(150), stamp_millis: 1490, ..initial() };
    let state = vec![0xAB; 3 * crate::log::snapshot::SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX / 2];
    storage.take_snapshot(group, &meta, &state).unwrap();
    let events = settle(&mut storage, &mut disk);
    assert!(events.contains(&StorageEvent::SnapshotTaken { group, slot: Slot(150) }), "{events:?}");
    let check = |groups: &BTreeMap<GroupId, RecoveredGroup>| {
        let recovered = &groups[&group];
        assert_eq!(recovered.durable.snapshot, meta);
        assert_eq!(recovered.state.as_deref(), Some(&state[..]));
        let mut slots: Vec<u64> = recovered.durable.records.iter().map(|r| r.slot.0).collect();
        slots.sort_unstable();
        assert_eq!(slots, (150..200).collect::<Vec<_>>());
        assert!(recovered.durable.records.iter().all(|record| record.chosen));
        assert!(recovered.durable.promised >= ballot(7), "the truncated records' ballot stays");
    };
    for seed in 0..3 {
        let mut crashed = disk.crash(seed);
        let (mut storage, groups) = recover_storage(&mut crashed);
        check(&groups);
        // A peer's newer snapshot installs over it.
        let newer = SnapshotMeta { slot: Slot(300), ..meta.clone() };
        storage.install_snapshot(group, &newer, b"peer state").unwrap();
        let events = settle(&mut storage, &mut crashed);
        let installed = StorageEvent::SnapshotInstalled { group, meta: newer.clone() };
        assert!(events.contains(&installed), "{events:?}");
        let groups = recover(&mut crashed.crash(seed));
        assert_eq!(groups[&group].durable.snapshot, newer);
        assert_eq!(groups[&group].state.as_deref(), Some(&b"peer state"[..]));
        assert!(groups[&group].durable.records.is_empty());
    }
}

/// A full disk aborts a snapshot cleanly: reported, nothing installed, persists go on.
#[test]
fn a_full_disk_aborts_a_snapshot() {
    let options = SimDiskOptions { capacity_bytes: 600 * 1024, ..SimDiskOptions::default() };
    let mut disk = SimDisk::new(3, options);
    let opened = open(&mut disk);
    let mut storage = Storage::new(opened.log);
    let group = GROUPS[0];
    storage.persist(group, PersistId(1), None, &[record(0, 1, true)], &[]).unwrap();
    settle(&mut storage, &mut disk);
    let meta = SnapshotMeta { slot: Slot(1), ..initial() };
    storage.take_snapshot(group, &meta, &vec![1; 2 << 20]).unwrap();
    let events = settle(&mut storage, &mut disk);
    assert!(
        events.iter().any(|event| matches!(event, StorageEvent::SnapshotAborted { .. })),
        "{events:?}"
    );
    assert!(storage.log().snapshot(group).is_none());
    storage.persist(group, PersistId(2), None, &[record(1, 1, false)], &[]).unwrap();
    assert_eq!(persisted(&settle(&mut storage, &mut disk)), vec![(group, PersistId(2))]);
}
