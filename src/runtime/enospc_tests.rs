//! The log on a real file system that fills up: a small ext4 image, loop-mounted.
//!
//! The simulated disk proves the log's side of a full disk (`log/recovery.rs`); this proves the
//! real disk's side: that `ENOSPC` from the kernel, through io_uring and glommio, reaches the
//! log as [`DiskError::NoSpace`], that the log stops with a clear one-line error naming the
//! file, and that every record it reported durable survives: a fresh open of the directory
//! finds it in the index, reads it back with valid checksums, and reports no corruption.
//!
//! Needs root (to mount), `mkfs.ext4` (e2fsprogs) and loop devices. Where any of them is
//! missing the test fails with the reason, unless `KLEIN_SKIP_MOUNT_TESTS=1` is set, which
//! turns the failure into a loud "SKIPPED" line. CI runs as root and must really run it.
//! Everything it creates (image, mount point, loop device) is removed on drop, also on panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::disk_dma::DmaDisk;
use super::memlock;
use crate::log::disk::{Disk, DiskError, FileId};
use crate::log::format::RecordKind;
use crate::log::log::{Durable, Log, LogError};
use crate::log::open::{OpenError, Opened, Opener};
use crate::log::reader::{ReadError, ReadRecord};
use crate::log::superblock::Superblock;
use crate::log::writer::{AppendError, Entry, WriterError, WriterOptions};
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

/// The environment variable that lets a machine without mount permission skip the test.
const SKIP_VARIABLE: &str = "KLEIN_SKIP_MOUNT_TESTS";

/// Size of the (sparse) file system image. ext4 keeps about 4 MiB of it for its journal and
/// metadata, so about four segments fit: the fifth creation runs out of space.
const IMAGE_SIZE_BYTES: u64 = 24 * 1024 * 1024;

/// The file system's block size: the log's sector size, as on the production disks.
const FILE_SYSTEM_BLOCK_SIZE: &str = "4096";

/// Small segments, so several creations happen before the disk is full.
const OPTIONS: WriterOptions =
    WriterOptions { segment_size_bytes: 4 * 1024 * 1024, staged_bytes_max: 512 * 1024 };

/// Groups the records are spread over (record `n` is slot `n / GROUPS_COUNT` of group
/// `n % GROUPS_COUNT`).
const GROUPS_COUNT: u64 = 4;

/// Payload sizes: at least the minimum, plus up to the spread, varying by record.
const PAYLOAD_SIZE_BYTES_MIN: usize = 1000;
const PAYLOAD_SIZE_BYTES_SPREAD: u64 = 3000;
/// A prime that scatters payload lengths (see [`payload_of`]).
const PAYLOAD_LENGTH_SCATTER: u64 = 7919;

/// Appending this much without the disk filling up fails the test (it cannot hold it).
const APPENDED_BYTES_MAX: u64 = 4 * IMAGE_SIZE_BYTES;

/// Segments that must have been written before the disk filled up ("several creations").
const SEGMENTS_WRITTEN_MIN: u64 = 3;

/// A small ext4 file system, loop-mounted on a temporary directory; unmounted (which also
/// detaches the loop device: `mount -o loop` sets autoclear) and deleted on drop.
struct MountedImage {
    /// Holds the image and the mount point; removed after the unmount (fields drop last).
    _scratch: tempfile::TempDir,
    mount_point: PathBuf,
}

impl MountedImage {
    /// Makes and mounts the file system.
    ///
    /// # Errors
    /// Why this machine cannot: not root, no `mkfs.ext4`, or `mount` refused.
    fn new() -> Result<MountedImage, String> {
        let euid = rustix::process::geteuid();
        if !euid.is_root() {
            return Err(format!("not running as root (euid {})", euid.as_raw()));
        }
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&target)
            .map_err(|error| format!("{}: {error}", target.display()))?;
        let scratch = tempfile::Builder::new()
            .prefix("enospc-test")
            .tempdir_in(&target)
            .map_err(|error| format!("temporary directory: {error}"))?;
        let image = scratch.path().join("ext4.img");
        let mount_point = scratch.path().join("mnt");
        std::fs::create_dir(&mount_point).map_err(|error| format!("mount point: {error}"))?;
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(IMAGE_SIZE_BYTES))
            .map_err(|error| format!("image file: {error}"))?;
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-b", FILE_SYSTEM_BLOCK_SIZE]).arg(&image))
            .map_err(|error| format!("{error} (mkfs.ext4 is in Debian's e2fsprogs)"))?;
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount_point))?;
        Ok(MountedImage { _scratch: scratch, mount_point })
    }

    /// The directory the log lives in (the root of the mounted file system).
    fn directory(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        if let Err(error) = run(Command::new("umount").arg(&self.mount_point)) {
            // Still busy (a panic left a file open): detach it lazily rather than leak it.
            eprintln!("enospc test: {error}; unmounting lazily");
            if let Err(error) = run(Command::new("umount").arg("-l").arg(&self.mount_point)) {
                eprintln!("enospc test: {error}; {} stays mounted", self.mount_point.display());
            }
        }
    }
}

/// Runs `command`; an error names it and carries its stderr.
fn run(command: &mut Command) -> Result<(), String> {
    let name = format!("{command:?}");
    let output = command.output().map_err(|error| format!("{name} could not run: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{name} failed ({}): {}", output.status, stderr.trim()))
    }
}

/// The mounted image, or `None` (after a loud line) where mounting is impossible and the
/// skip variable is set.
///
/// # Panics
/// Where mounting is impossible and the skip variable is not set.
fn mount_or_skip(test: &str) -> Option<MountedImage> {
    match MountedImage::new() {
        Ok(mounted) => Some(mounted),
        Err(reason) if std::env::var(SKIP_VARIABLE).as_deref() == Ok("1") => {
            // Written to the process's stderr directly, past the test harness's capture, so
            // the skip is seen even when the test "passes".
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n!!! SKIPPED {test}: {reason} ({SKIP_VARIABLE}=1) !!!\n"
            );
            None
        }
        Err(reason) => panic!(
            "{test} needs root, mkfs.ext4 and a loop mount: {reason}. \
             Set {SKIP_VARIABLE}=1 to skip it on a machine that cannot mount."
        ),
    }
}

/// Runs `scenario` on a one-core glommio executor and returns its result.
fn on_executor<T, F>(scenario: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    let plan = memlock::prepare(1).expect("memory-lock limit");
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(plan.io_memory_bytes)
        .spawn(move || async move { scenario().await })
        .expect("executor starts")
        .join()
        .expect("executor runs")
}

/// The cluster the test log belongs to.
const CLUSTER_ID: u64 = 7;

fn identity() -> Superblock {
    Superblock::new(CLUSTER_ID, NodeId::new(1).expect("valid id"), CoreIndex(0))
}

/// The payload of record `number`: its length and bytes are a function of the number, so a
/// record read back can be checked byte for byte.
fn payload_of(number: u64) -> Vec<u8> {
    // Multiplying by a prime scatters the lengths of neighbouring records over the spread.
    let spread = usize::try_from(number * PAYLOAD_LENGTH_SCATTER % PAYLOAD_SIZE_BYTES_SPREAD)
        .expect("below the spread");
    let seed = number.to_le_bytes();
    (0..PAYLOAD_SIZE_BYTES_MIN + spread)
        .map(|index| seed[index % seed.len()] ^ u8::try_from(index % 251).expect("below 256"))
        .collect()
}

fn group_of(number: u64) -> GroupId {
    GroupId(u32::try_from(number % GROUPS_COUNT).expect("small"))
}

fn number_of(group: GroupId, slot: Slot) -> u64 {
    slot.0 * GROUPS_COUNT + u64::from(group.0)
}

const BALLOT: Ballot = Ballot { round: 1, node: 1 };

/// Opens the log in the disk's directory through the [`Opener`].
async fn open_log(disk: &mut DmaDisk) -> Result<Opened, OpenError> {
    let mut opener = Opener::new(OPTIONS, identity(), disk.list());
    let mut completions = Vec::new();
    loop {
        if let Some(result) = opener.poll_ready() {
            return result;
        }
        for (op, request) in opener.pump() {
            disk.submit(op, request);
        }
        disk.completed().await;
        disk.poll(&mut completions);
        assert!(!completions.is_empty() || disk.in_flight_count() > 0, "the opener stalled");
        for completion in completions.drain(..) {
            if let Some(result) = opener.on_completion(&completion) {
                return result;
            }
        }
    }
}

/// Appends records through a new log until a completion fails; returns the records reported
/// durable and the failure.
async fn fill(directory: &Path) -> (Vec<Durable>, LogError) {
    let mut disk = DmaDisk::open(directory).await.expect("the disk opens");
    let opened = open_log(&mut disk).await.expect("a new log opens");
    let mut log = opened.log;
    let (mut acknowledged, mut completions) = (Vec::new(), Vec::new());
    let (mut next, mut appended_bytes) = (0_u64, 0_u64);
    loop {
        loop {
            let payload = payload_of(next);
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: group_of(next),
                slot: Slot(next / GROUPS_COUNT),
                ballot: BALLOT,
                payload: &payload,
            };
            match log.append(&entry) {
                Ok(_) => {
                    next += 1;
                    appended_bytes += payload.len() as u64;
                }
                Err(AppendError::Backpressure { .. }) => break,
            }
        }
        assert!(appended_bytes <= APPENDED_BYTES_MAX, "the file system never filled up");
        for (op, request) in log.pump() {
            disk.submit(op, request);
        }
        disk.completed().await;
        disk.poll(&mut completions);
        assert!(!completions.is_empty() || disk.in_flight_count() > 0, "the log stalled");
        for completion in completions.drain(..) {
            match log.on_completion(&completion) {
                Ok(progress) => acknowledged.extend(progress.durable),
                Err(error) => {
                    // Fail-stop: nothing more is submitted, as the process would exit here.
                    disk.close().await.expect("the disk closes");
                    return (acknowledged, error);
                }
            }
        }
    }
}

/// What the reopened log shows.
struct Reopened {
    /// The files found (the failed creation must have left none).
    listing: Vec<(FileId, u64)>,
    opened_corruption: usize,
    suspect: bool,
    had_torn_tail: bool,
    indexed: Vec<Option<crate::log::index::Location>>,
    reads: Vec<Result<ReadRecord, ReadError>>,
    /// Errors of the reopened log's own writes (the next segment's creation on a disk that is
    /// still full).
    errors: Vec<LogError>,
}

/// Opens the directory afresh, looks every acknowledged record up and reads every group back.
async fn reopen(directory: &Path, acknowledged: &[Durable]) -> Reopened {
    let mut disk = DmaDisk::open(directory).await.expect("the disk opens again");
    let listing = disk.list();
    let opened = open_log(&mut disk).await.expect("the full log reopens");
    let mut log: Log = opened.log;
    let indexed =
        acknowledged.iter().map(|d| log.location(d.record.group, d.record.slot).copied()).collect();
    for group in 0..GROUPS_COUNT {
        log.read_range(GroupId(u32::try_from(group).expect("small")), ..);
    }
    let (mut reads, mut errors, mut completions) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        for (op, request) in log.pump() {
            disk.submit(op, request);
        }
        if log.is_idle() && disk.in_flight_count() == 0 {
            break;
        }
        disk.completed().await;
        disk.poll(&mut completions);
        assert!(!completions.is_empty() || disk.in_flight_count() > 0, "the reopen stalled");
        for completion in completions.drain(..) {
            match log.on_completion(&completion) {
                Ok(progress) => reads.extend(progress.reads),
                Err(error) => errors.push(error),
            }
        }
    }
    disk.close().await.expect("the disk closes");
    Reopened {
        listing,
        opened_corruption: opened.corruption.len(),
        suspect: opened.every_group_suspect || !opened.suspect_groups.is_empty(),
        had_torn_tail: opened.had_torn_tail,
        indexed,
        reads,
        errors,
    }
}

/// Checks that `error` is the full disk, stated clearly: `NoSpace` from the disk, in one line
/// that names the file and says "no space".
fn assert_clear_no_space(error: &LogError) {
    let (file, disk_error) = match error {
        LogError::Writer(WriterError { file, error, .. }) => (*file, error),
        LogError::Superblock(store) => (FileId::Superblock, &store.error),
        other => panic!("the workload neither snapshots nor reclaims: {other}"),
    };
    assert_eq!(disk_error, &DiskError::NoSpace, "{error}");
    let text = error.to_string();
    assert!(text.contains("no space left on device"), "{text}");
    assert!(text.contains("ENOSPC"), "{text}");
    assert!(text.contains(&file.to_string()), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn a_full_ext4_file_system_is_a_clear_error_and_loses_no_durable_record() {
    let test = "a_full_ext4_file_system_is_a_clear_error_and_loses_no_durable_record";
    let Some(mounted) = mount_or_skip(test) else { return };
    let directory = mounted.directory().to_path_buf();
    let (acknowledged, failure) = {
        let directory = directory.clone();
        on_executor(move || async move { fill(&directory).await })
    };
    eprintln!("enospc: {} records durable, then: {failure}", acknowledged.len());
    assert_clear_no_space(&failure);
    let segments_written =
        acknowledged.iter().map(|durable| durable.record.position.segment).max().unwrap_or(0);
    assert!(segments_written >= SEGMENTS_WRITTEN_MIN, "only {segments_written} segments");

    let reopened = {
        let acknowledged = acknowledged.clone();
        on_executor(move || async move { reopen(&directory, &acknowledged).await })
    };
    eprintln!(
        "enospc: reopened: torn tail {}, {} read back, restart errors {:?}",
        reopened.had_torn_tail,
        reopened.reads.len(),
        reopened.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    for (file, size) in &reopened.listing {
        if matches!(file, FileId::Segment(_)) {
            assert_eq!(*size, OPTIONS.segment_size_bytes, "{file} is left over from the failure");
        }
    }
    assert_eq!(reopened.opened_corruption, 0, "recovery found corruption");
    assert!(!reopened.suspect, "recovery suspects groups");
    for error in &reopened.errors {
        assert_clear_no_space(error);
    }
    for (durable, location) in acknowledged.iter().zip(&reopened.indexed) {
        let location = location.as_ref().unwrap_or_else(|| panic!("lost {durable:?}"));
        assert_eq!(location.position, durable.record.position);
    }
    let mut read_back = std::collections::BTreeMap::new();
    for read in reopened.reads {
        let record = read.expect("every durable record reads back verified");
        read_back.insert(number_of(record.group, record.slot), record);
    }
    for durable in &acknowledged {
        let number = number_of(durable.record.group, durable.record.slot);
        let record = read_back.get(&number).unwrap_or_else(|| panic!("not read: {durable:?}"));
        assert_eq!(record.kind, RecordKind::Accepted);
        assert_eq!(record.ballot, BALLOT);
        assert!(record.payload == payload_of(number), "payload of record {number} differs");
    }
    drop(mounted);
}
