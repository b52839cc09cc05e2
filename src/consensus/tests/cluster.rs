//! Three replicas on a perfect network: values get chosen, every replica applies the same
//! sequence, and the group survives the master's crash and re-election.

use super::*;
use crate::constants::ELECTION_TIMEOUT_TICKS_MAX;

fn propose(cluster: &mut Cluster, master: u64, text: &str) -> Slot {
    cluster.with(master, |replica, effects| replica.propose(bytes(text), effects)).unwrap()
}

#[test]
fn three_replicas_choose_and_apply_the_same_sequence() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let master = cluster.run_until_master(4 * ELECTION_TIMEOUT_TICKS_MAX);
    for index in 0..10 {
        propose(&mut cluster, master, &format!("w{index}"));
    }
    cluster.settle();
    cluster.run(30); // Heartbeats carry the last commit frontier.
    let expected: Vec<String> = (0..10).map(|index| format!("w{index}")).collect();
    for id in [1, 2, 3] {
        assert_eq!(cluster.batches(id), expected, "replica {id}");
        assert_eq!(cluster.applied[&n(id)], cluster.applied[&n(master)]);
    }
    let claims = cluster.applied[&n(1)]
        .iter()
        .filter(|(_, value)| matches!(value.kind, ValueKind::MasterClaim { .. }))
        .count();
    assert_eq!(claims, 1, "one master claim, before every batch");
}

#[test]
fn the_group_survives_a_master_crash_and_re_election() {
    let mut cluster = Cluster::new(&[1, 2, 3]);
    let first = cluster.run_until_master(4 * ELECTION_TIMEOUT_TICKS_MAX);
    propose(&mut cluster, first, "before");
    cluster.settle();
    let promised = cluster.replica(first).promised();
    cluster.crash(first);
    let second = cluster.run_until_master(6 * ELECTION_TIMEOUT_TICKS_MAX);
    assert_ne!(first, second);
    propose(&mut cluster, second, "after");
    cluster.settle();
    cluster.restart(first);
    cluster.run(3 * ELECTION_TIMEOUT_TICKS_MAX);
    assert_eq!(cluster.master(), Some(second), "the restarted node does not depose it");
    assert!(cluster.replica(first).promised() >= promised, "its promise survived");
    for id in [1, 2, 3] {
        assert_eq!(cluster.batches(id), ["before", "after"], "replica {id}");
        assert_eq!(cluster.applied[&n(id)], cluster.applied[&n(second)]);
    }
}
