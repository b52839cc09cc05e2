//! The log on the real disk under saturation: records/s, fsyncs/s, batch sizes, bytes per
//! record, commit latency, and recovery speed (`klein-log-bench`).
//!
//! Each log runs on its own glommio executor with its own directory and `DmaDisk`, like the
//! per-core logs of a node (three logs stand for three replicas sharing this machine's one
//! disk). A closed loop keeps the writer's staging full: it appends until back-pressure, hands
//! every request to the disk and every completion back, and records for each record the time
//! from its append to the completion that reported it durable. Afterwards the log's segments
//! is opened again through the same disk, as at start-up, to time recovery from the device.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

use super::disk_dma::DmaDisk;
use super::memlock;
use crate::constants::{SUPERBLOCK_COPIES_COUNT, SUPERBLOCK_COPY_SIZE_BYTES};
use crate::log::disk::{Disk, FileId, OpId, Request};
use crate::log::format::RecordKind;
use crate::log::open::{Opened, Opener};
use crate::log::superblock::Superblock;
use crate::log::superblock_store::SuperblockStore;
use crate::log::writer::{Entry, Writer, WriterOptions};
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

/// Groups each log spreads its records over.
const GROUPS_PER_LOG: u64 = 8;

/// One configuration to measure.
#[derive(Clone, Debug)]
pub struct Options {
    /// Directory on the file system under test; one subdirectory per log is made in it.
    pub dir: PathBuf,
    /// Payload bytes per record.
    pub payload_bytes: usize,
    /// Logs writing at once (one executor each).
    pub logs: usize,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// The writer's sizes.
    pub writer: WriterOptions,
    /// Keep one record in flight at a time (commit latency of a lone write) instead of
    /// keeping staging full (throughput at saturation).
    pub one_at_a_time: bool,
}

/// What one log measured.
#[derive(Clone, Debug)]
pub struct LogReport {
    /// Records made durable during the measured time.
    pub records: u64,
    /// Flushes (write + sync) completed during the measured time.
    pub flushes: u64,
    /// Bytes written to segments during the measured time (padding included).
    pub bytes_written: u64,
    /// Commit latency (append to durable), microseconds: p50, p90, p99, p99.9, max.
    pub latency_us: [u64; 5],
    /// Records per flush: p50, p90, p99, max.
    pub batch_records: [u64; 4],
    /// Segment bytes read and recovered afterwards, and the seconds it took.
    pub recovery_bytes: u64,
    /// Seconds recovery took (reading through the disk plus the scan).
    pub recovery_seconds: f64,
}

/// Runs one configuration; one report per log.
///
/// # Errors
/// A message when an executor cannot start or a disk operation fails.
pub fn run(options: &Options) -> Result<Vec<LogReport>, String> {
    let plan = memlock::prepare(options.logs).map_err(|error| error.to_string())?;
    let mut handles = Vec::new();
    for index in 0..options.logs {
        let directory = options.dir.join(format!("log-{index}"));
        std::fs::create_dir_all(&directory).map_err(|error| error.to_string())?;
        let options = options.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("log-bench-{index}"))
            .io_memory(plan.io_memory_bytes)
            .spawn(move || async move { run_log(&options, &directory).await })
            .map_err(|error| error.to_string())?;
        handles.push(handle);
    }
    handles.into_iter().map(|handle| handle.join().map_err(|error| error.to_string())?).collect()
}

async fn run_log(options: &Options, directory: &Path) -> Result<LogReport, String> {
    let mut disk = DmaDisk::open(directory).await.map_err(|error| error.to_string())?;
    let mut writer = Writer::new(options.writer);
    let payload = vec![0x5a_u8; options.payload_bytes];
    let mut appended_at: VecDeque<Instant> = VecDeque::new();
    let mut latency = Histogram::<u64>::new(3).expect("valid precision");
    let mut batches = Histogram::<u64>::new(3).expect("valid precision");
    let mut completions = Vec::new();
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let measure_until = measure_from + options.duration;
    let mut slot = 0_u64;
    let (mut records, mut baseline) = (0_u64, None);
    loop {
        let now = Instant::now();
        if now >= measure_until {
            break;
        }
        if baseline.is_none() && now >= measure_from {
            baseline = Some(writer.stats);
        }
        while !options.one_at_a_time || appended_at.is_empty() {
            let entry = Entry {
                kind: RecordKind::Accepted,
                group: GroupId(u32::try_from(slot % GROUPS_PER_LOG).expect("small")),
                slot: Slot(slot / GROUPS_PER_LOG),
                ballot: Ballot { round: 1, node: 1 },
                payload: &payload,
            };
            if writer.append(&entry).is_err() {
                break;
            }
            appended_at.push_back(Instant::now());
            slot += 1;
        }
        for (op, request) in writer.pump() {
            disk.submit(op, request);
        }
        disk.completed().await;
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            let durable = writer.on_completion(&completion).map_err(|error| error.to_string())?;
            if durable.is_empty() {
                continue;
            }
            let done = Instant::now();
            let measured = baseline.is_some() && done < measure_until;
            if measured {
                batches.record(durable.len() as u64).expect("in range");
                records += durable.len() as u64;
            }
            for _ in &durable {
                let at = appended_at.pop_front().expect("appended before durable");
                if measured {
                    let micros = u64::try_from((done - at).as_micros()).unwrap_or(u64::MAX);
                    latency.record(micros.max(1)).expect("in range");
                }
            }
        }
    }
    let base = baseline.ok_or("the run ended before the warm-up did")?;
    let end = writer.stats;
    // Let the writer finish what is in flight, so recovery sees a settled log.
    while !writer.is_idle() || disk.in_flight_count() > 0 {
        for (op, request) in writer.pump() {
            disk.submit(op, request);
        }
        disk.completed().await;
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            writer.on_completion(&completion).map_err(|error| error.to_string())?;
        }
    }
    let (recovery_bytes, recovery_seconds) =
        time_recovery(&mut disk, options.writer, writer.stats.records_durable).await?;
    let percentile =
        |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile);
    Ok(LogReport {
        records,
        flushes: end.flushes - base.flushes,
        bytes_written: end.bytes_written - base.bytes_written,
        latency_us: [
            percentile(&latency, 0.5),
            percentile(&latency, 0.9),
            percentile(&latency, 0.99),
            percentile(&latency, 0.999),
            latency.max(),
        ],
        batch_records: [
            percentile(&batches, 0.5),
            percentile(&batches, 0.9),
            percentile(&batches, 0.99),
            batches.max(),
        ],
        recovery_bytes,
        recovery_seconds,
    })
}

/// Drives an opener over the disk until the log is open.
async fn drive_opener(disk: &mut DmaDisk, mut opener: Opener) -> Result<Opened, String> {
    let mut completions = Vec::new();
    loop {
        for (op, request) in opener.pump() {
            disk.submit(op, request);
        }
        if let Some(result) = opener.poll_ready() {
            return result.map_err(|error| error.to_string());
        }
        disk.completed().await;
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            if let Some(result) = opener.on_completion(&completion) {
                return result.map_err(|error| error.to_string());
            }
        }
    }
}

/// Opens the log as a node does at start-up (`log::open::Opener`: superblock, every segment
/// read in order with bounded read-ahead and recovered as it arrives, leftovers wiped) and
/// returns (segment bytes scanned, seconds). The bench writes segments without a superblock,
/// so one is formatted first, untimed. The run is only valid if recovery finds every one of
/// the `durable` records the writer reported.
async fn time_recovery(
    disk: &mut DmaDisk,
    options: WriterOptions,
    durable: u64,
) -> Result<(u64, f64), String> {
    let identity = Superblock::new(1, NodeId::new(1).expect("nonzero"), CoreIndex(0));
    // Create and format the superblock file, as the opener of a new log would.
    let size_bytes = (SUPERBLOCK_COPIES_COUNT * SUPERBLOCK_COPY_SIZE_BYTES) as u64;
    let mut setup = vec![
        (OpId(u64::MAX - 1), Request::Create { file: FileId::Superblock, size_bytes }),
        (OpId(u64::MAX), Request::SyncDirectory),
    ];
    let mut store = SuperblockStore::format(identity.clone());
    let mut completions = Vec::new();
    while store.durable().is_none() {
        for (op, request) in setup.drain(..) {
            disk.submit(op, request);
            while disk.in_flight_count() > 0 {
                disk.completed().await;
                disk.poll(&mut completions);
            }
        }
        for (op, request) in store.pump() {
            disk.submit(op, request);
        }
        disk.completed().await;
        disk.poll(&mut completions);
        for completion in completions.drain(..) {
            if SuperblockStore::owns(completion.op) {
                store.on_completion(&completion).map_err(|error| error.to_string())?;
            }
        }
    }
    let started = Instant::now();
    let opened = drive_opener(disk, Opener::new(options, identity, disk.list())).await?;
    let seconds = started.elapsed().as_secs_f64();
    if !opened.corruption.is_empty() {
        return Err(format!("recovery reported corruption: {:?}", opened.corruption));
    }
    let found = opened.log.index_len() as u64;
    if found != durable {
        return Err(format!("recovery found {found} records, the writer made {durable} durable"));
    }
    Ok((opened.bytes_scanned, seconds))
}
