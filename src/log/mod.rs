//! The durable, append-only, segmented log under every Paxos group of a core.
//!
//! Owns: the record format (header and payload CRC32C, see `docs/design/log-format.md` once
//! written), group commit (one fdatasync covers every group on the core), row locks per
//! (group, slot), the acceptor superblock, the slot index for catch-up reads, snapshots,
//! truncation and crash recovery. It knows bytes, checksums and slots, not Paxos rules; its
//! decisions are plain synchronous code and only disk completions are asynchronous, through a
//! completion-based disk seam with a real (`io_uring`) and a simulated implementation.
//!
//! Must never: acknowledge a record before the fsync that makes it durable, retry a failed
//! fsync (an fsync error stops the process), use a byte read back before its checksum passed,
//! silently drop corruption, or depend on any layer but `types` and `constants`.
//!
//! Built so far: the disk seam (`disk`) and its simulated implementation (`sim_disk`, compiled
//! for tests and the `sim` feature).

pub mod disk;
#[cfg(any(test, feature = "sim"))]
pub mod sim_disk;
