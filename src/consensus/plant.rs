//! Bugs planted in the core on purpose, so the simulator can show its checkers catch them.
//!
//! Each [`Plant`] is a small, realistic mistake at the real code site (the acceptor, the
//! learner, the master), guarded by `Replica::planted`. Only builds with `cfg(test)` or the
//! `sim` feature have a way to plant one (`Replica::with_plant`, `Replica::set_plant`) and a
//! field to hold it; elsewhere `planted` is the constant `false`, so production builds carry
//! no reachable plant code path.
//!
//! Must never: be planted outside the simulator or the tests.

use super::replica::Replica;

/// A bug the simulator can plant in the core. See each variant for what goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plant {
    /// An acceptor answers `Accepted` before its accept is durable (the message is built with
    /// `Accepted::received`, bypassing the persist's proof).
    ReplyBeforePersist,
    /// An acceptor answering a `Prepare` asks its disk to persist no promise, yet announces
    /// the promise as durable.
    PromiseNotPersisted,
    /// A candidate takes its own promise for a phase-1 quorum: as master it proposes, and
    /// acceptors accept, under a ballot no quorum prepared (values chosen before are missed).
    AcceptUnderUnpreparedBallot,
    /// The learner applies every chosen slot as soon as it is chosen, holes below or not.
    ApplyOutOfOrder,
    /// A master never steps down for want of a quorum (no check-quorum) and serves lease
    /// reads whether or not a quorum acknowledged a recent round.
    LeaseReadWithoutCheckQuorum,
}

impl Plant {
    /// Every plant.
    pub const ALL: [Plant; 5] = [
        Plant::ReplyBeforePersist,
        Plant::PromiseNotPersisted,
        Plant::AcceptUnderUnpreparedBallot,
        Plant::ApplyOutOfOrder,
        Plant::LeaseReadWithoutCheckQuorum,
    ];

    /// The plant's command line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Plant::ReplyBeforePersist => "reply-before-persist",
            Plant::PromiseNotPersisted => "promise-not-persisted",
            Plant::AcceptUnderUnpreparedBallot => "accept-under-unprepared-ballot",
            Plant::ApplyOutOfOrder => "apply-out-of-order",
            Plant::LeaseReadWithoutCheckQuorum => "lease-read-without-check-quorum",
        }
    }

    /// One line on what goes wrong.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Plant::ReplyBeforePersist => "core: an acceptor answers Accepted before its persist",
            Plant::PromiseNotPersisted => {
                "core: the Prepare path persists no promise, yet announces it"
            }
            Plant::AcceptUnderUnpreparedBallot => {
                "core: a candidate masters on its own promise, no phase-1 quorum"
            }
            Plant::ApplyOutOfOrder => "core: chosen slots are applied as chosen, not in order",
            Plant::LeaseReadWithoutCheckQuorum => {
                "core: no check-quorum; lease reads served without a confirmed round"
            }
        }
    }

    /// The plant named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Plant> {
        Plant::ALL.into_iter().find(|plant| plant.name() == name)
    }
}

#[cfg(any(test, feature = "sim"))]
impl Replica {
    /// This replica with `plant` planted. Tests and the simulator only.
    #[must_use]
    pub fn with_plant(mut self, plant: Plant) -> Replica {
        self.plant = Some(plant);
        self
    }

    /// Plants `plant`, or none. Tests and the simulator only.
    pub fn set_plant(&mut self, plant: Option<Plant>) {
        self.plant = plant;
    }

    /// The plant planted, if any.
    #[must_use]
    pub fn plant(&self) -> Option<Plant> {
        self.plant
    }

    /// Whether `plant` is planted here.
    pub(super) fn planted(&self, plant: Plant) -> bool {
        self.plant == Some(plant)
    }
}

#[cfg(not(any(test, feature = "sim")))]
impl Replica {
    /// Never: production builds cannot plant a bug.
    #[allow(clippy::unused_self)]
    #[inline]
    pub(super) fn planted(&self, _plant: Plant) -> bool {
        false
    }
}
