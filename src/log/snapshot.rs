//! Per-group snapshot files: streamed in chunks, checksummed, installed atomically.
//!
//! A group's state machine (or a master sending it to a lagging replica) hands its snapshot
//! over in chunks of at most [`SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX`] bytes; they are written to a
//! *staging* file as they come, a few at a time (bounded, with back-pressure), so a snapshot of
//! any size needs bounded memory. Installing is the classic sequence:
//!
//! ```text
//!   Create staging --> Write chunk 0..n (Resize as it grows) --> Write header (sector 0)
//!     --> Sync staging --> Rename staging -> snapshot --> SyncDirectory --> installed
//! ```
//!
//! and only then does the caller (the [`crate::log::log::Log`]) name the snapshot in the
//! superblock, together with the truncation point it allows. The superblock is the authority:
//! a snapshot file it does not name is a leftover and is removed at start-up.
//!
//! # File layout (little-endian; `docs/design/log-format.md`, "Snapshots")
//! - Sector 0: the file header, written last. Bytes 0..8 magic `KLNSNAP1`, 8..10 format
//!   version, 12..16 group, 16..24 the last slot the snapshot covers, 24..32 payload bytes,
//!   32..36 chunk count, 36..40 CRC32C of the whole payload in order, 60..64 CRC32C of bytes
//!   0..60. The rest of the sector is zero.
//! - Chunk `i` starts at `4096 + i * SNAPSHOT_CHUNK_STRIDE_BYTES`: a 64-byte chunk header
//!   (magic `KLNSCHK1`, group, index, slot, payload length, payload CRC32C, header CRC32C at
//!   60..64), then the payload, zero-padded to a sector boundary.
//!
//! Every chunk checks on its own (its header names group, slot and index, so a chunk read from
//! the wrong place or the wrong snapshot is caught), which is what a peer receiving chunks over
//! the network needs; the header's whole-payload CRC checks that nothing is missing or
//! reordered end to end.
//!
//! # Errors
//! A failed write, resize or sync of a staging file loses nothing acknowledged, but it is an
//! I/O error on the log's device and follows the same fail-stop rule as the log
//! ([`SnapshotError::Disk`]); a full disk only aborts the snapshot (the staging file is removed
//! and the caller may try again later).

use std::collections::{BTreeMap, VecDeque};

use super::disk::{Completion, DISK_SECTOR_SIZE_BYTES, DiskError, FileId, OpId, Request, Response};
use crate::constants::{
    SNAPSHOT_CHUNK_STRIDE_BYTES, SNAPSHOT_CHUNKS_COUNT_MAX, SNAPSHOT_GROWTH_BYTES_MAX,
    SNAPSHOT_WRITES_IN_FLIGHT_MAX,
};
use crate::types::{GroupId, Slot};

/// The first operation id of snapshot requests; they never meet the writer's, the superblock
/// store's, the reader's or the opener's.
pub const SNAPSHOT_OP_BASE: u64 = 4 << 48;

/// Bytes of a chunk's header.
pub const SNAPSHOT_CHUNK_HEADER_SIZE_BYTES: usize = 64;

/// Largest payload of one chunk.
pub const SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX: usize =
    SNAPSHOT_CHUNK_STRIDE_BYTES - SNAPSHOT_CHUNK_HEADER_SIZE_BYTES;

/// Where chunk 0 starts: after the file header's sector.
pub const SNAPSHOT_FIRST_CHUNK_OFFSET: u64 = DISK_SECTOR_SIZE_BYTES as u64;

const FILE_MAGIC: [u8; 8] = *b"KLNSNAP1";
const CHUNK_MAGIC: [u8; 8] = *b"KLNSCHK1";
const FORMAT_VERSION: u16 = 1;
const HEADER_CHECKSUM_OFFSET: usize = 60;

const _: () = assert!(SNAPSHOT_CHUNK_STRIDE_BYTES.is_multiple_of(DISK_SECTOR_SIZE_BYTES));
const _: () = assert!(SNAPSHOT_GROWTH_BYTES_MAX.is_multiple_of(SNAPSHOT_CHUNK_STRIDE_BYTES as u64));
const _: () = assert!(SNAPSHOT_CHUNKS_COUNT_MAX <= u32::MAX as usize);

/// What a snapshot file's header says: enough to read it back chunk by chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The group.
    pub group: GroupId,
    /// The last slot the snapshot covers.
    pub slot: Slot,
    /// Payload bytes, all chunks together.
    pub payload_bytes: u64,
    /// Number of chunks.
    pub chunk_count: u32,
    /// CRC32C of the whole payload, in chunk order.
    pub payload_checksum: u32,
    /// Size of the file, in bytes.
    pub file_size_bytes: u64,
}

impl SnapshotInfo {
    /// The file of the installed snapshot.
    #[must_use]
    pub fn file(&self) -> FileId {
        FileId::Snapshot { group: self.group, number: self.slot.0 }
    }
}

/// A chunk read back and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The group.
    pub group: GroupId,
    /// The last slot the snapshot covers.
    pub slot: Slot,
    /// The chunk's index.
    pub index: u32,
    /// Whether it is the snapshot's last chunk.
    pub is_last: bool,
    /// The payload, verified.
    pub payload: Vec<u8>,
}

/// Why a snapshot operation failed or was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// A snapshot of the group is already being written.
    #[error("a snapshot of group {0} is already being written")]
    InProgress(GroupId),
    /// No snapshot of the group is being written.
    #[error("no snapshot of group {0} is being written")]
    NotInProgress(GroupId),
    /// The snapshot would not be newer than the installed one.
    #[error("group {group}: snapshot at slot {slot} is not newer than the installed one")]
    Stale {
        /// The group.
        group: GroupId,
        /// The slot asked for.
        slot: Slot,
    },
    /// A chunk larger than [`SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX`], or too many chunks.
    #[error("group {group}: {reason}")]
    TooLarge {
        /// The group.
        group: GroupId,
        /// What exceeded which limit.
        reason: String,
    },
    /// Too many chunk writes in flight: retry after some complete.
    #[error("group {0}: snapshot writes are behind; retry later")]
    Backpressure(GroupId),
    /// No installed snapshot of the group (or no such chunk).
    #[error("group {group}: no snapshot chunk {index} installed")]
    NotInstalled {
        /// The group.
        group: GroupId,
        /// The chunk asked for.
        index: u32,
    },
    /// A disk failure while writing: fatal, as for the log (fail-stop).
    #[error("snapshot {operation} of {file} failed: {error}")]
    Disk {
        /// What was being done.
        operation: &'static str,
        /// The file.
        file: FileId,
        /// The disk's error.
        error: DiskError,
    },
}

/// Why a snapshot chunk or header read back is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotReadError {
    /// The disk failed the read.
    #[error("reading {file} failed: {error}")]
    Disk {
        /// The file.
        file: FileId,
        /// The disk's error.
        error: DiskError,
    },
    /// The bytes are not what they must be.
    #[error("{file} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: FileId,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

fn put_u32(out: &mut [u8], at: usize, value: u32) {
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut [u8], at: usize, value: u64) {
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// Offset of chunk `index` in the file.
#[must_use]
pub fn chunk_offset(index: u32) -> u64 {
    SNAPSHOT_FIRST_CHUNK_OFFSET + u64::from(index) * SNAPSHOT_CHUNK_STRIDE_BYTES as u64
}

/// Encodes the file header sector.
#[must_use]
pub fn encode_header(info: &SnapshotInfo) -> Vec<u8> {
    let mut sector = vec![0; DISK_SECTOR_SIZE_BYTES];
    sector[0..8].copy_from_slice(&FILE_MAGIC);
    sector[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    put_u32(&mut sector, 12, info.group.0);
    put_u64(&mut sector, 16, info.slot.0);
    put_u64(&mut sector, 24, info.payload_bytes);
    put_u32(&mut sector, 32, info.chunk_count);
    put_u32(&mut sector, 36, info.payload_checksum);
    let checksum = crc32c::crc32c(&sector[..HEADER_CHECKSUM_OFFSET]);
    put_u32(&mut sector, HEADER_CHECKSUM_OFFSET, checksum);
    sector
}

/// Decodes and checks a file header read from `file` (whose size is `file_size_bytes`).
///
/// # Errors
/// [`SnapshotReadError::Corrupt`] when the magic, checksum, version, placement or sizes are
/// wrong.
pub fn decode_header(
    file: FileId,
    sector: &[u8],
    file_size_bytes: u64,
) -> Result<SnapshotInfo, SnapshotReadError> {
    let corrupt =
        |reason: String| SnapshotReadError::Corrupt { file, offset: 0, reason: reason.clone() };
    if sector.len() < SNAPSHOT_CHUNK_HEADER_SIZE_BYTES || sector[0..8] != FILE_MAGIC {
        return Err(corrupt("no snapshot header".into()));
    }
    let stored = get_u32(sector, HEADER_CHECKSUM_OFFSET);
    if crc32c::crc32c(&sector[..HEADER_CHECKSUM_OFFSET]) != stored {
        return Err(corrupt("header checksum mismatch".into()));
    }
    let version = u16::from_le_bytes([sector[8], sector[9]]);
    if version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {version}, this build reads {FORMAT_VERSION}"
        )));
    }
    let info = SnapshotInfo {
        group: GroupId(get_u32(sector, 12)),
        slot: Slot(get_u64(sector, 16)),
        payload_bytes: get_u64(sector, 24),
        chunk_count: get_u32(sector, 32),
        payload_checksum: get_u32(sector, 36),
        file_size_bytes,
    };
    if let FileId::Snapshot { group, number } | FileId::SnapshotStaging { group, number } = file
        && (group != info.group || number != info.slot.0)
    {
        return Err(corrupt(format!(
            "header names group {} slot {}, the file is {file}",
            info.group, info.slot
        )));
    }
    let chunk_count = u64::from(info.chunk_count);
    let plausible = info.payload_bytes <= chunk_count * SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX as u64
        && (info.chunk_count == 0 || chunk_offset(info.chunk_count - 1) < file_size_bytes);
    if !plausible {
        return Err(corrupt(format!(
            "{} chunks of {} bytes do not fit a file of {file_size_bytes} bytes",
            info.chunk_count, info.payload_bytes
        )));
    }
    Ok(info)
}

/// Encodes chunk `index` of a snapshot, padded to a sector boundary.
///
/// # Panics
/// If `payload` exceeds [`SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX`].
#[must_use]
pub fn encode_chunk(group: GroupId, slot: Slot, index: u32, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX);
    let length = SNAPSHOT_CHUNK_HEADER_SIZE_BYTES + payload.len();
    let mut frame = vec![0; length.next_multiple_of(DISK_SECTOR_SIZE_BYTES)];
    frame[0..8].copy_from_slice(&CHUNK_MAGIC);
    put_u32(&mut frame, 8, group.0);
    put_u32(&mut frame, 12, index);
    put_u64(&mut frame, 16, slot.0);
    put_u32(&mut frame, 24, u32::try_from(payload.len()).expect("below the chunk maximum"));
    put_u32(&mut frame, 28, crc32c::crc32c(payload));
    let checksum = crc32c::crc32c(&frame[..HEADER_CHECKSUM_OFFSET]);
    put_u32(&mut frame, HEADER_CHECKSUM_OFFSET, checksum);
    frame[SNAPSHOT_CHUNK_HEADER_SIZE_BYTES..length].copy_from_slice(payload);
    frame
}

/// Decodes and verifies chunk `index` of the snapshot `info` from `bytes` read at its offset.
///
/// # Errors
/// [`SnapshotReadError::Corrupt`] when anything fails its check.
pub fn decode_chunk(
    info: &SnapshotInfo,
    index: u32,
    bytes: &[u8],
) -> Result<SnapshotChunk, SnapshotReadError> {
    let file = info.file();
    let offset = chunk_offset(index);
    let corrupt = |reason: &str| SnapshotReadError::Corrupt { file, offset, reason: reason.into() };
    if bytes.len() < SNAPSHOT_CHUNK_HEADER_SIZE_BYTES || bytes[0..8] != CHUNK_MAGIC {
        return Err(corrupt("no chunk header"));
    }
    if crc32c::crc32c(&bytes[..HEADER_CHECKSUM_OFFSET]) != get_u32(bytes, HEADER_CHECKSUM_OFFSET) {
        return Err(corrupt("chunk header checksum mismatch"));
    }
    if GroupId(get_u32(bytes, 8)) != info.group
        || get_u32(bytes, 12) != index
        || Slot(get_u64(bytes, 16)) != info.slot
    {
        return Err(corrupt("chunk of another snapshot or place (misdirected)"));
    }
    let length = get_u32(bytes, 24) as usize;
    let end = SNAPSHOT_CHUNK_HEADER_SIZE_BYTES + length;
    if length > SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX || end > bytes.len() {
        return Err(corrupt("chunk length beyond the chunk"));
    }
    let payload = &bytes[SNAPSHOT_CHUNK_HEADER_SIZE_BYTES..end];
    if crc32c::crc32c(payload) != get_u32(bytes, 28) {
        return Err(corrupt("chunk payload checksum mismatch"));
    }
    Ok(SnapshotChunk {
        group: info.group,
        slot: info.slot,
        index,
        is_last: index + 1 == info.chunk_count,
        payload: payload.to_vec(),
    })
}

/// Where a snapshot being written stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Chunks are written as they come; `finish` not yet asked.
    Streaming,
    /// `finish` asked: waiting for the chunk writes to complete.
    Draining,
    /// Header written, then sync, rename, directory sync, one after the other.
    WritingHeader,
    Syncing,
    Renaming,
    SyncingDirectory,
    /// Aborted: waiting for chunk writes in flight, then the staging file is removed.
    Removing,
    /// Aborted: the staging file's removal is in flight.
    RemoveSubmitted,
}

/// One snapshot being written.
#[derive(Debug)]
struct Staging {
    slot: Slot,
    phase: Phase,
    /// The file exists (its `Create` completed).
    created: bool,
    /// The file's size once the resize in flight (if any) completes.
    size_bytes: u64,
    resize_in_flight: bool,
    /// Chunk frames waiting for the file to be created or grown: (offset, frame).
    queued: VecDeque<(u64, Vec<u8>)>,
    writes_in_flight: usize,
    chunk_count: u32,
    payload_bytes: u64,
    payload_checksum: u32,
}

impl Staging {
    fn file(&self, group: GroupId) -> FileId {
        FileId::SnapshotStaging { group, number: self.slot.0 }
    }

    fn info(&self, group: GroupId) -> SnapshotInfo {
        SnapshotInfo {
            group,
            slot: self.slot,
            payload_bytes: self.payload_bytes,
            chunk_count: self.chunk_count,
            payload_checksum: self.payload_checksum,
            file_size_bytes: self.size_bytes,
        }
    }
}

/// What a snapshot completion produced.
#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotEvent {
    /// The snapshot is installed (renamed and the directory synced); name it in the superblock.
    Installed(SnapshotInfo),
    /// The snapshot was aborted (the disk is full, or the caller asked); nothing was installed.
    Aborted {
        /// The group.
        group: GroupId,
        /// Why.
        reason: String,
    },
    /// A chunk read back (or why it could not be).
    Chunk(Result<SnapshotChunk, SnapshotReadError>),
}

/// What an operation id stands for.
#[derive(Debug, Clone, Copy)]
enum Op {
    Create(GroupId),
    Resize(GroupId),
    WriteChunk(GroupId),
    Step(GroupId),
    Remove(GroupId),
    RemoveInstalled,
    ReadChunk(SnapshotInfo, u32),
}

/// Every snapshot of a core's groups being written or read, behind the disk seam.
#[derive(Debug, Default)]
pub struct Snapshots {
    staging: BTreeMap<GroupId, Staging>,
    ops: BTreeMap<OpId, Op>,
    next_op: u64,
    requests: Vec<(OpId, Request)>,
}

impl Snapshots {
    /// No snapshot in progress.
    #[must_use]
    pub fn new() -> Snapshots {
        Snapshots::default()
    }

    /// Whether `op` is one of the snapshot requests.
    #[must_use]
    pub fn owns(op: OpId) -> bool {
        (SNAPSHOT_OP_BASE..SNAPSHOT_OP_BASE + (1 << 48)).contains(&op.0)
    }

    fn submit(&mut self, op: Op, request: Request) {
        let id = OpId(SNAPSHOT_OP_BASE + self.next_op);
        self.next_op += 1;
        self.ops.insert(id, op);
        self.requests.push((id, request));
    }

    /// Starts writing a snapshot of `group` covering slots up to `slot`. `installed` is the
    /// slot of the group's installed snapshot, if any.
    ///
    /// # Errors
    /// [`SnapshotError::InProgress`] or [`SnapshotError::Stale`].
    pub fn begin(
        &mut self,
        group: GroupId,
        slot: Slot,
        installed: Option<Slot>,
    ) -> Result<(), SnapshotError> {
        if self.staging.contains_key(&group) {
            return Err(SnapshotError::InProgress(group));
        }
        if installed.is_some_and(|installed| slot <= installed) {
            return Err(SnapshotError::Stale { group, slot });
        }
        let staging = Staging {
            slot,
            phase: Phase::Streaming,
            created: false,
            size_bytes: chunk_offset(1),
            resize_in_flight: false,
            queued: VecDeque::new(),
            writes_in_flight: 0,
            chunk_count: 0,
            payload_bytes: 0,
            payload_checksum: 0,
        };
        let file = staging.file(group);
        let size_bytes = staging.size_bytes;
        self.staging.insert(group, staging);
        self.submit(Op::Create(group), Request::Create { file, size_bytes });
        Ok(())
    }

    /// Adds the next chunk of `group`'s snapshot.
    ///
    /// # Errors
    /// [`SnapshotError::Backpressure`] while [`SNAPSHOT_WRITES_IN_FLIGHT_MAX`] chunks are
    /// queued or in flight; [`SnapshotError::TooLarge`], [`SnapshotError::NotInProgress`].
    pub fn push_chunk(&mut self, group: GroupId, payload: &[u8]) -> Result<(), SnapshotError> {
        let staging = self.staging.get_mut(&group).ok_or(SnapshotError::NotInProgress(group))?;
        if staging.phase != Phase::Streaming {
            return Err(SnapshotError::NotInProgress(group));
        }
        if payload.len() > SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX {
            let reason = format!(
                "chunk of {} bytes exceeds {SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX}",
                payload.len()
            );
            return Err(SnapshotError::TooLarge { group, reason });
        }
        if staging.chunk_count as usize >= SNAPSHOT_CHUNKS_COUNT_MAX {
            let reason = format!("more than {SNAPSHOT_CHUNKS_COUNT_MAX} chunks");
            return Err(SnapshotError::TooLarge { group, reason });
        }
        if staging.queued.len() + staging.writes_in_flight >= SNAPSHOT_WRITES_IN_FLIGHT_MAX {
            return Err(SnapshotError::Backpressure(group));
        }
        let index = staging.chunk_count;
        let frame = encode_chunk(group, staging.slot, index, payload);
        staging.chunk_count += 1;
        staging.payload_bytes += payload.len() as u64;
        staging.payload_checksum = crc32c::crc32c_append(staging.payload_checksum, payload);
        staging.queued.push_back((chunk_offset(index), frame));
        self.advance(group);
        Ok(())
    }

    /// Ends `group`'s snapshot: once its chunks are written, the header is written and the file
    /// synced, renamed into place and the directory synced; then [`SnapshotEvent::Installed`].
    ///
    /// # Errors
    /// [`SnapshotError::NotInProgress`].
    pub fn finish(&mut self, group: GroupId) -> Result<(), SnapshotError> {
        let staging = self.staging.get_mut(&group).ok_or(SnapshotError::NotInProgress(group))?;
        if staging.phase != Phase::Streaming {
            return Err(SnapshotError::NotInProgress(group));
        }
        staging.phase = Phase::Draining;
        self.advance(group);
        Ok(())
    }

    /// Abandons `group`'s snapshot; its staging file is removed.
    ///
    /// # Errors
    /// [`SnapshotError::NotInProgress`].
    pub fn abort(&mut self, group: GroupId) -> Result<(), SnapshotError> {
        let staging = self.staging.get_mut(&group).ok_or(SnapshotError::NotInProgress(group))?;
        if !matches!(staging.phase, Phase::Streaming | Phase::Draining) {
            // Past the point of no return (the header is being written), or already aborting.
            return Err(SnapshotError::NotInProgress(group));
        }
        staging.phase = Phase::Removing;
        staging.queued.clear();
        self.advance(group);
        Ok(())
    }

    /// Removes an installed snapshot file the superblock no longer names.
    pub fn remove_installed(&mut self, file: FileId) {
        self.submit(Op::RemoveInstalled, Request::Remove { file });
    }

    /// Reads chunk `index` of the installed snapshot `info` back.
    ///
    /// # Errors
    /// [`SnapshotError::NotInstalled`] when the snapshot has no such chunk.
    ///
    /// # Panics
    /// Never in practice: a read is at most one chunk stride long.
    pub fn read_chunk(&mut self, info: SnapshotInfo, index: u32) -> Result<(), SnapshotError> {
        if index >= info.chunk_count {
            return Err(SnapshotError::NotInstalled { group: info.group, index });
        }
        let offset = chunk_offset(index);
        let available = info.file_size_bytes.saturating_sub(offset);
        let length = usize::try_from(available.min(SNAPSHOT_CHUNK_STRIDE_BYTES as u64))
            .expect("at most one stride");
        let file = info.file();
        self.submit(Op::ReadChunk(info, index), Request::Read { file, offset, length });
        Ok(())
    }

    /// Moves `group`'s snapshot on as far as it can go without a completion.
    fn advance(&mut self, group: GroupId) {
        let Some(staging) = self.staging.get_mut(&group) else {
            return;
        };
        if !staging.created || staging.resize_in_flight {
            return;
        }
        let file = staging.file(group);
        let mut submit = Vec::new();
        match staging.phase {
            Phase::Streaming | Phase::Draining => {
                // Write every queued chunk that fits; grow the file (doubling, bounded per
                // step) for the first that does not; once all are written, the header.
                while let Some((offset, frame)) = staging.queued.front()
                    && offset + frame.len() as u64 <= staging.size_bytes
                {
                    let (offset, data) = staging.queued.pop_front().expect("front exists");
                    staging.writes_in_flight += 1;
                    submit.push((Op::WriteChunk(group), Request::Write { file, offset, data }));
                }
                if let Some((offset, frame)) = staging.queued.front() {
                    let needed = offset + frame.len() as u64;
                    let doubled = staging.size_bytes.saturating_mul(2);
                    let grown =
                        doubled.min(staging.size_bytes + SNAPSHOT_GROWTH_BYTES_MAX).max(needed);
                    let size_bytes = grown.next_multiple_of(DISK_SECTOR_SIZE_BYTES as u64);
                    staging.size_bytes = size_bytes;
                    staging.resize_in_flight = true;
                    submit.push((Op::Resize(group), Request::Resize { file, size_bytes }));
                } else if staging.phase == Phase::Draining && staging.writes_in_flight == 0 {
                    staging.phase = Phase::WritingHeader;
                    let data = encode_header(&staging.info(group));
                    submit.push((Op::Step(group), Request::Write { file, offset: 0, data }));
                }
            }
            Phase::Removing if staging.writes_in_flight == 0 => {
                staging.phase = Phase::RemoveSubmitted;
                submit.push((Op::Remove(group), Request::Remove { file }));
            }
            _ => {}
        }
        for (op, request) in submit {
            self.submit(op, request);
        }
    }

    /// Every request to submit now.
    pub fn pump(&mut self) -> Vec<(OpId, Request)> {
        std::mem::take(&mut self.requests)
    }

    /// Whether nothing is being written or read.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.ops.is_empty() && self.staging.is_empty()
    }

    /// Handles a completion of a snapshot request.
    ///
    /// # Errors
    /// [`SnapshotError::Disk`] when a write, resize, sync, rename or directory sync failed
    /// other than for a full disk: fatal, as for the log.
    ///
    /// # Panics
    /// If the completion is not one of the snapshot requests (a routing bug).
    pub fn on_completion(
        &mut self,
        completion: &Completion,
    ) -> Result<Option<SnapshotEvent>, SnapshotError> {
        let op = self.ops.remove(&completion.op).expect("a snapshot request");
        let result = &completion.result;
        match op {
            Op::ReadChunk(info, index) => {
                let chunk = match result {
                    Ok(Response::Read(bytes)) => decode_chunk(&info, index, bytes),
                    other => Err(SnapshotReadError::Disk {
                        file: info.file(),
                        error: DiskError::of_unexpected(other),
                    }),
                };
                Ok(Some(SnapshotEvent::Chunk(chunk)))
            }
            // A leftover that could not be removed is removed at the next start-up.
            Op::RemoveInstalled => Ok(None),
            Op::Remove(group) => {
                let staging = self.staging.remove(&group).expect("aborting");
                match result {
                    Ok(_) | Err(DiskError::NotFound(_)) => Ok(None),
                    Err(error) => Err(SnapshotError::Disk {
                        operation: "removal",
                        file: staging.file(group),
                        error: error.clone(),
                    }),
                }
            }
            Op::Create(group) | Op::Resize(group) | Op::WriteChunk(group) | Op::Step(group) => {
                self.on_staging_completion(group, op, result)
            }
        }
    }

    fn on_staging_completion(
        &mut self,
        group: GroupId,
        op: Op,
        result: &Result<Response, DiskError>,
    ) -> Result<Option<SnapshotEvent>, SnapshotError> {
        let staging = self.staging.get_mut(&group).expect("a snapshot in progress");
        let file = staging.file(group);
        let operation = match op {
            Op::Create(_) => "creation",
            Op::Resize(_) => "resize",
            Op::WriteChunk(_) => "write",
            _ => match staging.phase {
                Phase::WritingHeader => "header write",
                Phase::Syncing => "sync",
                Phase::Renaming => "rename",
                _ => "directory sync",
            },
        };
        if let Err(error) = result {
            let removing = staging.phase == Phase::Removing;
            if !(removing || *error == DiskError::NoSpace && !matches!(op, Op::Step(_))) {
                return Err(SnapshotError::Disk { operation, file, error: error.clone() });
            }
            // Nothing acknowledged depends on a snapshot: give it up and free its space.
            let reason = format!("snapshot {operation} of {file}: {error}");
            match op {
                Op::WriteChunk(_) => staging.writes_in_flight -= 1,
                Op::Resize(_) => staging.resize_in_flight = false,
                _ => {}
            }
            staging.phase = Phase::Removing;
            staging.queued.clear();
            if matches!(op, Op::Create(_)) {
                // Nothing was created, so nothing is left to remove.
                self.staging.remove(&group);
            } else {
                self.advance(group);
            }
            return Ok((!removing).then_some(SnapshotEvent::Aborted { group, reason }));
        }
        match op {
            Op::Create(_) => staging.created = true,
            Op::Resize(_) => staging.resize_in_flight = false,
            Op::WriteChunk(_) => staging.writes_in_flight -= 1,
            _ => match staging.phase {
                Phase::WritingHeader => {
                    staging.phase = Phase::Syncing;
                    self.submit(Op::Step(group), Request::Sync { file });
                    return Ok(None);
                }
                Phase::Syncing => {
                    staging.phase = Phase::Renaming;
                    let to = FileId::Snapshot { group, number: staging.slot.0 };
                    self.submit(Op::Step(group), Request::Rename { from: file, to });
                    return Ok(None);
                }
                Phase::Renaming => {
                    staging.phase = Phase::SyncingDirectory;
                    self.submit(Op::Step(group), Request::SyncDirectory);
                    return Ok(None);
                }
                _ => {
                    let staging = self.staging.remove(&group).expect("present");
                    return Ok(Some(SnapshotEvent::Installed(staging.info(group))));
                }
            },
        }
        self.advance(group);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::log::sim_disk::{SimDisk, SimDiskOptions};

    fn settle(snapshots: &mut Snapshots, disk: &mut SimDisk) -> Vec<SnapshotEvent> {
        let mut events = Vec::new();
        let mut completions = Vec::new();
        for _ in 0..100_000 {
            for (op, request) in snapshots.pump() {
                disk.submit(op, request);
            }
            disk.poll(&mut completions);
            if completions.is_empty() && disk.in_flight_count() == 0 {
                return events;
            }
            for completion in completions.drain(..) {
                if let Some(event) = snapshots.on_completion(&completion).expect("no faults") {
                    events.push(event);
                }
            }
        }
        panic!("snapshots did not settle");
    }

    fn chunk_payload(index: usize, length: usize) -> Vec<u8> {
        (0..length).map(|byte| u8::try_from((byte * 7 + index * 13) % 251).unwrap()).collect()
    }

    /// A snapshot streamed in chunks (more than fit the first allocation, so the file grows),
    /// installed, then read back chunk by chunk with every check passing, and its header
    /// decoded from the file.
    #[test]
    fn a_snapshot_streams_in_installs_and_reads_back() {
        for seed in 0..8 {
            let options = SimDiskOptions { completion_delay_polls_max: 3, ..Default::default() };
            let mut disk = SimDisk::new(seed, options);
            let mut snapshots = Snapshots::new();
            let group = GroupId(7);
            snapshots.begin(group, Slot(99), None).unwrap();
            let lengths = [SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX, 10, 70_000, 1, 0, 5_000];
            let mut expected = Vec::new();
            for (index, length) in lengths.iter().enumerate() {
                let payload = chunk_payload(index, *length);
                loop {
                    match snapshots.push_chunk(group, &payload) {
                        Ok(()) => break,
                        Err(SnapshotError::Backpressure(_)) => {
                            let _ = settle(&mut snapshots, &mut disk);
                        }
                        Err(error) => panic!("{error}"),
                    }
                }
                expected.push(payload);
            }
            snapshots.finish(group).unwrap();
            let events = settle(&mut snapshots, &mut disk);
            let [SnapshotEvent::Installed(info)] = events.as_slice() else { panic!("{events:?}") };
            assert_eq!(info.chunk_count, 6);
            assert!(snapshots.is_idle());
            let file = FileId::Snapshot { group, number: 99 };
            let listed = disk.list().into_iter().find(|(listed, _)| *listed == file);
            let size = listed.expect("installed under its final name").1;
            let header = disk.contents(file).unwrap()[..DISK_SECTOR_SIZE_BYTES].to_vec();
            assert_eq!(decode_header(file, &header, size).unwrap(), *info);
            let mut whole = 0;
            for index in 0..info.chunk_count {
                snapshots.read_chunk(*info, index).unwrap();
                let events = settle(&mut snapshots, &mut disk);
                let [SnapshotEvent::Chunk(Ok(chunk))] = events.as_slice() else { panic!() };
                assert_eq!(chunk.payload, expected[index as usize]);
                assert_eq!(chunk.is_last, index == 5);
                whole = crc32c::crc32c_append(whole, &chunk.payload);
            }
            assert_eq!(whole, info.payload_checksum);
            assert!(snapshots.read_chunk(*info, 6).is_err());
        }
    }

    #[test]
    fn a_corrupt_or_misplaced_chunk_is_reported_not_returned() {
        let mut disk = SimDisk::new(1, SimDiskOptions::default());
        let mut snapshots = Snapshots::new();
        let group = GroupId(2);
        snapshots.begin(group, Slot(5), None).unwrap();
        snapshots.push_chunk(group, b"first").unwrap();
        snapshots.push_chunk(group, b"second").unwrap();
        snapshots.finish(group).unwrap();
        let events = settle(&mut snapshots, &mut disk);
        let [SnapshotEvent::Installed(info)] = events.as_slice() else { panic!() };
        disk.flip_bit(info.file(), usize::try_from(chunk_offset(1)).unwrap() + 66, 3);
        snapshots.read_chunk(*info, 1).unwrap();
        let events = settle(&mut snapshots, &mut disk);
        let [SnapshotEvent::Chunk(Err(error))] = events.as_slice() else { panic!("{events:?}") };
        assert!(error.to_string().contains("payload checksum"), "{error}");
        // A chunk frame found at another chunk's place is caught by its index.
        let frame = encode_chunk(group, Slot(5), 0, b"first");
        assert!(decode_chunk(info, 1, &frame).is_err());
        let other_snapshot = encode_chunk(group, Slot(4), 0, b"first");
        assert!(decode_chunk(info, 0, &other_snapshot).is_err());
        assert!(decode_chunk(info, 0, &frame).is_ok());
    }

    #[test]
    fn headers_are_checked() {
        let info = SnapshotInfo {
            group: GroupId(3),
            slot: Slot(10),
            payload_bytes: 100,
            chunk_count: 1,
            payload_checksum: 9,
            file_size_bytes: chunk_offset(1),
        };
        let file = info.file();
        let sector = encode_header(&info);
        assert_eq!(decode_header(file, &sector, info.file_size_bytes), Ok(info));
        let mut flipped = sector.clone();
        flipped[20] ^= 1;
        assert!(decode_header(file, &flipped, info.file_size_bytes).is_err());
        let other = FileId::Snapshot { group: GroupId(3), number: 11 };
        assert!(decode_header(other, &sector, info.file_size_bytes).is_err(), "misplaced");
        assert!(decode_header(file, &sector, 4096).is_err(), "chunks beyond the file");
        assert!(decode_header(file, &[0; 4096], info.file_size_bytes).is_err(), "blank");
    }

    #[test]
    fn limits_and_misuse_are_refused() {
        let mut snapshots = Snapshots::new();
        let group = GroupId(1);
        assert!(matches!(snapshots.push_chunk(group, b"x"), Err(SnapshotError::NotInProgress(_))));
        assert!(matches!(
            snapshots.begin(group, Slot(5), Some(Slot(5))),
            Err(SnapshotError::Stale { .. })
        ));
        snapshots.begin(group, Slot(6), Some(Slot(5))).unwrap();
        assert!(matches!(snapshots.begin(group, Slot(7), None), Err(SnapshotError::InProgress(_))));
        let big = vec![0; SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX + 1];
        assert!(matches!(snapshots.push_chunk(group, &big), Err(SnapshotError::TooLarge { .. })));
        for _ in 0..SNAPSHOT_WRITES_IN_FLIGHT_MAX {
            snapshots.push_chunk(group, b"x").unwrap();
        }
        assert!(matches!(snapshots.push_chunk(group, b"x"), Err(SnapshotError::Backpressure(_))));
    }

    /// A full disk aborts the snapshot, removes the staging file and reports it; nothing is
    /// installed and nothing is left behind.
    #[test]
    fn a_full_disk_aborts_the_snapshot_cleanly() {
        let options = SimDiskOptions { capacity_bytes: 3 * 1024 * 1024, ..Default::default() };
        let mut disk = SimDisk::new(4, options);
        let mut snapshots = Snapshots::new();
        let group = GroupId(9);
        snapshots.begin(group, Slot(1), None).unwrap();
        let payload = vec![1; SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX];
        let mut events = Vec::new();
        for _ in 0..8 {
            match snapshots.push_chunk(group, &payload) {
                Ok(()) | Err(SnapshotError::Backpressure(_)) => {}
                Err(SnapshotError::NotInProgress(_)) => break,
                Err(error) => panic!("{error}"),
            }
            events.extend(settle(&mut snapshots, &mut disk));
        }
        events.extend(settle(&mut snapshots, &mut disk));
        assert!(
            events.iter().any(|event| matches!(event,
                SnapshotEvent::Aborted { reason, .. } if reason.contains("no space"))),
            "{events:?}"
        );
        assert!(snapshots.is_idle());
        assert!(disk.list().is_empty(), "staging removed: {:?}", disk.list());
    }

    /// A crash at any point before the directory sync leaves either no snapshot file under its
    /// final name or a complete one; never a partial file under the final name.
    #[test]
    fn a_crash_never_leaves_a_partial_snapshot_installed() {
        for crash_after in 0..40 {
            for seed in 0..6 {
                let mut disk = SimDisk::new(seed, SimDiskOptions::default());
                let mut snapshots = Snapshots::new();
                let group = GroupId(4);
                snapshots.begin(group, Slot(3), None).unwrap();
                let mut pushed = 0;
                let mut completions = Vec::new();
                for _step in 0..crash_after {
                    if pushed < 4 && snapshots.push_chunk(group, &vec![7; 300_000]).is_ok() {
                        pushed += 1;
                        if pushed == 4 {
                            snapshots.finish(group).unwrap();
                        }
                    }
                    for (op, request) in snapshots.pump() {
                        disk.submit(op, request);
                    }
                    disk.poll(&mut completions);
                    for completion in completions.drain(..) {
                        snapshots.on_completion(&completion).unwrap();
                    }
                }
                let after = disk.crash(seed * 31 + crash_after);
                let file = FileId::Snapshot { group, number: 3 };
                if let Some((_, size)) = after.list().into_iter().find(|(f, _)| *f == file) {
                    let bytes = after.contents(file).unwrap();
                    let info = decode_header(file, &bytes[..DISK_SECTOR_SIZE_BYTES], size)
                        .expect("an installed snapshot has its header");
                    assert_eq!(info.chunk_count, 4);
                    for index in 0..4 {
                        let start = usize::try_from(chunk_offset(index)).unwrap();
                        let end = (start + SNAPSHOT_CHUNK_STRIDE_BYTES).min(bytes.len());
                        decode_chunk(&info, index, &bytes[start..end]).expect("complete chunk");
                    }
                }
            }
        }
    }
}
