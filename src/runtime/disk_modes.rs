//! How should a log append become durable? Measured on the real disk (`klein-disk-modes`).
//!
//! The durable log has to pick one way of making an append durable. This module measures the
//! candidates, one at a time, each on a fresh file that is prepared like a recycled log
//! segment: created, `fallocate`d to its full size, written once from start to end (so every
//! block is allocated and no extent is left "unwritten"), `fdatasync`ed, and then overwritten in
//! place with O_DIRECT. A sync is then a device cache flush, not a metadata update. Appends are
//! sequential, at queue depth 1: each is durable before the next starts.
//!
//! Modes ([`Mode`]):
//! - `uring-linked`: one submission of an io_uring `Write` linked (`IOSQE_IO_LINK`) to an
//!   `Fsync` with `IORING_FSYNC_DATASYNC`; both completions awaited.
//! - `uring-dsync`: an io_uring `Write` with the per-I/O flag `RWF_DSYNC`.
//! - `uring-write-then-fdatasync`: `Write`, await it, then `Fsync` (datasync), await it.
//! - `glommio-dma`: glommio's `DmaFile::write_rc_at` then `DmaFile::fdatasync`, inside a
//!   `LocalExecutor` whose I/O memory is sized by [`super::memlock::prepare`].
//! - `glommio-dma-dsync`: the same file opened through glommio with `O_DSYNC` (glommio has no
//!   per-I/O flags), so each `write_rc_at` is durable on completion; no `fdatasync`.
//! - `sync-pwrite-fdatasync`: blocking `pwrite` + `fdatasync` from the calling thread (the
//!   baseline).
//!
//! A [`Variant`] `MODE+groupN` is group commit: N appends go down as one write of N times the
//! append size, made durable once. Its latency is per batch (per durable write); its
//! throughput is counted in appends.
//!
//! Besides latency (an `hdrhistogram`, nanoseconds in, microseconds out) every run records the
//! CPU it cost, twice: the process's own threads (sum of `/proc/self/task/*/schedstat`, in ns,
//! which includes io_uring's `iou-wrk` threads but not interrupts or kernel workqueues such as
//! the one that completes an `RWF_DSYNC` write), and the whole machine's busy time (wall time
//! less the idle time of `/proc/stat`, +-10 ms per reading, including any other load on the
//! machine). Neither is exact; both are there to compare modes.
//!
//! It also counts what the block device under the scratch directory did meanwhile
//! (`/proc/diskstats`: write requests, bytes, cache flushes), which shows whether each durable
//! write cost exactly one flush and no metadata writes. The counters are device-wide: other
//! I/O on the same device during a run shows up in them.
//!
//! This is a measurement tool, not the log's disk implementation (`log::disk` is the seam);
//! the choice it informs is recorded in `docs/decisions/0003-log-durability-mode.md`.

// io_uring takes raw pointers to our buffers, which only `unsafe` can hand over (pushing an
// SQE). Each unsafe block is in a method that borrows the buffer for its whole duration and
// returns only after the kernel has completed every operation it submitted, so the kernel never
// reads a buffer that has been changed or freed. See `Ring::submit_and_reap`.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use io_uring::{IoUring, opcode, squeue, types};

use super::memlock;

/// `O_DIRECT` for `open(2)`. libc is not a direct dependency, so the value is spelled out: it
/// is `00040000` in `include/uapi/asm-generic/fcntl.h` (x86, RISC-V, LoongArch, s390) and
/// `0200000` in `arch/arm64/include/uapi/asm/fcntl.h` (and 32-bit arm).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const O_DIRECT: i32 = 0o200_000;
/// `O_DIRECT` for `open(2)` (see the arm64 definition for the sources).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "s390x"
))]
const O_DIRECT: i32 = 0o40_000;

/// `O_DSYNC` for `open(2)`: `00010000` in `include/uapi/asm-generic/fcntl.h`, which x86 and
/// arm64 do not override.
const O_DSYNC: i32 = 0o10_000;

/// `RWF_DSYNC`, the per-I/O `O_DSYNC` flag of `pwritev2(2)` and io_uring writes: `0x00000002`
/// in `include/uapi/linux/fs.h` (Linux 4.7+). Not in every libc version, hence spelled out.
const RWF_DSYNC: i32 = 0x2;

/// Alignment of O_DIRECT buffers, offsets and lengths, in bytes.
pub const ALIGNMENT_BYTES: usize = 4096;

/// Size of the writes that prepare a file, in bytes.
const PREPARE_CHUNK_BYTES: usize = 1024 * 1024;

/// Highest latency the histograms track, in nanoseconds (one minute); longer saturates.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// `USER_HZ`: the unit of the times in `/proc/stat`, 100 per second on every Linux ABI.
const PROC_STAT_TICKS_PER_SECOND: u64 = 100;

/// One way of making an append durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// io_uring `Write` linked to `Fsync(DATASYNC)`, one submission.
    UringLinked,
    /// io_uring `Write` with `RWF_DSYNC`.
    UringDsync,
    /// io_uring `Write`, wait, then `Fsync(DATASYNC)`, wait.
    UringWriteThenFdatasync,
    /// glommio `DmaFile::write_rc_at` then `DmaFile::fdatasync`.
    GlommioDma,
    /// glommio `DmaFile::write_rc_at` on a file opened with `O_DSYNC`.
    GlommioDmaDsync,
    /// Blocking `pwrite` then `fdatasync`.
    SyncPwriteFdatasync,
}

impl Mode {
    /// Every mode, in the order the tables list them.
    pub const ALL: [Mode; 6] = [
        Mode::UringLinked,
        Mode::UringDsync,
        Mode::UringWriteThenFdatasync,
        Mode::GlommioDma,
        Mode::GlommioDmaDsync,
        Mode::SyncPwriteFdatasync,
    ];

    /// Whether the mode runs inside a glommio executor.
    #[must_use]
    pub fn uses_glommio(self) -> bool {
        matches!(self, Mode::GlommioDma | Mode::GlommioDmaDsync)
    }

    /// The mode's name on the command line and in the tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mode::UringLinked => "uring-linked",
            Mode::UringDsync => "uring-dsync",
            Mode::UringWriteThenFdatasync => "uring-write-then-fdatasync",
            Mode::GlommioDma => "glommio-dma",
            Mode::GlommioDmaDsync => "glommio-dma-dsync",
            Mode::SyncPwriteFdatasync => "sync-pwrite-fdatasync",
        }
    }
}

/// A mode, and how many appends go down as one write (`group`, 1 without group commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant {
    /// How each write is made durable.
    pub mode: Mode,
    /// Appends per write and sync; 1 is no group commit.
    pub group: usize,
}

impl Variant {
    /// Group size of the group commit variants in the default set.
    pub const GROUP_DEFAULT: usize = 16;

    /// The default set: every mode alone, then every mode with group commit of
    /// [`Variant::GROUP_DEFAULT`].
    #[must_use]
    pub fn defaults() -> Vec<Variant> {
        let alone = Mode::ALL.iter().map(|&mode| Variant { mode, group: 1 });
        let grouped = Mode::ALL.iter().map(|&mode| Variant { mode, group: Self::GROUP_DEFAULT });
        alone.chain(grouped).collect()
    }
}

impl fmt::Display for Variant {
    /// `uring-linked`, or `uring-linked+group16` with group commit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group == 1 {
            write!(f, "{}", self.mode.name())
        } else {
            write!(f, "{}+group{}", self.mode.name(), self.group)
        }
    }
}

impl FromStr for Variant {
    type Err = String;

    /// Parses `MODE` or `MODE+groupN` (N >= 1).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, group) = match text.split_once("+group") {
            Some((name, group)) => match group.parse::<usize>() {
                Ok(group) if group >= 1 => (name, group),
                _ => return Err(format!("`{text}`: the group size must be a number >= 1")),
            },
            None => (text, 1),
        };
        let Some(mode) = Mode::ALL.into_iter().find(|mode| mode.name() == name) else {
            let names: Vec<&str> = Mode::ALL.iter().map(|mode| mode.name()).collect();
            return Err(format!(
                "unknown mode `{name}`; known: {}, each optionally with +groupN",
                names.join(", ")
            ));
        };
        Ok(Variant { mode, group })
    }
}

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Directory of the scratch files: must be on the file system under test, which must
    /// support O_DIRECT (tmpfs does not). Each file is removed after its run.
    pub dir: PathBuf,
    /// Appends per run (rounded down to a multiple of the group size).
    pub count: usize,
    /// Append sizes, in bytes, each a multiple of [`ALIGNMENT_BYTES`].
    pub sizes: Vec<usize>,
    /// The variants, run in this order within every round.
    pub variants: Vec<Variant>,
    /// Rounds: every round runs every size and variant once (interleaved round-robin).
    pub repeats: usize,
}

/// Latency percentiles of one run, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Latency {
    /// The percentiles of `histogram`, which holds nanoseconds.
    #[must_use]
    pub fn from_histogram(histogram: &Histogram<u64>) -> Latency {
        let us = |ns: u64| f64_from(ns) / 1000.0;
        Latency {
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// The outcome of one run: one variant, one append size, one round.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// What was measured.
    pub variant: Variant,
    /// Bytes per append.
    pub size_bytes: usize,
    /// The round, from 0.
    pub repeat: usize,
    /// Appends made durable.
    pub appends: usize,
    /// Durable writes (batches): `appends / variant.group`.
    pub writes: usize,
    /// Payload bytes written (the preparation of the file not counted).
    pub bytes_written: u64,
    /// Wall time of all appends, in nanoseconds.
    pub elapsed_ns: u64,
    /// Latency of each durable write (of one batch, with group commit).
    pub latency: Latency,
    /// CPU time of the process's threads during the appends, in ns, when readable.
    pub process_cpu_ns: Option<u64>,
    /// Busy time of the whole machine during the appends, in ns (10 ms resolution).
    pub machine_busy_ns: Option<u64>,
    /// What the block device under the scratch directory completed during the appends.
    pub device: Option<DeviceCounters>,
}

/// Requests a block device completed (from `/proc/diskstats`), or the difference of two
/// readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Write requests completed, counting each cache flush once more: the block layer
    /// issues a flush as an empty write with `REQ_PREFLUSH`.
    pub writes: u64,
    /// Bytes written (sectors of 512 bytes).
    pub bytes_written: u64,
    /// Cache flush requests completed.
    pub flushes: u64,
}

impl DeviceCounters {
    /// The counters of device `major:minor` now, `None` if `/proc/diskstats` lacks them.
    #[must_use]
    pub fn read(major: u64, minor: u64) -> Option<DeviceCounters> {
        let stats = fs::read_to_string("/proc/diskstats").ok()?;
        stats.lines().find_map(|line| Self::parse(line, major, minor))
    }

    /// Parses one `/proc/diskstats` line if it is the device's (flushes need Linux 5.5+).
    fn parse(line: &str, major: u64, minor: u64) -> Option<DeviceCounters> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
        if number(0)? != major || number(1)? != minor {
            return None;
        }
        // major minor name | reads merged sectors ms | writes merged sectors ms | in-flight
        // ms weighted | discards merged sectors ms | flushes ms
        Some(DeviceCounters {
            writes: number(7)?,
            bytes_written: number(9)? * 512,
            flushes: number(18)?,
        })
    }

    fn since(self, before: DeviceCounters) -> DeviceCounters {
        DeviceCounters {
            writes: self.writes.saturating_sub(before.writes),
            bytes_written: self.bytes_written.saturating_sub(before.bytes_written),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }
}

/// The block device under `dir`, refusing directories that have none in `/proc/diskstats`:
/// tmpfs accepts O_DIRECT (Linux 6.6+) but nothing written there is durable, so a measurement
/// there would look fast and mean nothing. (This also refuses file systems that report an
/// anonymous device, such as btrfs.)
fn block_device_of(dir: &Path) -> Result<(u64, u64), RunError> {
    let (major, minor) =
        device_of(dir).map_err(|error| RunError::io(format_args!("{}", dir.display()), &error))?;
    if DeviceCounters::read(major, minor).is_none() {
        return Err(RunError(format!(
            "{} is on device {major}:{minor}, which is not a block device in /proc/diskstats \
             (tmpfs?): durability cannot be measured there",
            dir.display()
        )));
    }
    Ok((major, minor))
}

/// `major:minor` of the device holding `path` (glibc's `major()`/`minor()` encoding).
fn device_of(path: &Path) -> io::Result<(u64, u64)> {
    let dev = fs::metadata(path)?.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Ok((major, minor))
}

impl RunResult {
    /// Appends made durable per second.
    #[must_use]
    pub fn appends_per_second(&self) -> f64 {
        f64_from(self.appends as u64) * 1e9 / f64_from(self.elapsed_ns.max(1))
    }

    /// Payload written per second, in MB (10^6 bytes).
    #[must_use]
    pub fn megabytes_per_second(&self) -> f64 {
        f64_from(self.bytes_written) * 1e3 / f64_from(self.elapsed_ns.max(1))
    }

    /// Process CPU per append, in microseconds.
    #[must_use]
    pub fn process_cpu_us_per_append(&self) -> Option<f64> {
        self.process_cpu_ns.map(|ns| f64_from(ns) / 1000.0 / f64_from(self.appends as u64))
    }

    /// Machine busy time per append, in microseconds.
    #[must_use]
    pub fn machine_busy_us_per_append(&self) -> Option<f64> {
        self.machine_busy_ns.map(|ns| f64_from(ns) / 1000.0 / f64_from(self.appends as u64))
    }

    /// Device cache flushes per durable write.
    #[must_use]
    pub fn device_flushes_per_write(&self) -> Option<f64> {
        self.device.map(|d| f64_from(d.flushes) / f64_from(self.writes as u64))
    }

    /// Bytes the device wrote per durable write, in KiB (payload plus any metadata).
    #[must_use]
    pub fn device_kib_per_write(&self) -> Option<f64> {
        self.device.map(|d| f64_from(d.bytes_written) / 1024.0 / f64_from(self.writes as u64))
    }
}

/// Everything measured, in the order it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The options of the measurement.
    pub options: Options,
    /// glommio's registered I/O memory per executor, and what was done about
    /// `RLIMIT_MEMLOCK`, when a glommio variant ran.
    pub glommio_io_memory: Option<String>,
    /// One entry per run.
    pub runs: Vec<RunResult>,
}

/// Why a measurement stopped. Any I/O error stops the whole measurement.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(String);

impl RunError {
    fn io(context: impl fmt::Display, error: &io::Error) -> RunError {
        RunError(format!("{context}: {error}"))
    }
}

/// Runs every round of every size and variant, calling `on_run` after each run.
///
/// # Errors
/// The first I/O error (or invalid option), naming the variant, size, operation and offset.
pub fn run_with(options: &Options, mut on_run: impl FnMut(&RunResult)) -> Result<Report, RunError> {
    validate(options)?;
    let uses_glommio = options.variants.iter().any(|v| v.mode.uses_glommio());
    let glommio_plan = if uses_glommio {
        Some(memlock::prepare(1).map_err(|error| RunError(format!("glommio-dma: {error}")))?)
    } else {
        None
    };
    let device = Some(block_device_of(&options.dir)?);
    let mut runs = Vec::new();
    let mut sequence = 0;
    for repeat in 0..options.repeats {
        for &size_bytes in &options.sizes {
            for &variant in &options.variants {
                sequence += 1;
                let plan = glommio_plan.map(|plan| plan.io_memory_bytes);
                let scenario =
                    Scenario { variant, size_bytes, count: options.count, repeat, device };
                let run = scenario.run(&options.dir, sequence, plan)?;
                on_run(&run);
                runs.push(run);
            }
        }
    }
    let glommio_io_memory =
        glommio_plan.map(|plan| format!("{} bytes ({:?})", plan.io_memory_bytes, plan.outcome));
    Ok(Report { options: options.clone(), glommio_io_memory, runs })
}

/// Runs every round of every size and variant.
///
/// # Errors
/// As [`run_with`].
pub fn run(options: &Options) -> Result<Report, RunError> {
    run_with(options, |_| {})
}

fn validate(options: &Options) -> Result<(), RunError> {
    if options.sizes.is_empty() || options.variants.is_empty() || options.repeats == 0 {
        return Err(RunError("need at least one size, one mode and one repeat".to_string()));
    }
    for &size in &options.sizes {
        if size == 0 || !size.is_multiple_of(ALIGNMENT_BYTES) {
            return Err(RunError(format!(
                "append size {size} is not a positive multiple of {ALIGNMENT_BYTES} (O_DIRECT)"
            )));
        }
    }
    for variant in &options.variants {
        if options.count < variant.group {
            return Err(RunError(format!(
                "{variant}: --count {} is below the group size {}",
                options.count, variant.group
            )));
        }
    }
    Ok(())
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    variant: Variant,
    size_bytes: usize,
    count: usize,
    repeat: usize,
    /// `major:minor` of the device under the scratch directory.
    device: Option<(u64, u64)>,
}

impl Scenario {
    fn writes(&self) -> usize {
        self.count / self.variant.group
    }

    fn write_bytes(&self) -> usize {
        self.size_bytes * self.variant.group
    }

    /// `"uring-linked 4096 B"`, for error messages.
    fn label(&self) -> String {
        format!("{} {} B", self.variant, self.size_bytes)
    }

    fn run(
        self,
        dir: &Path,
        sequence: usize,
        glommio_io_memory: Option<usize>,
    ) -> Result<RunResult, RunError> {
        let label = self.label();
        let file_bytes = self.write_bytes() * self.writes();
        let name = format!("klein-disk-modes-{}-{sequence}.dat", std::process::id());
        let scratch = ScratchFile::prepare(dir, &name, file_bytes)
            .map_err(|error| RunError::io(format_args!("{label}: preparing {name}"), &error))?;
        let samples = match self.variant.mode {
            Mode::UringLinked | Mode::UringDsync | Mode::UringWriteThenFdatasync => {
                self.run_uring(&scratch.file)?
            }
            Mode::SyncPwriteFdatasync => self.run_sync(&scratch.file)?,
            Mode::GlommioDma | Mode::GlommioDmaDsync => {
                let io_memory = glommio_io_memory.expect("planned when a glommio variant runs");
                self.run_glommio(scratch.path.clone(), io_memory)?
            }
        };
        drop(scratch);
        let appends = self.writes() * self.variant.group;
        Ok(RunResult {
            variant: self.variant,
            size_bytes: self.size_bytes,
            repeat: self.repeat,
            appends,
            writes: self.writes(),
            bytes_written: file_bytes as u64,
            elapsed_ns: samples.elapsed_ns,
            latency: Latency::from_histogram(&samples.histogram),
            process_cpu_ns: samples.process_cpu_ns,
            machine_busy_ns: samples.machine_busy_ns,
            device: samples.device,
        })
    }

    fn run_uring(&self, file: &File) -> Result<Samples, RunError> {
        let label = self.label();
        let mut ring = Ring::new().map_err(|error| RunError::io(&label, &error))?;
        let fd = types::Fd(file.as_raw_fd());
        let mut buffer = AlignedBuffer::new(self.write_bytes());
        fill_pattern(buffer.as_mut_slice(), self.repeat as u64);
        let mut sampler = Sampler::start(self.device);
        for write in 0..self.writes() {
            stamp_appends(buffer.as_mut_slice(), self.size_bytes, write * self.variant.group);
            let offset = (write * self.write_bytes()) as u64;
            let data = buffer.as_slice();
            let started = Instant::now();
            let outcome = match self.variant.mode {
                Mode::UringLinked => ring.write_linked_fdatasync(fd, data, offset),
                Mode::UringDsync => ring.write(fd, data, offset, RWF_DSYNC),
                _ => ring.write(fd, data, offset, 0).and_then(|()| ring.fdatasync(fd)),
            };
            outcome.map_err(|error| RunError::io(format_args!("{label} at {offset}"), &error))?;
            sampler.record(started.elapsed());
        }
        Ok(sampler.finish())
    }

    fn run_sync(&self, file: &File) -> Result<Samples, RunError> {
        let label = self.label();
        let mut buffer = AlignedBuffer::new(self.write_bytes());
        fill_pattern(buffer.as_mut_slice(), self.repeat as u64);
        let mut sampler = Sampler::start(self.device);
        for write in 0..self.writes() {
            stamp_appends(buffer.as_mut_slice(), self.size_bytes, write * self.variant.group);
            let offset = (write * self.write_bytes()) as u64;
            let data = buffer.as_slice();
            let started = Instant::now();
            let outcome = file
                .write_at(data, offset)
                .and_then(|written| check_length("pwrite", written, data.len()))
                .and_then(|()| file.sync_data());
            outcome.map_err(|error| RunError::io(format_args!("{label} at {offset}"), &error))?;
            sampler.record(started.elapsed());
        }
        Ok(sampler.finish())
    }

    /// Runs the appends inside a fresh glommio executor (outside the timed part: creating it,
    /// opening the file, allocating the buffer).
    fn run_glommio(self, path: PathBuf, io_memory: usize) -> Result<Samples, RunError> {
        let label = self.label();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name("klein-disk-modes")
            .io_memory(io_memory)
            .spawn(move || async move { self.glommio_appends(&path).await })
            .map_err(|error| RunError(format!("{label}: starting the executor: {error}")))?;
        handle.join().map_err(|error| RunError(format!("{label}: the executor failed: {error}")))?
    }

    async fn glommio_appends(self, path: &Path) -> Result<Samples, RunError> {
        let label = self.label();
        let io_error = |what: &str, error: glommio::GlommioError<()>| {
            RunError::io(format_args!("{label}: {what}"), &io::Error::from(error))
        };
        let dsync = self.variant.mode == Mode::GlommioDmaDsync;
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(if dsync { O_DSYNC } else { 0 })
            .dma_open(path)
            .await
            .map_err(|error| io_error("opening", error))?;
        check_direct(file.as_raw_fd())
            .and_then(|()| {
                if dsync { check_open_flag(file.as_raw_fd(), O_DSYNC, "O_DSYNC") } else { Ok(()) }
            })
            .map_err(|error| RunError::io(&label, &error))?;
        let mut buffer = Rc::new(file.alloc_dma_buffer(self.write_bytes()));
        let Some(bytes) = Rc::get_mut(&mut buffer) else { unreachable!("just created") };
        fill_pattern(bytes.as_bytes_mut(), self.repeat as u64);
        let mut sampler = Sampler::start(self.device);
        for write in 0..self.writes() {
            // The write's Source held the other reference; it is dropped with the completion.
            let Some(bytes) = Rc::get_mut(&mut buffer) else {
                return Err(RunError(format!("{label}: the DMA buffer is still shared")));
            };
            stamp_appends(bytes.as_bytes_mut(), self.size_bytes, write * self.variant.group);
            let offset = (write * self.write_bytes()) as u64;
            let started = Instant::now();
            let written = file
                .write_rc_at(Rc::clone(&buffer), offset)
                .await
                .map_err(|error| io_error(&format!("write at {offset}"), error))?;
            check_length("write", written, self.write_bytes())
                .map_err(|error| RunError::io(format_args!("{label} at {offset}"), &error))?;
            if !dsync {
                file.fdatasync()
                    .await
                    .map_err(|error| io_error(&format!("fdatasync after {offset}"), error))?;
            }
            sampler.record(started.elapsed());
        }
        let samples = sampler.finish();
        file.close().await.map_err(|error| io_error("closing", error))?;
        Ok(samples)
    }
}

/// A scratch file prepared like a recycled log segment, removed (and the removal synced) on
/// drop so the next run starts on a settled file system.
struct ScratchFile {
    path: PathBuf,
    dir: PathBuf,
    file: File,
}

impl ScratchFile {
    /// Creates `dir/name` with O_DIRECT, `fallocate`s `size` bytes, writes them all once,
    /// `fdatasync`s the file and `fsync`s the directory.
    fn prepare(dir: &Path, name: &str, size: usize) -> io::Result<ScratchFile> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(O_DIRECT)
            .open(&path)
            .map_err(|error| {
                let hint = if error.kind() == io::ErrorKind::InvalidInput {
                    " (does the file system support O_DIRECT? tmpfs does not)"
                } else {
                    ""
                };
                io::Error::new(error.kind(), format!("open {}: {error}{hint}", path.display()))
            })?;
        // From here on the file exists: the guard removes it whatever happens next.
        let scratch = ScratchFile { path, dir: dir.to_path_buf(), file };
        check_direct(scratch.file.as_raw_fd())?;
        let mut ring = Ring::new()?;
        ring.fallocate(types::Fd(scratch.file.as_raw_fd()), size as u64)?;
        let mut chunk = AlignedBuffer::new(PREPARE_CHUNK_BYTES.min(size));
        fill_pattern(chunk.as_mut_slice(), u64::MAX);
        let mut offset = 0;
        while offset < size {
            let length = chunk.as_slice().len().min(size - offset);
            let data = &chunk.as_slice()[..length];
            let written = scratch.file.write_at(data, offset as u64)?;
            check_length("pwrite", written, length)?;
            offset += length;
        }
        scratch.file.sync_data()?;
        File::open(&scratch.dir)?.sync_all()?;
        Ok(scratch)
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        // Best effort: a failure here leaves a file behind, which the CLI's directory clean-up
        // catches; it cannot change what was measured.
        let _ = fs::remove_file(&self.path);
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }
}

/// Fails unless `fd` really is open with O_DIRECT (from `/proc/self/fdinfo`).
fn check_direct(fd: i32) -> io::Result<()> {
    check_open_flag(fd, O_DIRECT, "O_DIRECT")
}

/// Fails unless `fd` is open with `flag` (from `/proc/self/fdinfo`).
fn check_open_flag(fd: i32, flag: i32, name: &str) -> io::Result<()> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    let flags = info
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| i64::from_str_radix(flags.trim(), 8).ok())
        .ok_or_else(|| io::Error::other(format!("no flags in /proc/self/fdinfo/{fd}")))?;
    if flags & i64::from(flag) == 0 {
        return Err(io::Error::other(format!("fd {fd} is not open with {name}")));
    }
    Ok(())
}

fn check_length(what: &str, written: usize, wanted: usize) -> io::Result<()> {
    if written == wanted {
        Ok(())
    } else {
        Err(io::Error::other(format!("short {what}: {written} of {wanted} bytes")))
    }
}

/// An io_uring with at most two operations in flight, each call waiting for its completions.
struct Ring {
    ring: IoUring,
}

impl Ring {
    /// Tags of the SQEs: the index of their result in [`Ring::submit_and_reap`]'s answer.
    const FIRST: u64 = 0;
    const SECOND: u64 = 1;

    fn new() -> io::Result<Ring> {
        let ring = IoUring::new(8)
            .map_err(|error| io::Error::new(error.kind(), format!("io_uring setup: {error}")))?;
        Ok(Ring { ring })
    }

    /// Writes `data` at `offset` with `rw_flags` and waits for the completion.
    fn write(&mut self, fd: types::Fd, data: &[u8], offset: u64, rw_flags: i32) -> io::Result<()> {
        let entry = opcode::Write::new(fd, data.as_ptr(), length_u32(data)?)
            .offset(offset)
            .rw_flags(rw_flags)
            .build()
            .user_data(Self::FIRST);
        // SAFETY: the SQE points into `data`, which this call borrows (unchanged, alive) until
        // it returns, and `submit_and_reap` returns only after the write's completion.
        unsafe { self.push(&[entry]) }?;
        let [write, _] = self.submit_and_reap(1);
        check_result("write", write, data.len())
    }

    /// One submission: a write of `data` at `offset`, linked to an `fdatasync`; waits for both.
    fn write_linked_fdatasync(
        &mut self,
        fd: types::Fd,
        data: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        let write = opcode::Write::new(fd, data.as_ptr(), length_u32(data)?)
            .offset(offset)
            .build()
            .flags(squeue::Flags::IO_LINK)
            .user_data(Self::FIRST);
        let sync = opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(Self::SECOND);
        // SAFETY: the write SQE points into `data`, borrowed (unchanged, alive) until this call
        // returns; `submit_and_reap` returns only after both completions.
        unsafe { self.push(&[write, sync]) }?;
        let [write, sync] = self.submit_and_reap(2);
        check_result("write", write, data.len())?;
        check_result("fdatasync", sync, 0)
    }

    /// `fdatasync` through the ring, waiting for it.
    fn fdatasync(&mut self, fd: types::Fd) -> io::Result<()> {
        let sync = opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(Self::FIRST);
        // SAFETY: an fsync SQE points to no memory of ours.
        unsafe { self.push(&[sync]) }?;
        let [sync, _] = self.submit_and_reap(1);
        check_result("fdatasync", sync, 0)
    }

    /// `fallocate(fd, 0, 0, length)`: allocates (and extends the file to) `length` bytes.
    fn fallocate(&mut self, fd: types::Fd, length: u64) -> io::Result<()> {
        let entry = opcode::Fallocate::new(fd, length).build().user_data(Self::FIRST);
        // SAFETY: a fallocate SQE points to no memory of ours.
        unsafe { self.push(&[entry]) }?;
        let [result, _] = self.submit_and_reap(1);
        check_result("fallocate", result, 0)
    }

    /// Queues `entries`, all or none.
    ///
    /// # Safety
    /// Every buffer an entry points to must stay alive and unchanged until the entries'
    /// completions have been reaped by [`Ring::submit_and_reap`].
    unsafe fn push(&mut self, entries: &[squeue::Entry]) -> io::Result<()> {
        // SAFETY: forwarded to the caller (see above).
        unsafe { self.ring.submission().push_multiple(entries) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))
    }

    /// Submits what was pushed and waits until `count` completions have arrived; returns their
    /// results indexed by tag. Never returns with an operation in flight: if waiting fails for
    /// a reason other than an interruption, the process aborts, because the operations may
    /// still read buffers the caller is about to release.
    fn submit_and_reap(&mut self, count: usize) -> [i32; 2] {
        let mut results = [0; 2];
        let mut reaped = 0;
        while reaped < count {
            if let Err(error) = self.ring.submit_and_wait(count - reaped) {
                let retry = matches!(
                    error.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::ResourceBusy
                );
                if !retry {
                    eprintln!(
                        "klein-disk-modes: io_uring_enter failed with I/O in flight: {error}"
                    );
                    std::process::abort();
                }
            }
            for completion in self.ring.completion() {
                let tag = usize::try_from(completion.user_data()).unwrap_or(usize::MAX);
                assert!(tag < results.len(), "unexpected io_uring completion tag {tag}");
                results[tag] = completion.result();
                reaped += 1;
            }
        }
        results
    }
}

fn length_u32(data: &[u8]) -> io::Result<u32> {
    u32::try_from(data.len()).map_err(|_| io::Error::other("write larger than 4 GiB"))
}

/// Turns an io_uring result (bytes done, or minus errno) into `Ok` when it equals `wanted`.
fn check_result(what: &str, result: i32, wanted: usize) -> io::Result<()> {
    match usize::try_from(result) {
        Ok(done) if done == wanted => Ok(()),
        Ok(done) => Err(io::Error::other(format!("short {what}: {done} of {wanted} bytes"))),
        Err(_) => {
            let error = io::Error::from_raw_os_error(result.saturating_neg());
            Err(io::Error::new(error.kind(), format!("{what}: {error}")))
        }
    }
}

/// A heap buffer whose slice starts at a multiple of [`ALIGNMENT_BYTES`], as O_DIRECT needs:
/// a `Vec` over-allocated by the alignment, sliced at the first aligned address. The `Vec`
/// never grows, so the address is stable for the buffer's life.
pub struct AlignedBuffer {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuffer {
    /// A zeroed buffer of `len` bytes, aligned to [`ALIGNMENT_BYTES`].
    ///
    /// # Panics
    /// If the platform cannot compute the alignment offset (it always can for bytes).
    #[must_use]
    pub fn new(len: usize) -> AlignedBuffer {
        let storage = vec![0u8; len + ALIGNMENT_BYTES];
        let start = storage.as_ptr().align_offset(ALIGNMENT_BYTES);
        assert!(start < ALIGNMENT_BYTES, "cannot align a byte buffer");
        AlignedBuffer { storage, start, len }
    }

    /// The aligned bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The aligned bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Fills `bytes` with a pseudo-random pattern from `seed` (xorshift64), so no layer below can
/// shortcut zero or repeated blocks.
fn fill_pattern(bytes: &mut [u8], seed: u64) {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    for chunk in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

/// Writes each append's number into its first 8 bytes (`bytes` holds appends of `size`).
fn stamp_appends(bytes: &mut [u8], size: usize, first: usize) {
    for (index, append) in bytes.chunks_mut(size).enumerate() {
        append[..8].copy_from_slice(&((first + index) as u64).to_le_bytes());
    }
}

/// Latencies and CPU of one run's timed part.
struct Samples {
    histogram: Histogram<u64>,
    elapsed_ns: u64,
    process_cpu_ns: Option<u64>,
    machine_busy_ns: Option<u64>,
    device: Option<DeviceCounters>,
}

/// Records latencies between `start` and `finish`, and the CPU used in between.
struct Sampler {
    histogram: Histogram<u64>,
    started: Instant,
    cpu: Option<ProcessCpu>,
    machine_idle: Option<MachineIdle>,
    device: Option<((u64, u64), DeviceCounters)>,
}

impl Sampler {
    fn start(device: Option<(u64, u64)>) -> Sampler {
        let histogram =
            Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("constant bounds are valid");
        let cpu = ProcessCpu::read();
        let machine_idle = MachineIdle::read();
        let device = device.and_then(|(major, minor)| {
            DeviceCounters::read(major, minor).map(|counters| ((major, minor), counters))
        });
        Sampler { histogram, started: Instant::now(), cpu, machine_idle, device }
    }

    fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(ns.max(1));
    }

    fn finish(self) -> Samples {
        let elapsed_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let process_cpu_ns = match (self.cpu, ProcessCpu::read()) {
            (Some(before), Some(after)) => Some(after.since(&before)),
            _ => None,
        };
        let machine_busy_ns = match (self.machine_idle, MachineIdle::read()) {
            (Some(before), Some(after)) => Some(after.busy_since(before, elapsed_ns)),
            _ => None,
        };
        let device = self.device.and_then(|((major, minor), before)| {
            DeviceCounters::read(major, minor).map(|after| after.since(before))
        });
        Samples { histogram: self.histogram, elapsed_ns, process_cpu_ns, machine_busy_ns, device }
    }
}

/// CPU time of each thread of the process, by thread id, in ns (`/proc/self/task/*/schedstat`,
/// first field). Threads that exit between two readings are lost; io_uring workers live for
/// seconds after their last work item, longer than the gaps between appends.
struct ProcessCpu {
    threads: BTreeMap<u64, u64>,
}

impl ProcessCpu {
    fn read() -> Option<ProcessCpu> {
        let mut threads = BTreeMap::new();
        for entry in fs::read_dir("/proc/self/task").ok()? {
            let entry = entry.ok()?;
            let Some(tid) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else {
                continue;
            };
            // A thread may exit between the listing and the read.
            let Ok(text) = fs::read_to_string(entry.path().join("schedstat")) else { continue };
            let ns = text.split_whitespace().next()?.parse().ok()?;
            threads.insert(tid, ns);
        }
        Some(ProcessCpu { threads })
    }

    /// CPU used since `before`; threads started since count from zero.
    fn since(&self, before: &ProcessCpu) -> u64 {
        self.threads
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(before.threads.get(tid).copied().unwrap_or(0)))
            .sum()
    }
}

/// Idle time of the machine. `/proc/stat` measures idle and iowait precisely on tickless
/// kernels (from idle entry and exit) but prints them in 10 ms ticks, while it samples busy
/// time at ticks; so busy = wall time - idle is the better estimate, to +-10 ms per reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MachineIdle {
    /// `idle + iowait + steal` of all CPUs, in ticks.
    ticks: u64,
    /// CPUs counted.
    cpus: u64,
}

impl MachineIdle {
    fn read() -> Option<MachineIdle> {
        Self::parse(&fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses `/proc/stat`: the `cpu` line's idle, iowait and steal, and the number of `cpuN`
    /// lines.
    fn parse(stat: &str) -> Option<MachineIdle> {
        let line = stat.lines().find(|line| line.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal ...
        let ticks = [3, 4, 7].iter().map(|&index| fields.get(index).copied().unwrap_or(0)).sum();
        let is_cpu_n = |line: &&str| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        let cpus = stat.lines().filter(is_cpu_n).count() as u64;
        (cpus > 0).then_some(MachineIdle { ticks, cpus })
    }

    /// Busy time of all CPUs over `elapsed_ns` since `before`: the CPUs' wall time less their
    /// idle, iowait and steal time, in ns.
    fn busy_since(self, before: MachineIdle, elapsed_ns: u64) -> u64 {
        let idle_ns =
            self.ticks.saturating_sub(before.ticks) * (1_000_000_000 / PROC_STAT_TICKS_PER_SECOND);
        (elapsed_ns * self.cpus).saturating_sub(idle_ns)
    }
}

/// Converts a count or a duration in ns to `f64` for rates and means.
#[allow(clippy::cast_precision_loss)] // exact below 2^53: counts and ns of minutes-long runs
fn f64_from(value: u64) -> f64 {
    value as f64
}

/// The median, smallest and largest of `values` (the mean of the middle two for an even
/// count). `None` when empty.
#[must_use]
pub fn median_min_max(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        f64::midpoint(sorted[middle - 1], sorted[middle])
    };
    Some((median, first, last))
}

/// `1234.5` as `1,235`; values below 100 keep one decimal (`12.3`).
#[must_use]
pub fn format_number(value: f64) -> String {
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0.0 { format!("-{grouped}") } else { grouped }
}

/// `median [min..max]` of `values`, or `-` when there are none.
fn spread(values: &[f64]) -> String {
    match median_min_max(values) {
        Some((median, min, max)) if values.len() > 1 => {
            format!("{} [{}..{}]", format_number(median), format_number(min), format_number(max))
        }
        Some((median, _, _)) => format_number(median),
        None => "-".to_string(),
    }
}

/// The median of `values`, formatted, or `-`.
fn median_only(values: &[f64]) -> String {
    median_min_max(values).map_or_else(|| "-".to_string(), |(median, _, _)| format_number(median))
}

impl Report {
    /// One Markdown table per append size: per variant, the median over the rounds of every
    /// figure, with `[min..max]` for throughput, p50 and p99.
    #[must_use]
    pub fn tables(&self) -> String {
        let mut out = String::new();
        for &size in &self.options.sizes {
            let runs: Vec<&RunResult> = self.runs.iter().filter(|r| r.size_bytes == size).collect();
            let rounds = runs.iter().map(|r| r.repeat).max().map_or(0, |max| max + 1);
            let _ = writeln!(
                out,
                "### {size}-byte appends ({} per run, {rounds} rounds; median [min..max])\n",
                self.options.count
            );
            out.push_str(
                "| mode | appends/s | p50 us | p90 us | p99 us | p99.9 us | max us \
                 | CPU us/append (process) | CPU us/append (machine) | MB/s | writes/run \
                 | device flushes/write | device KiB/write |\n",
            );
            out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            for variant in &self.options.variants {
                let of: Vec<&RunResult> =
                    runs.iter().copied().filter(|r| r.variant == *variant).collect();
                let column = |f: &dyn Fn(&RunResult) -> Option<f64>| -> Vec<f64> {
                    of.iter().filter_map(|r| f(r)).collect()
                };
                let writes = of.first().map_or(0, |r| r.writes);
                let _ = writeln!(
                    out,
                    "| {variant} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {writes} \
                     | {} | {} |",
                    spread(&column(&|r| Some(r.appends_per_second()))),
                    spread(&column(&|r| Some(r.latency.p50_us))),
                    median_only(&column(&|r| Some(r.latency.p90_us))),
                    spread(&column(&|r| Some(r.latency.p99_us))),
                    median_only(&column(&|r| Some(r.latency.p999_us))),
                    median_only(&column(&|r| Some(r.latency.max_us))),
                    median_only(&column(&RunResult::process_cpu_us_per_append)),
                    median_only(&column(&RunResult::machine_busy_us_per_append)),
                    median_only(&column(&|r| Some(r.megabytes_per_second()))),
                    median_only(&column(&RunResult::device_flushes_per_write)),
                    median_only(&column(&RunResult::device_kib_per_write)),
                );
            }
            out.push('\n');
        }
        out.push_str(
            "Latency is per durable write: one append, or one batch for `+groupN` variants \
             (whose appends/s counts appends). CPU (process) = the process's threads, \
             io_uring workers included; CPU (machine) = all busy CPU time (wall - idle, \
             +-10 ms per run); device columns = what the block device completed during the \
             timed part (/proc/diskstats, device-wide).\n",
        );
        out
    }

    /// The report as JSON: the options and every run, unaggregated.
    #[must_use]
    pub fn to_json(&self) -> String {
        let option_number =
            |value: Option<u64>| value.map_or_else(|| "null".to_string(), |v| v.to_string());
        let mut out = String::from("{\n");
        let options = &self.options;
        let variants: Vec<String> = options.variants.iter().map(|v| format!("\"{v}\"")).collect();
        let sizes: Vec<String> = options.sizes.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  \"options\": {{\"dir\": {}, \"count\": {}, \"sizes\": [{}], \"modes\": [{}], \
             \"repeats\": {}}},",
            json_string(&options.dir.display().to_string()),
            options.count,
            sizes.join(", "),
            variants.join(", "),
            options.repeats
        );
        let glommio = self.glommio_io_memory.as_deref().map_or("null".to_string(), json_string);
        let _ = writeln!(out, "  \"glommio_io_memory\": {glommio},");
        out.push_str("  \"runs\": [\n");
        for (index, run) in self.runs.iter().enumerate() {
            let l = &run.latency;
            let _ = write!(
                out,
                "    {{\"mode\": \"{}\", \"size_bytes\": {}, \"repeat\": {}, \"appends\": {}, \
                 \"writes\": {}, \"bytes_written\": {}, \"elapsed_ns\": {}, \
                 \"appends_per_second\": {:.1}, \"latency_us\": {{\"p50\": {:.1}, \
                 \"p90\": {:.1}, \"p99\": {:.1}, \"p99.9\": {:.1}, \"max\": {:.1}}}, \
                 \"process_cpu_ns\": {}, \"machine_busy_ns\": {}, \"device\": {}}}",
                run.variant,
                run.size_bytes,
                run.repeat,
                run.appends,
                run.writes,
                run.bytes_written,
                run.elapsed_ns,
                run.appends_per_second(),
                l.p50_us,
                l.p90_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                option_number(run.process_cpu_ns),
                option_number(run.machine_busy_ns),
                run.device.map_or("null".to_string(), |d| format!(
                    "{{\"writes\": {}, \"bytes_written\": {}, \"flushes\": {}}}",
                    d.writes, d.bytes_written, d.flushes
                )),
            );
            out.push_str(if index + 1 < self.runs.len() { ",\n" } else { "\n" });
        }
        out.push_str("  ]\n}\n");
        out
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_are_aligned_and_exactly_as_long_as_asked() {
        for len in [4096, 8192, 65536, 16 * 65536] {
            let mut buffer = AlignedBuffer::new(len);
            assert_eq!(buffer.as_slice().len(), len);
            assert_eq!(buffer.as_slice().as_ptr() as usize % ALIGNMENT_BYTES, 0);
            assert!(buffer.as_slice().iter().all(|&byte| byte == 0));
            buffer.as_mut_slice()[len - 1] = 7;
            assert_eq!(buffer.as_slice()[len - 1], 7);
        }
    }

    #[test]
    fn appends_are_stamped_with_their_number() {
        let mut bytes = vec![0u8; 3 * 4096];
        fill_pattern(&mut bytes, 1);
        assert!(bytes.iter().any(|&byte| byte != 0));
        stamp_appends(&mut bytes, 4096, 10);
        for (index, append) in bytes.chunks(4096).enumerate() {
            assert_eq!(append[..8], (10 + index as u64).to_le_bytes());
        }
    }

    #[test]
    fn variants_parse_and_print_alike() {
        for variant in Variant::defaults() {
            assert_eq!(variant.to_string().parse::<Variant>(), Ok(variant));
        }
        let grouped: Variant = "uring-dsync+group16".parse().unwrap();
        assert_eq!(grouped, Variant { mode: Mode::UringDsync, group: 16 });
        assert!("uring-dsync+group0".parse::<Variant>().is_err());
        assert!("fast".parse::<Variant>().unwrap_err().contains("uring-linked"));
    }

    #[test]
    fn medians_and_numbers_are_formatted_for_the_tables() {
        assert_eq!(median_min_max(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(median_min_max(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(median_min_max(&[]), None);
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(999.6), "1,000");
        assert_eq!(format_number(123.0), "123");
        assert_eq!(format_number(12.34), "12.3");
        assert_eq!(spread(&[300.0, 100.0, 200.0]), "200 [100..300]");
        assert_eq!(spread(&[250.0]), "250");
        assert_eq!(spread(&[]), "-");
    }

    #[test]
    fn diskstats_lines_are_parsed_for_the_right_device() {
        let line = " 254       0 vda 129275 15238 24240522 109211 24203 56624 22609904 84389 0 \
                    23104 195548 13283 54 4768488 1820 3182 126";
        let counters = DeviceCounters::parse(line, 254, 0).unwrap();
        assert_eq!(
            counters,
            DeviceCounters { writes: 24203, bytes_written: 22_609_904 * 512, flushes: 3182 }
        );
        assert_eq!(DeviceCounters::parse(line, 254, 1), None);
        assert_eq!(DeviceCounters::parse(" 254 0 vda 1 2 3", 254, 0), None);
    }

    #[test]
    fn machine_busy_time_is_wall_time_less_idle() {
        let before = "cpu  100 0 50 1000 10 0 5 2 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\n\
                      cpu1 1 0 0 0 0 0 0 0 0 0\nintr 5\n";
        let after = "cpu  130 0 60 1150 20 0 6 2 0 0\ncpu0\ncpu1\n";
        let before = MachineIdle::parse(before).unwrap();
        assert_eq!(before, MachineIdle { ticks: 1012, cpus: 2 });
        let after = MachineIdle::parse(after).unwrap();
        // 2 CPUs for 1 s = 2 s of CPU time, of which 160 ticks (1.6 s) idle.
        assert_eq!(after.busy_since(before, 1_000_000_000), 400_000_000);
        assert_eq!(MachineIdle::parse("intr 5\n"), None);
    }

    #[test]
    fn latency_percentiles_come_out_in_microseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3).unwrap();
        for us in 1..=1000 {
            histogram.record(us * 1000).unwrap();
        }
        let latency = Latency::from_histogram(&histogram);
        assert!((latency.p50_us - 500.0).abs() < 1.0, "{latency:?}");
        assert!((latency.p99_us - 990.0).abs() < 1.0, "{latency:?}");
        assert!((latency.max_us - 1000.0).abs() < 1.0, "{latency:?}");
    }

    #[test]
    fn invalid_options_are_refused_before_any_io() {
        let options = Options {
            dir: PathBuf::from("/nonexistent"),
            count: 8,
            sizes: vec![1000],
            variants: vec![Variant { mode: Mode::SyncPwriteFdatasync, group: 1 }],
            repeats: 1,
        };
        assert!(run(&options).unwrap_err().to_string().contains("4096"));
        let options = Options { sizes: vec![4096], count: 4, ..options };
        let grouped = Variant { mode: Mode::UringLinked, group: 16 };
        let options = Options { variants: vec![grouped], ..options };
        assert!(run(&options).unwrap_err().to_string().contains("group size"));
        // /proc is on no block device: refused before any file is created.
        let options = Options { dir: PathBuf::from("/proc"), count: 16, ..options };
        assert!(run(&options).unwrap_err().to_string().contains("not a block device"));
    }

    /// Every mode, a few appends each, on a real file system: O_DIRECT needs one, so the
    /// scratch directory is under the crate's `target/` rather than a possibly-tmpfs /tmp.
    #[test]
    fn every_mode_runs_on_a_real_file_system() {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        fs::create_dir_all(&target).unwrap();
        let dir = tempfile::Builder::new().prefix("disk-modes-test").tempdir_in(&target).unwrap();
        let variants = vec![
            Variant { mode: Mode::UringLinked, group: 1 },
            Variant { mode: Mode::UringDsync, group: 1 },
            Variant { mode: Mode::UringWriteThenFdatasync, group: 1 },
            Variant { mode: Mode::GlommioDma, group: 1 },
            Variant { mode: Mode::GlommioDmaDsync, group: 1 },
            Variant { mode: Mode::SyncPwriteFdatasync, group: 1 },
            Variant { mode: Mode::UringLinked, group: 4 },
        ];
        let options = Options {
            dir: dir.path().to_path_buf(),
            count: 20,
            sizes: vec![4096, 8192],
            variants: variants.clone(),
            repeats: 1,
        };
        let mut seen = 0;
        let report = run_with(&options, |_| seen += 1).unwrap();
        assert_eq!(seen, report.runs.len());
        assert_eq!(report.runs.len(), variants.len() * 2);
        for run in &report.runs {
            assert_eq!(run.appends, 20, "{run:?}");
            assert_eq!(run.writes, 20 / run.variant.group);
            assert_eq!(run.bytes_written, 20 * run.size_bytes as u64);
            assert!(run.latency.p50_us > 0.0 && run.latency.max_us >= run.latency.p99_us);
            assert!(run.appends_per_second() > 0.0);
            // The payload reached the device during the timed part.
            let device = run.device.expect("the scratch directory is on a block device");
            assert!(device.bytes_written >= run.bytes_written, "{run:?}");
        }
        let tables = report.tables();
        assert!(tables.contains("### 8192-byte appends"));
        assert!(tables.contains("| uring-linked+group4 |"));
        assert!(report.to_json().contains("\"mode\": \"glommio-dma\""));
        // Every scratch file was removed after its run.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
