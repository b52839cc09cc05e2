//! The disk seam: a completion-based interface to the files of one core's log.
//!
//! Shaped like io_uring (and TigerBeetle's `storage.zig`): the log *submits* requests tagged
//! with an [`OpId`] and later *polls* completions, in any order. All of the log's decisions
//! stay synchronous, deterministic code; only the arrival of completions is asynchronous. Two
//! implementations exist, and every test of the log runs against both where it can:
//! - the real one, over io_uring with O_DIRECT (`runtime/disk_dma.rs`, since only `runtime/`
//!   names the I/O runtime), and
//! - [`crate::log::sim_disk::SimDisk`], which keeps written-but-unsynced data apart from durable
//!   data and can delay, reorder, fail, tear, misdirect or lose writes, deterministically from a
//!   seed.
//!
//! # Correctness (obligations on every implementation)
//! - A `Write` or `Read` covers whole sectors: offset and length are multiples of
//!   [`DISK_SECTOR_SIZE_BYTES`] (O_DIRECT requires it; the simulator asserts it).
//! - A `Sync` of a file makes durable every write to that file that *completed* before the
//!   `Sync` was submitted; writes still in flight may or may not be covered. So the log waits
//!   for a write's completion before it counts on a later sync.
//! - `Create`, `Remove` and `Rename` change the directory; they are durable only after a
//!   later `SyncDirectory` completes (fjall: "fsync folder on Unix").
//! - An error completion is final: the operation's effect on the media is unknown. The log
//!   treats a failed `Write` or `Sync` as fatal (fail-stop; never retried, see
//!   `../shared/VERIFICATION.md` 4.4), `NoSpace` as a clear, distinct fatal error.
//! - A `Create` that fails leaves no file behind: the implementation removes what it made
//!   before completing with the error (so a full disk gets its space back, and the next
//!   start does not find a half-allocated segment).
//! - Nothing read back is trusted before its checksum passes: the disk may return bytes that
//!   were torn, rotted or written for another place.
//!
//! # What the process does with a fatal disk error
//! The log reports it once, as a `LogError` (an `OpenError` at start-up) whose `Display` is
//! one line naming the operation, the file and the cause, e.g. `log create of
//! segment-00000000000000000005.log failed: no space left on device (ENOSPC)`. The process
//! must then stop: log that line at error level, print it to stderr, submit nothing more, send
//! no reply for a write not reported durable, and exit with
//! [`crate::constants::EXIT_CODE_STORAGE_FAILURE`]. Never retry. A full disk is the same
//! fail-stop, and loses nothing: every record reported durable is intact and readable after a
//! restart (`runtime/enospc_tests.rs` proves it on ext4).

use std::fmt;

use crate::types::GroupId;

/// Alignment and granularity of disk I/O, in bytes (O_DIRECT on a 4096-byte-sector device).
pub const DISK_SECTOR_SIZE_BYTES: usize = 4096;

/// The granularity at which a write may be torn by a power loss, in bytes: the device's
/// logical sector size here. A write of several such sectors may persist only in part.
pub const DISK_TEAR_SIZE_BYTES: usize = 512;

const _: () = assert!(DISK_SECTOR_SIZE_BYTES.is_multiple_of(DISK_TEAR_SIZE_BYTES));

/// Tags a submitted request; its completion carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// One file of a core's log directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileId {
    /// The acceptor-metadata superblock (fixed size, several copies).
    Superblock,
    /// A log segment, numbered from 1 in the order they were created.
    Segment(u64),
    /// A group's installed snapshot, by snapshot number.
    Snapshot {
        /// The group.
        group: GroupId,
        /// Increases with every snapshot of the group.
        number: u64,
    },
    /// A snapshot being written; renamed to [`FileId::Snapshot`] once complete and synced.
    SnapshotStaging {
        /// The group.
        group: GroupId,
        /// The number the snapshot will have once installed.
        number: u64,
    },
}

impl fmt::Display for FileId {
    /// The file's name in the data directory.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileId::Superblock => write!(f, "superblock"),
            FileId::Segment(number) => write!(f, "segment-{number:020}.log"),
            FileId::Snapshot { group, number } => {
                write!(f, "snapshot-{:010}-{number:020}.snap", group.0)
            }
            FileId::SnapshotStaging { group, number } => {
                write!(f, "snapshot-{:010}-{number:020}.staging", group.0)
            }
        }
    }
}

/// An operation submitted to the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Creates `file` with `size_bytes` preallocated (zeroed), so later writes overwrite in
    /// place and a sync is a cache flush, not a metadata update. Fails if it exists.
    Create {
        /// The file.
        file: FileId,
        /// Its size, a multiple of [`DISK_SECTOR_SIZE_BYTES`].
        size_bytes: u64,
    },
    /// Writes `data` at `offset` (both sector-aligned, within the file's size).
    Write {
        /// The file.
        file: FileId,
        /// Byte offset, a multiple of [`DISK_SECTOR_SIZE_BYTES`].
        offset: u64,
        /// The bytes, a multiple of [`DISK_SECTOR_SIZE_BYTES`] long.
        data: Vec<u8>,
    },
    /// Reads `length` bytes at `offset` (both sector-aligned, within the file's size).
    Read {
        /// The file.
        file: FileId,
        /// Byte offset, a multiple of [`DISK_SECTOR_SIZE_BYTES`].
        offset: u64,
        /// Bytes to read, a multiple of [`DISK_SECTOR_SIZE_BYTES`].
        length: usize,
    },
    /// Makes the file's completed writes durable (`fdatasync`).
    Sync {
        /// The file.
        file: FileId,
    },
    /// Grows the file to `size_bytes` (a multiple of [`DISK_SECTOR_SIZE_BYTES`], not below its
    /// size); the new bytes read as zeros. For files written in many pieces and synced once
    /// (snapshot staging): the new size is durable after the next `Sync` of the file.
    Resize {
        /// The file.
        file: FileId,
        /// Its new size.
        size_bytes: u64,
    },
    /// Removes the file.
    Remove {
        /// The file.
        file: FileId,
    },
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    Rename {
        /// The file renamed.
        from: FileId,
        /// Its new name.
        to: FileId,
    },
    /// Makes the directory's creates, removes and renames durable.
    SyncDirectory,
}

/// What a successful request returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `Create` done.
    Created,
    /// `Write` done (not yet durable).
    Written,
    /// `Read` done: the bytes, exactly as long as requested.
    Read(Vec<u8>),
    /// `Sync` done: completed writes are durable.
    Synced,
    /// `Resize` done (durable after the next `Sync` of the file).
    Resized,
    /// `Remove` done (durable after `SyncDirectory`).
    Removed,
    /// `Rename` done (durable after `SyncDirectory`).
    Renamed,
    /// `SyncDirectory` done.
    DirectorySynced,
}

/// Why a request failed. Its effect on the media is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The device reported an I/O error (`EIO` and the like).
    #[error("I/O error: {0}")]
    Io(String),
    /// The file system is full (`ENOSPC`). Files are allocated when created, so on a file
    /// system that overwrites in place (ext4, XFS) the disk fills up at a `Create`, before any
    /// record is written to the new file; a `Write` may report it on others (copy-on-write).
    #[error("no space left on device (ENOSPC)")]
    NoSpace,
    /// The file does not exist.
    #[error("{0} does not exist")]
    NotFound(FileId),
    /// `Create` of a file that exists.
    #[error("{0} already exists")]
    AlreadyExists(FileId),
    /// A request outside the file, or not sector-aligned: a bug in the caller.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl DiskError {
    /// The error a completion that is not the expected success stands for: its own error, or
    /// [`DiskError::Invalid`] when it succeeded with some other response (a disk bug).
    #[must_use]
    pub fn of_unexpected(result: &Result<Response, DiskError>) -> DiskError {
        match result {
            Err(error) => error.clone(),
            Ok(response) => DiskError::Invalid(format!("unexpected completion {response:?}")),
        }
    }
}

/// A finished request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The id the request was submitted with.
    pub op: OpId,
    /// Its outcome.
    pub result: Result<Response, DiskError>,
}

/// The files of one core's log, behind a completion-based interface.
///
/// See the module documentation for the obligations every implementation must meet.
pub trait Disk {
    /// Queues `request`; its completion is returned by a later [`Disk::poll`].
    fn submit(&mut self, op: OpId, request: Request);

    /// Appends the requests completed since the last call to `completions`, in completion
    /// order (which need not be submission order).
    fn poll(&mut self, completions: &mut Vec<Completion>);

    /// The files that exist, with their sizes, as recovery finds them at start-up.
    fn list(&self) -> Vec<(FileId, u64)>;
}

/// Checks the alignment rules of a `Read` or `Write`.
///
/// # Errors
/// [`DiskError::Invalid`] naming the misaligned or out-of-range value.
pub fn check_extent(file: FileId, offset: u64, length: usize, size: u64) -> Result<(), DiskError> {
    let sector = DISK_SECTOR_SIZE_BYTES as u64;
    if !offset.is_multiple_of(sector)
        || !length.is_multiple_of(DISK_SECTOR_SIZE_BYTES)
        || length == 0
    {
        return Err(DiskError::Invalid(format!(
            "{file}: offset {offset} length {length} not aligned to {sector}"
        )));
    }
    if offset.checked_add(length as u64).is_none_or(|end| end > size) {
        return Err(DiskError::Invalid(format!(
            "{file}: offset {offset} length {length} beyond size {size}"
        )));
    }
    Ok(())
}

/// The conformance suite every [`Disk`] implementation must pass (openraft's log-suite idea):
/// the same scenario runs against the simulated disk and the real one.
#[cfg(test)]
pub(crate) mod conformance {
    use std::future::Future;

    use super::*;
    use crate::types::GroupId;

    /// Submits `request` and waits for its completion, calling `wait` between polls (a no-op
    /// for the simulated disk, a yield to the executor for the real one).
    async fn run<D: Disk, W: Future<Output = ()>>(
        disk: &mut D,
        wait: &mut impl FnMut() -> W,
        request: Request,
    ) -> Result<Response, DiskError> {
        disk.submit(OpId(1), request);
        let mut completions = Vec::new();
        loop {
            disk.poll(&mut completions);
            if let Some(completion) = completions.pop() {
                assert_eq!(completion.op, OpId(1));
                return completion.result;
            }
            wait().await;
        }
    }

    /// The scenario: create (exclusive, zero-filled), directory sync, write, sync, read back,
    /// refusal of misaligned, out-of-range and missing-file requests, the snapshot install
    /// sequence (create staging, rename, directory sync), listing, removal.
    ///
    /// # Panics
    /// When the disk breaks the seam's contract.
    pub(crate) async fn suite<D: Disk, W: Future<Output = ()>>(
        disk: &mut D,
        mut wait: impl FnMut() -> W,
    ) {
        let wait = &mut wait;
        let segment = FileId::Segment(1);
        let size_bytes = 4 * DISK_SECTOR_SIZE_BYTES as u64;
        let create = Request::Create { file: segment, size_bytes };
        assert_eq!(run(disk, wait, create.clone()).await, Ok(Response::Created));
        assert_eq!(run(disk, wait, create).await, Err(DiskError::AlreadyExists(segment)));
        assert_eq!(run(disk, wait, Request::SyncDirectory).await, Ok(Response::DirectorySynced));
        let data = vec![0xAB; DISK_SECTOR_SIZE_BYTES];
        let write = Request::Write { file: segment, offset: 4096, data: data.clone() };
        assert_eq!(run(disk, wait, write).await, Ok(Response::Written));
        assert_eq!(run(disk, wait, Request::Sync { file: segment }).await, Ok(Response::Synced));
        let read = Request::Read { file: segment, offset: 0, length: 2 * DISK_SECTOR_SIZE_BYTES };
        let result = run(disk, wait, read).await;
        let Ok(Response::Read(bytes)) = result else { panic!("read: {result:?}") };
        assert!(bytes[..DISK_SECTOR_SIZE_BYTES].iter().all(|byte| *byte == 0), "zero-filled");
        assert_eq!(&bytes[DISK_SECTOR_SIZE_BYTES..], &data[..]);
        let misaligned = Request::Write { file: segment, offset: 512, data: data.clone() };
        assert!(matches!(run(disk, wait, misaligned).await, Err(DiskError::Invalid(_))));
        let beyond = Request::Read { file: segment, offset: size_bytes, length: 4096 };
        assert!(matches!(run(disk, wait, beyond).await, Err(DiskError::Invalid(_))));
        let missing = FileId::Segment(9);
        let sync_missing = Request::Sync { file: missing };
        assert_eq!(run(disk, wait, sync_missing).await, Err(DiskError::NotFound(missing)));
        let staging = FileId::SnapshotStaging { group: GroupId(3), number: 2 };
        let installed = FileId::Snapshot { group: GroupId(3), number: 2 };
        let create_staging = Request::Create { file: staging, size_bytes: 4096 };
        assert_eq!(run(disk, wait, create_staging).await, Ok(Response::Created));
        let grow = Request::Resize { file: staging, size_bytes: 3 * 4096 };
        assert_eq!(run(disk, wait, grow).await, Ok(Response::Resized));
        let shrink = Request::Resize { file: staging, size_bytes: 4096 };
        assert!(matches!(run(disk, wait, shrink).await, Err(DiskError::Invalid(_))));
        let last = Request::Write { file: staging, offset: 2 * 4096, data: data.clone() };
        assert_eq!(run(disk, wait, last).await, Ok(Response::Written));
        assert_eq!(run(disk, wait, Request::Sync { file: staging }).await, Ok(Response::Synced));
        let read = Request::Read { file: staging, offset: 4096, length: 2 * 4096 };
        let result = run(disk, wait, read).await;
        let Ok(Response::Read(bytes)) = result else { panic!("read: {result:?}") };
        assert!(bytes[..DISK_SECTOR_SIZE_BYTES].iter().all(|byte| *byte == 0), "grown zeroed");
        assert_eq!(&bytes[DISK_SECTOR_SIZE_BYTES..], &data[..]);
        let rename = Request::Rename { from: staging, to: installed };
        assert_eq!(run(disk, wait, rename).await, Ok(Response::Renamed));
        assert_eq!(run(disk, wait, Request::SyncDirectory).await, Ok(Response::DirectorySynced));
        assert_eq!(disk.list(), vec![(segment, size_bytes), (installed, 3 * 4096)]);
        assert_eq!(
            run(disk, wait, Request::Remove { file: installed }).await,
            Ok(Response::Removed)
        );
        assert_eq!(disk.list(), vec![(segment, size_bytes)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_like_their_ids() {
        let names: Vec<String> =
            [FileId::Segment(2), FileId::Segment(10)].iter().map(ToString::to_string).collect();
        assert!(names[0] < names[1]);
        assert_eq!(FileId::Superblock.to_string(), "superblock");
    }

    #[test]
    fn extents_must_be_aligned_and_inside_the_file() {
        let file = FileId::Segment(1);
        assert!(check_extent(file, 0, 4096, 8192).is_ok());
        assert!(check_extent(file, 4096, 4096, 8192).is_ok());
        assert!(check_extent(file, 512, 4096, 8192).is_err());
        assert!(check_extent(file, 0, 100, 8192).is_err());
        assert!(check_extent(file, 0, 0, 8192).is_err());
        assert!(check_extent(file, 4096, 8192, 8192).is_err());
        assert!(check_extent(file, u64::MAX - 4095, 4096, u64::MAX).is_err());
    }
}
