//! Quorums: which sets of acceptors may decide a phase.
//!
//! Paxos is safe as long as every phase-1 quorum (Prepare/Promise) intersects every phase-2
//! quorum (Accept/Accepted): the new master then always hears of any value that may have been
//! chosen (Flexible Paxos, Howard et al. 2016). Majorities of the voters are the default; other
//! sizes are allowed only when `phase1 + phase2 > voters` (NWR-style trade-offs, e.g. fast
//! phase 2 with a large phase 1). During a membership change the configuration is *joint*: a
//! set is a quorum only if it is a quorum of the old voters **and** of the new voters
//! (the original design got this check wrong; it is tested exhaustively below).
//!
//! Learners never count. Pure: sets in, yes/no out.

use std::collections::BTreeSet;

use crate::types::NodeId;

/// The two Paxos phases, whose quorums must intersect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Prepare/Promise: electing a master for a ballot.
    One,
    /// Accept/Accepted: choosing a value for a slot.
    Two,
}

/// Why a quorum configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// No voters.
    #[error("a configuration needs at least one voter")]
    NoVoters,
    /// A quorum size of zero or above the number of voters.
    #[error("quorum size {size} is not between 1 and the {voters} voters")]
    SizeOutOfRange {
        /// The size asked for.
        size: usize,
        /// The voters.
        voters: usize,
    },
    /// Phase-1 and phase-2 quorums could miss each other: the safety condition fails.
    #[error("phase-1 size {phase1} + phase-2 size {phase2} must exceed the {voters} voters")]
    NoIntersection {
        /// Phase-1 quorum size.
        phase1: usize,
        /// Phase-2 quorum size.
        phase2: usize,
        /// The voters.
        voters: usize,
    },
}

/// One set of voters with the quorum size of each phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorums {
    voters: BTreeSet<NodeId>,
    phase1: usize,
    phase2: usize,
}

impl Quorums {
    /// Majorities of `voters` in both phases (the default).
    ///
    /// # Errors
    /// [`QuorumError::NoVoters`] for an empty set.
    pub fn majority(voters: BTreeSet<NodeId>) -> Result<Quorums, QuorumError> {
        let majority = voters.len() / 2 + 1;
        Quorums::flexible(voters, majority, majority)
    }

    /// Explicit quorum sizes; safe only when `phase1 + phase2 > voters`, which is checked.
    ///
    /// # Errors
    /// See [`QuorumError`].
    pub fn flexible(
        voters: BTreeSet<NodeId>,
        phase1: usize,
        phase2: usize,
    ) -> Result<Quorums, QuorumError> {
        let count = voters.len();
        if count == 0 {
            return Err(QuorumError::NoVoters);
        }
        for size in [phase1, phase2] {
            if size == 0 || size > count {
                return Err(QuorumError::SizeOutOfRange { size, voters: count });
            }
        }
        if phase1 + phase2 <= count {
            return Err(QuorumError::NoIntersection { phase1, phase2, voters: count });
        }
        Ok(Quorums { voters, phase1, phase2 })
    }

    /// The voters.
    #[must_use]
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// The quorum size of `phase` (for encoders of a membership: `wire/`).
    #[must_use]
    pub fn size(&self, phase: Phase) -> usize {
        match phase {
            Phase::One => self.phase1,
            Phase::Two => self.phase2,
        }
    }

    /// Whether the voters among `acks` reach the quorum size of `phase`.
    #[must_use]
    pub fn is_quorum(&self, phase: Phase, acks: &BTreeSet<NodeId>) -> bool {
        let needed = match phase {
            Phase::One => self.phase1,
            Phase::Two => self.phase2,
        };
        self.voters.intersection(acks).count() >= needed
    }
}

/// The quorums in force: one configuration, or two during a membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Configuration {
    /// A stable configuration.
    Single(Quorums),
    /// A change in progress: every decision needs a quorum of both.
    Joint {
        /// The configuration being left.
        old: Quorums,
        /// The configuration being entered.
        new: Quorums,
    },
}

impl Configuration {
    /// Whether `acks` is a quorum for `phase`: in a joint configuration, of both halves.
    #[must_use]
    pub fn is_quorum(&self, phase: Phase, acks: &BTreeSet<NodeId>) -> bool {
        match self {
            Configuration::Single(quorums) => quorums.is_quorum(phase, acks),
            Configuration::Joint { old, new } => {
                old.is_quorum(phase, acks) && new.is_quorum(phase, acks)
            }
        }
    }

    /// Every node whose vote counts in this configuration.
    #[must_use]
    pub fn voters(&self) -> BTreeSet<NodeId> {
        match self {
            Configuration::Single(quorums) => quorums.voters().clone(),
            Configuration::Joint { old, new } => {
                old.voters().union(new.voters()).copied().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|id| NodeId::new(*id).unwrap()).collect()
    }

    /// Every subset of `universe`.
    fn subsets(universe: &BTreeSet<NodeId>) -> Vec<BTreeSet<NodeId>> {
        let members: Vec<NodeId> = universe.iter().copied().collect();
        (0..1_u32 << members.len())
            .map(|mask| {
                members
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| mask >> index & 1 == 1)
                    .map(|(_, node)| *node)
                    .collect()
            })
            .collect()
    }

    /// The safety property itself, checked exhaustively: every phase-1 quorum shares a voter
    /// with every phase-2 quorum.
    fn assert_quorums_intersect(configuration: &Configuration, universe: &BTreeSet<NodeId>) {
        let all = subsets(universe);
        let phase1: Vec<&BTreeSet<NodeId>> =
            all.iter().filter(|set| configuration.is_quorum(Phase::One, set)).collect();
        let phase2: Vec<&BTreeSet<NodeId>> =
            all.iter().filter(|set| configuration.is_quorum(Phase::Two, set)).collect();
        assert!(!phase1.is_empty() && !phase2.is_empty());
        for one in &phase1 {
            for two in &phase2 {
                let shared =
                    one.intersection(two).any(|node| configuration.voters().contains(node));
                assert!(shared, "{one:?} and {two:?} miss each other in {configuration:?}");
            }
        }
    }

    #[test]
    fn majorities_are_the_default_and_intersect() {
        for count in 1..=7_u64 {
            let voters = nodes(&(1..=count).collect::<Vec<_>>());
            let quorums = Quorums::majority(voters.clone()).unwrap();
            assert_quorums_intersect(&Configuration::Single(quorums.clone()), &voters);
            let majority = usize::try_from(count).unwrap() / 2 + 1;
            let just_enough: BTreeSet<NodeId> = voters.iter().take(majority).copied().collect();
            let one_short: BTreeSet<NodeId> = voters.iter().take(majority - 1).copied().collect();
            assert!(quorums.is_quorum(Phase::Two, &just_enough));
            assert!(!quorums.is_quorum(Phase::Two, &one_short));
        }
    }

    #[test]
    fn flexible_sizes_are_accepted_only_when_they_intersect() {
        let voters = nodes(&[1, 2, 3, 4, 5]);
        for phase1 in 1..=5 {
            for phase2 in 1..=5 {
                match Quorums::flexible(voters.clone(), phase1, phase2) {
                    Ok(quorums) => {
                        assert!(phase1 + phase2 > 5);
                        assert_quorums_intersect(&Configuration::Single(quorums), &voters);
                    }
                    Err(error) => {
                        assert!(phase1 + phase2 <= 5, "{phase1}+{phase2}: {error}");
                        assert!(matches!(error, QuorumError::NoIntersection { .. }));
                    }
                }
            }
        }
        assert_eq!(Quorums::majority(BTreeSet::new()), Err(QuorumError::NoVoters));
        assert!(matches!(
            Quorums::flexible(voters, 6, 1),
            Err(QuorumError::SizeOutOfRange { size: 6, voters: 5 })
        ));
    }

    #[test]
    fn learners_and_strangers_never_count() {
        let quorums = Quorums::majority(nodes(&[1, 2, 3])).unwrap();
        assert!(!quorums.is_quorum(Phase::One, &nodes(&[1, 4, 5, 6])));
        assert!(quorums.is_quorum(Phase::One, &nodes(&[1, 3, 9])));
    }

    /// A joint configuration needs a majority of the old voters and of the new ones. Counting
    /// a majority of the union instead (the original design's mistake) lets {3, 4, 5} decide
    /// while the old voters {1, 2, 3} have no majority in it.
    #[test]
    fn a_joint_quorum_needs_both_halves() {
        let old = Quorums::majority(nodes(&[1, 2, 3])).unwrap();
        let new = Quorums::majority(nodes(&[3, 4, 5])).unwrap();
        let joint = Configuration::Joint { old: old.clone(), new: new.clone() };
        assert!(!joint.is_quorum(Phase::Two, &nodes(&[3, 4, 5])), "no majority of the old");
        assert!(!joint.is_quorum(Phase::Two, &nodes(&[1, 2, 3])), "no majority of the new");
        assert!(joint.is_quorum(Phase::Two, &nodes(&[2, 3, 4])));
        let union = Quorums::majority(nodes(&[1, 2, 3, 4, 5])).unwrap();
        assert!(union.is_quorum(Phase::Two, &nodes(&[3, 4, 5])), "the wrong rule would accept");
        let universe = nodes(&[1, 2, 3, 4, 5]);
        assert_quorums_intersect(&joint, &universe);
        // A joint quorum also intersects every quorum of either half alone: decisions made
        // before and after the change cannot miss each other.
        for set in subsets(&universe) {
            if joint.is_quorum(Phase::One, &set) {
                for other in subsets(&universe) {
                    for half in [&old, &new] {
                        if half.is_quorum(Phase::Two, &other) {
                            assert!(set.intersection(&other).next().is_some());
                        }
                    }
                }
            }
        }
    }
}
