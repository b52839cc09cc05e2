//! The durable, append-only, segmented log under every Paxos group of a core.
//!
//! Owns: the record format (header and payload CRC32C, see `docs/design/log-format.md`),
//! group commit (one fdatasync covers every group on the core), row locks per (group, slot),
//! the acceptor superblock, the slot index for catch-up reads, snapshots, truncation and
//! crash recovery. It knows bytes, checksums and slots, not Paxos rules; its
//! decisions are plain synchronous code and only disk completions are asynchronous, through a
//! completion-based disk seam with a real (`io_uring`) and a simulated implementation.
//!
//! Must never: acknowledge a record before the fsync that makes it durable, retry a failed
//! fsync (an fsync error stops the process), use a byte read back before its checksum passed,
//! silently drop corruption, or depend on any layer but `types` and `constants`.
//!
//! Built so far, each piece pure and tested on the simulated disk:
//! - `disk`: the completion-based seam; `sim_disk`: its fault-injecting simulation (for tests,
//!   the simulator and crash-point enumeration);
//! - `format`: records and the framing contract; `superblock`: acceptor metadata in 4 copies;
//!   `superblock_store`: its write path, one version in flight, changes coalesced;
//! - `writer`: staging and self-clocking group commit in sector-aligned batches, segment
//!   roll-over; `recovery`: scan, verify, rebuild the index, cut the torn tail, report
//!   corruption; `index`: (group, slot) -> latest durable record; `row_locks`: per-slot order;
//!   `reader`: catch-up reads of a group's slot range, coalesced and verified;
//! - `snapshot`: per-group snapshot files streamed in chunks, checksummed, installed by
//!   rename; `log`: `Log`, the one interface the shard uses: routes completions, keeps the
//!   index and the row locks in step with durability, names installed snapshots in the
//!   superblock, truncates behind them and removes segments no group needs; `open`: opening a
//!   log at start-up through the seam in bounded memory (read in order, choose the superblock,
//!   recover segment by segment, check snapshots, wipe and remove leftovers).
//!
//! Still to come: the raw-ring `RWF_DSYNC` disk of decision 0003 (the glommio one is
//! `runtime/disk_dma.rs`).

pub mod disk;
pub mod format;
pub mod index;
// The file is named after its type, `Log`, as every file here is (docs/STYLE.md).
#[allow(clippy::module_inception)]
pub mod log;
pub mod open;
pub mod reader;
pub mod recovery;
pub mod row_locks;
pub mod sim_disk;
pub mod snapshot;
pub mod superblock;
pub mod superblock_store;
pub mod writer;
