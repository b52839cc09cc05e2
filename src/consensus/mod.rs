//! Multi-Paxos for one group, sans I/O.
//!
//! Owns: ballots, the acceptor's promised ballot and accepted slots, the master's phase 1
//! (Prepare/Promise, once per master) and phase 2 pipeline (Accept/Accepted for up to W slots),
//! the chosen/committed/applied frontiers, catch-up, membership and the master lease. Inputs go
//! in (`on_message`, `on_tick`, `on_persisted`, `propose`), effects come out (Send, Persist,
//! Apply, Reply); an effect that depends on durability can only be emitted after its persist
//! completes. The protocol is written down in `docs/design/protocol.md`.
//!
//! Must never: perform I/O, read a clock (time arrives as ticks and master-stamped batch
//! times), draw randomness it was not given, iterate a hash map where order matters, or depend
//! on any layer but `types` and `constants`. `tests/tidy.rs` enforces this.
//!
//! Built so far: `quorum` (majority, flexible and joint quorums, with the intersection property
//! checked exhaustively). The replica itself comes with the issue "Multi-Paxos core (sans-IO)
//! and the deterministic cluster simulator".

pub mod quorum;
