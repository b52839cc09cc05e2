//! The simulated disk: a deterministic, fault-injecting [`Disk`] for tests and the simulator.
//!
//! It keeps what the media would keep apart from what the page cache shows. Each file's
//! *current* bytes are what reads return; its *durable* bytes are what survives a power loss.
//! A completed write changes the current bytes only; a `Sync` makes the writes that completed
//! before it was submitted durable; a directory change (create, remove, rename) is durable only
//! after `SyncDirectory`. [`SimDisk::crash`] then builds one possible post-crash disk: durable
//! bytes plus any subset of the unsynced writes, each lost, kept or torn at
//! [`DISK_TEAR_SIZE_BYTES`] granularity.
//!
//! Faults, each drawn from the seed: completion delay and reordering, write/sync/read errors,
//! latent sector errors (reads of a sector fail until it is rewritten), misdirected writes
//! (reported as done, landed at another sector of the same file), bit rot in durable data, and
//! a capacity that makes `Create` fail with `NoSpace`. With [`SimDiskOptions::default`] there
//! are no faults and completions arrive in submission order.
//!
//! Everything is a function of the seed and the calls made: no clock, no OS randomness.

use std::collections::{BTreeMap, VecDeque};

use super::disk::{
    Completion, DISK_SECTOR_SIZE_BYTES, DISK_TEAR_SIZE_BYTES, Disk, DiskError, FileId, OpId,
    Request, Response, check_extent,
};

/// Fault rates and shape of a [`SimDisk`]. Probabilities are per operation, in parts per
/// million, so a seed's behaviour does not depend on floating point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimDiskOptions {
    /// Largest number of `poll` calls a completion may be held back (0: next poll).
    pub completion_delay_polls_max: u32,
    /// A `Write` completes with `DiskError::Io`.
    pub write_error_ppm: u32,
    /// A `Sync` completes with `DiskError::Io`.
    pub sync_error_ppm: u32,
    /// A `Read` completes with `DiskError::Io` (transiently).
    pub read_error_ppm: u32,
    /// A `Write` lands at another sector-aligned offset of the same file but reports success.
    pub misdirect_ppm: u32,
    /// Total bytes the files may occupy; a `Create` beyond it fails with `NoSpace`.
    pub capacity_bytes: u64,
}

impl Default for SimDiskOptions {
    fn default() -> SimDiskOptions {
        SimDiskOptions {
            completion_delay_polls_max: 0,
            write_error_ppm: 0,
            sync_error_ppm: 0,
            read_error_ppm: 0,
            misdirect_ppm: 0,
            capacity_bytes: u64::MAX,
        }
    }
}

/// A small deterministic generator (SplitMix64): enough for fault decisions, no dependency.
#[derive(Clone, Debug)]
struct Prng(u64);

impl Prng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`).
    fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.next_u64() % bound
    }

    /// A value in `0..bound` (`bound > 0`).
    fn below_usize(&mut self, bound: usize) -> usize {
        usize::try_from(self.below(bound as u64)).expect("below a usize bound")
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(1_000_000) < u64::from(ppm)
    }
}

/// A write that completed but is not yet known to be durable.
#[derive(Clone, Debug)]
struct PendingWrite {
    /// Order of completion across the whole disk.
    sequence: u64,
    offset: usize,
    data: Vec<u8>,
}

/// Most cut points per write in [`SimDisk::crash_images`].
const CUT_POINTS_MAX: usize = 64;

/// A write that a crash may or may not have put on the media.
#[derive(Clone, Debug)]
struct Pending {
    inode: usize,
    offset: usize,
    data: Vec<u8>,
}

/// What a crash did to one pending write.
#[derive(Clone, Debug)]
enum Fate {
    Lost,
    Kept,
    /// Each piece of [`DISK_TEAR_SIZE_BYTES`] landed or not.
    Pieces(Vec<bool>),
    /// The first `pieces` landed; the next one is garbage if `garbage_after`.
    Prefix {
        pieces: usize,
        garbage_after: bool,
    },
}

/// One file's contents (an inode: renames move names, not contents).
#[derive(Clone, Debug)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<PendingWrite>,
    /// Sector indexes whose reads fail until the sector is rewritten.
    bad_sectors: Vec<usize>,
}

/// A submitted request waiting to complete.
#[derive(Clone, Debug)]
struct InFlight {
    op: OpId,
    request: Request,
    polls_left: u32,
    /// For a `Sync`: the completion sequence at submission; writes completed up to it are
    /// covered.
    covers_through: u64,
}

/// A deterministic in-memory disk with injectable faults. See the module documentation.
#[derive(Clone, Debug)]
pub struct SimDisk {
    options: SimDiskOptions,
    prng: Prng,
    inodes: Vec<Inode>,
    names: BTreeMap<FileId, usize>,
    durable_names: BTreeMap<FileId, usize>,
    in_flight: VecDeque<InFlight>,
    write_sequence: u64,
    /// Counters for tests and the simulator's report.
    pub stats: SimDiskStats,
}

/// What a [`SimDisk`] did, for reports and for checking that faults were exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    /// Writes completed successfully (including misdirected ones).
    pub writes: u64,
    /// Syncs completed successfully.
    pub syncs: u64,
    /// Reads completed successfully.
    pub reads: u64,
    /// Errors injected (write, sync, read, latent sector).
    pub errors_injected: u64,
    /// Writes misdirected.
    pub misdirected: u64,
}

impl SimDisk {
    /// An empty disk whose faults are drawn from `seed`.
    #[must_use]
    pub fn new(seed: u64, options: SimDiskOptions) -> SimDisk {
        SimDisk {
            options,
            prng: Prng(seed),
            inodes: Vec::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            in_flight: VecDeque::new(),
            write_sequence: 0,
            stats: SimDiskStats::default(),
        }
    }

    /// One possible disk after a power loss now: each write that is not durable yet (completed
    /// but unsynced, or still in flight) is lost, kept whole, or torn (an arbitrary subset of
    /// its [`DISK_TEAR_SIZE_BYTES`] pieces), applied in completion order; only durable
    /// directory entries remain. `seed` picks the outcome.
    #[must_use]
    pub fn crash(&self, seed: u64) -> SimDisk {
        let mut prng = Prng(seed);
        let pending = self.pending_writes();
        let fates: Vec<Fate> = pending
            .iter()
            .map(|write| match prng.below(3) {
                0 => Fate::Lost,
                1 => Fate::Kept,
                _ => {
                    let pieces = write.data.len() / DISK_TEAR_SIZE_BYTES;
                    Fate::Pieces((0..pieces).map(|_| prng.below(2) == 0).collect())
                }
            })
            .collect();
        self.image(&pending, &fates, seed)
    }

    /// Every post-crash disk worth checking at this moment (crash-point enumeration,
    /// `../shared/VERIFICATION.md` layer L4): all subsets of the writes not yet durable when
    /// there are at most `subsets_exhaustive_max` of them (else `subsets_random` random ones),
    /// plus, for each such write, torn variants in which the writes before it landed and the
    /// ones after it did not: a prefix of its pieces, and a prefix followed by one garbage
    /// piece, at every 512-byte cut point (at most 64, evenly spread, for large writes).
    #[must_use]
    pub fn crash_images(
        &self,
        subsets_exhaustive_max: usize,
        subsets_random: usize,
        seed: u64,
    ) -> Vec<SimDisk> {
        let pending = self.pending_writes();
        let mut images = Vec::new();
        if pending.len() <= subsets_exhaustive_max {
            for mask in 0..(1_u64 << pending.len()) {
                let fates: Vec<Fate> = (0..pending.len())
                    .map(|index| if mask >> index & 1 == 1 { Fate::Kept } else { Fate::Lost })
                    .collect();
                images.push(self.image(&pending, &fates, seed ^ mask));
            }
        } else {
            let mut prng = Prng(seed);
            for round in 0..subsets_random {
                let fates: Vec<Fate> = pending
                    .iter()
                    .map(|_| if prng.below(2) == 0 { Fate::Kept } else { Fate::Lost })
                    .collect();
                images.push(self.image(&pending, &fates, seed ^ round as u64));
            }
        }
        for (torn, write) in pending.iter().enumerate() {
            let pieces = write.data.len() / DISK_TEAR_SIZE_BYTES;
            let step = pieces.div_ceil(CUT_POINTS_MAX).max(1);
            for cut in (1..pieces).step_by(step) {
                for garbage in [false, true] {
                    let fates: Vec<Fate> = (0..pending.len())
                        .map(|index| match index.cmp(&torn) {
                            std::cmp::Ordering::Less => Fate::Kept,
                            std::cmp::Ordering::Greater => Fate::Lost,
                            std::cmp::Ordering::Equal => {
                                Fate::Prefix { pieces: cut, garbage_after: garbage }
                            }
                        })
                        .collect();
                    images.push(self.image(&pending, &fates, seed ^ (torn * 64 + cut) as u64));
                }
            }
        }
        images
    }

    /// The writes that a crash now may or may not have put on the media, in the order they
    /// would reach it: completed-but-unsynced writes, then writes still in flight. Only writes
    /// to files that survive the crash (durable names) count.
    fn pending_writes(&self) -> Vec<Pending> {
        let mut pending: Vec<(u64, Pending)> = Vec::new();
        for (file, inode) in &self.durable_names {
            let _ = file;
            for write in &self.inodes[*inode].unsynced {
                pending.push((
                    write.sequence,
                    Pending { inode: *inode, offset: write.offset, data: write.data.clone() },
                ));
            }
        }
        pending.sort_by_key(|(sequence, _)| *sequence);
        let mut pending: Vec<Pending> = pending.into_iter().map(|(_, write)| write).collect();
        for flight in &self.in_flight {
            if let Request::Write { file, offset, data } = &flight.request
                && let Some(inode) = self.durable_names.get(file)
                && let Ok(offset) = usize::try_from(*offset)
                && offset + data.len() <= self.inodes[*inode].current.len()
            {
                pending.push(Pending { inode: *inode, offset, data: data.clone() });
            }
        }
        pending
    }

    /// The disk after a crash in which each of `pending` met its fate.
    fn image(&self, pending: &[Pending], fates: &[Fate], seed: u64) -> SimDisk {
        assert_eq!(pending.len(), fates.len());
        let mut images: Vec<Vec<u8>> =
            self.inodes.iter().map(|inode| inode.durable.clone()).collect();
        for (write, fate) in pending.iter().zip(fates) {
            let image = &mut images[write.inode];
            let pieces = write.data.chunks(DISK_TEAR_SIZE_BYTES).enumerate();
            for (index, piece) in pieces {
                let offset = write.offset + index * DISK_TEAR_SIZE_BYTES;
                match fate {
                    Fate::Lost => {}
                    Fate::Kept => apply(image, offset, piece),
                    Fate::Pieces(kept) => {
                        if kept[index] {
                            apply(image, offset, piece);
                        }
                    }
                    Fate::Prefix { pieces, garbage_after } => {
                        if index < *pieces {
                            apply(image, offset, piece);
                        } else if index == *pieces && *garbage_after {
                            let garbage: Vec<u8> = piece.iter().map(|byte| byte ^ 0xA5).collect();
                            apply(image, offset, &garbage);
                        }
                    }
                }
            }
        }
        let inodes = self
            .inodes
            .iter()
            .zip(images)
            .map(|(inode, image)| Inode {
                current: image.clone(),
                durable: image,
                unsynced: Vec::new(),
                bad_sectors: inode.bad_sectors.clone(),
            })
            .collect();
        SimDisk {
            options: self.options.clone(),
            prng: Prng(self.prng.0 ^ seed.rotate_left(17)),
            inodes,
            names: self.durable_names.clone(),
            durable_names: self.durable_names.clone(),
            in_flight: VecDeque::new(),
            write_sequence: self.write_sequence,
            stats: self.stats.clone(),
        }
    }

    /// Flips one bit of `file`'s durable (and current) bytes: bit rot in synced data.
    ///
    /// # Panics
    /// If the file does not exist or `byte_offset` is outside it (a test bug).
    pub fn flip_bit(&mut self, file: FileId, byte_offset: usize, bit: u8) {
        let inode = &mut self.inodes[self.names[&file]];
        inode.durable[byte_offset] ^= 1 << (bit % 8);
        inode.current[byte_offset] ^= 1 << (bit % 8);
    }

    /// Makes reads of the sector holding `byte_offset` fail until it is rewritten.
    ///
    /// # Panics
    /// If the file does not exist (a test bug).
    pub fn add_latent_sector_error(&mut self, file: FileId, byte_offset: usize) {
        let sector = byte_offset / DISK_SECTOR_SIZE_BYTES;
        let inode = &mut self.inodes[self.names[&file]];
        if !inode.bad_sectors.contains(&sector) {
            inode.bad_sectors.push(sector);
        }
    }

    /// The current bytes of `file` (what a read would return), for test assertions.
    #[must_use]
    pub fn contents(&self, file: FileId) -> Option<&[u8]> {
        self.names.get(&file).map(|inode| self.inodes[*inode].current.as_slice())
    }

    /// Every segment's current bytes, by segment number: what recovery would read.
    #[must_use]
    pub fn segment_images(&self) -> Vec<(u64, Vec<u8>)> {
        self.names
            .iter()
            .filter_map(|(file, inode)| match file {
                FileId::Segment(number) => Some((*number, self.inodes[*inode].current.clone())),
                _ => None,
            })
            .collect()
    }

    /// Requests submitted but not completed yet.
    #[must_use]
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    fn used_bytes(&self) -> u64 {
        let live: std::collections::BTreeSet<usize> =
            self.names.values().chain(self.durable_names.values()).copied().collect();
        live.iter().map(|inode| self.inodes[*inode].current.len() as u64).sum()
    }

    fn execute(&mut self, flight: &InFlight) -> Result<Response, DiskError> {
        match &flight.request {
            Request::Create { file, size_bytes } => self.create(*file, *size_bytes),
            Request::Write { file, offset, data } => self.write(*file, *offset, data),
            Request::Read { file, offset, length } => self.read(*file, *offset, *length),
            Request::Sync { file } => self.sync(*file, flight.covers_through),
            Request::Resize { file, size_bytes } => self.resize(*file, *size_bytes),
            Request::Remove { file } => {
                self.names.remove(file).ok_or(DiskError::NotFound(*file))?;
                Ok(Response::Removed)
            }
            Request::Rename { from, to } => {
                let inode = self.names.remove(from).ok_or(DiskError::NotFound(*from))?;
                self.names.insert(*to, inode);
                Ok(Response::Renamed)
            }
            Request::SyncDirectory => {
                self.durable_names = self.names.clone();
                Ok(Response::DirectorySynced)
            }
        }
    }

    fn inode_of(&self, file: FileId) -> Result<usize, DiskError> {
        self.names.get(&file).copied().ok_or(DiskError::NotFound(file))
    }

    fn create(&mut self, file: FileId, size_bytes: u64) -> Result<Response, DiskError> {
        if self.names.contains_key(&file) {
            return Err(DiskError::AlreadyExists(file));
        }
        let size = usize::try_from(size_bytes)
            .ok()
            .filter(|size| size.is_multiple_of(DISK_SECTOR_SIZE_BYTES))
            .ok_or_else(|| DiskError::Invalid(format!("{file}: size {size_bytes}")))?;
        if self.used_bytes().saturating_add(size_bytes) > self.options.capacity_bytes {
            return Err(DiskError::NoSpace);
        }
        self.inodes.push(Inode {
            current: vec![0; size],
            durable: vec![0; size],
            unsynced: Vec::new(),
            bad_sectors: Vec::new(),
        });
        self.names.insert(file, self.inodes.len() - 1);
        Ok(Response::Created)
    }

    fn resize(&mut self, file: FileId, size_bytes: u64) -> Result<Response, DiskError> {
        let inode = self.inode_of(file)?;
        let size = usize::try_from(size_bytes)
            .ok()
            .filter(|size| size.is_multiple_of(DISK_SECTOR_SIZE_BYTES))
            .filter(|size| *size >= self.inodes[inode].current.len())
            .ok_or_else(|| DiskError::Invalid(format!("{file}: resize to {size_bytes}")))?;
        let growth = (size - self.inodes[inode].current.len()) as u64;
        if self.used_bytes().saturating_add(growth) > self.options.capacity_bytes {
            return Err(DiskError::NoSpace);
        }
        self.inodes[inode].current.resize(size, 0);
        Ok(Response::Resized)
    }

    fn write(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<Response, DiskError> {
        let inode = self.inode_of(file)?;
        let size = self.inodes[inode].current.len();
        check_extent(file, offset, data.len(), size as u64)?;
        if self.prng.chance(self.options.write_error_ppm) {
            self.stats.errors_injected += 1;
            return Err(DiskError::Io(format!("injected write error on {file}")));
        }
        let mut offset = usize::try_from(offset).expect("checked against the size");
        if self.prng.chance(self.options.misdirect_ppm) {
            let sectors = (size - data.len()) / DISK_SECTOR_SIZE_BYTES + 1;
            offset = self.prng.below_usize(sectors) * DISK_SECTOR_SIZE_BYTES;
            self.stats.misdirected += 1;
        }
        self.write_sequence += 1;
        let inode = &mut self.inodes[inode];
        apply(&mut inode.current, offset, data);
        let first = offset / DISK_SECTOR_SIZE_BYTES;
        let last = first + data.len() / DISK_SECTOR_SIZE_BYTES;
        inode.bad_sectors.retain(|sector| !(first..last).contains(sector));
        inode.unsynced.push(PendingWrite {
            sequence: self.write_sequence,
            offset,
            data: data.to_vec(),
        });
        self.stats.writes += 1;
        Ok(Response::Written)
    }

    fn read(&mut self, file: FileId, offset: u64, length: usize) -> Result<Response, DiskError> {
        let inode = &self.inodes[self.inode_of(file)?];
        check_extent(file, offset, length, inode.current.len() as u64)?;
        let start = usize::try_from(offset).expect("checked against the size");
        let first = start / DISK_SECTOR_SIZE_BYTES;
        let last = first + length / DISK_SECTOR_SIZE_BYTES;
        if inode.bad_sectors.iter().any(|sector| (first..last).contains(sector)) {
            self.stats.errors_injected += 1;
            return Err(DiskError::Io(format!("latent sector error in {file}")));
        }
        let bytes = inode.current[start..start + length].to_vec();
        if self.prng.chance(self.options.read_error_ppm) {
            self.stats.errors_injected += 1;
            return Err(DiskError::Io(format!("injected read error on {file}")));
        }
        self.stats.reads += 1;
        Ok(Response::Read(bytes))
    }

    fn sync(&mut self, file: FileId, covers_through: u64) -> Result<Response, DiskError> {
        let inode = self.inode_of(file)?;
        if self.prng.chance(self.options.sync_error_ppm) {
            self.stats.errors_injected += 1;
            return Err(DiskError::Io(format!("injected sync error on {file}")));
        }
        let inode = &mut self.inodes[inode];
        // fdatasync also makes the file's size durable.
        let size = inode.current.len();
        inode.durable.resize(size, 0);
        let (covered, later): (Vec<_>, Vec<_>) =
            inode.unsynced.drain(..).partition(|write| write.sequence <= covers_through);
        for write in covered {
            apply(&mut inode.durable, write.offset, &write.data);
        }
        inode.unsynced = later;
        self.stats.syncs += 1;
        Ok(Response::Synced)
    }
}

/// Puts `data` at `offset`; a write past the end of a durable image belongs to a file grown
/// by an unsynced `Resize`, whose new size a crash may have kept: the image grows.
fn apply(image: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if image.len() < offset + data.len() {
        image.resize(offset + data.len(), 0);
    }
    image[offset..offset + data.len()].copy_from_slice(data);
}

impl Disk for SimDisk {
    fn submit(&mut self, op: OpId, request: Request) {
        let delay = self.options.completion_delay_polls_max;
        let polls_left = if delay == 0 {
            0
        } else {
            u32::try_from(self.prng.below(u64::from(delay) + 1)).unwrap_or(0)
        };
        self.in_flight.push_back(InFlight {
            op,
            request,
            polls_left,
            covers_through: self.write_sequence,
        });
    }

    fn poll(&mut self, completions: &mut Vec<Completion>) {
        let mut waiting = VecDeque::with_capacity(self.in_flight.len());
        while let Some(mut flight) = self.in_flight.pop_front() {
            if flight.polls_left > 0 {
                flight.polls_left -= 1;
                waiting.push_back(flight);
                continue;
            }
            let result = self.execute(&flight);
            completions.push(Completion { op: flight.op, result });
        }
        self.in_flight = waiting;
    }

    fn list(&self) -> Vec<(FileId, u64)> {
        self.names
            .iter()
            .map(|(file, inode)| (*file, self.inodes[*inode].current.len() as u64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEGMENT: FileId = FileId::Segment(1);

    fn run(disk: &mut SimDisk, request: Request) -> Result<Response, DiskError> {
        disk.submit(OpId(0), request);
        let mut completions = Vec::new();
        for _ in 0..100 {
            disk.poll(&mut completions);
            if let Some(completion) = completions.pop() {
                return completion.result;
            }
        }
        panic!("request never completed");
    }

    fn sector(byte: u8) -> Vec<u8> {
        vec![byte; DISK_SECTOR_SIZE_BYTES]
    }

    fn created(options: SimDiskOptions) -> SimDisk {
        let mut disk = SimDisk::new(7, options);
        let size_bytes = 4 * DISK_SECTOR_SIZE_BYTES as u64;
        assert_eq!(
            run(&mut disk, Request::Create { file: SEGMENT, size_bytes }),
            Ok(Response::Created)
        );
        assert_eq!(run(&mut disk, Request::SyncDirectory), Ok(Response::DirectorySynced));
        disk
    }

    fn write(disk: &mut SimDisk, offset: u64, byte: u8) {
        let request = Request::Write { file: SEGMENT, offset, data: sector(byte) };
        assert_eq!(run(disk, request), Ok(Response::Written));
    }

    #[test]
    fn the_simulated_disk_meets_the_seam_contract() {
        use crate::log::disk::conformance::suite;
        let mut disk = SimDisk::new(1, SimDiskOptions::default());
        futures_lite::future::block_on(suite(&mut disk, || async {}));
        let delayed = SimDiskOptions { completion_delay_polls_max: 3, ..SimDiskOptions::default() };
        let mut disk = SimDisk::new(2, delayed);
        futures_lite::future::block_on(suite(&mut disk, || async {}));
    }

    #[test]
    fn synced_writes_survive_every_crash() {
        let mut disk = created(SimDiskOptions::default());
        write(&mut disk, 0, 1);
        assert_eq!(run(&mut disk, Request::Sync { file: SEGMENT }), Ok(Response::Synced));
        for seed in 0..64 {
            let after = disk.crash(seed);
            assert_eq!(&after.contents(SEGMENT).unwrap()[..DISK_SECTOR_SIZE_BYTES], &sector(1)[..]);
        }
    }

    #[test]
    fn unsynced_writes_may_be_lost_kept_or_torn() {
        let mut disk = created(SimDiskOptions::default());
        write(&mut disk, 0, 9);
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let after = disk.crash(seed);
            let bytes = &after.contents(SEGMENT).unwrap()[..DISK_SECTOR_SIZE_BYTES];
            let pieces: Vec<bool> = bytes.chunks(DISK_TEAR_SIZE_BYTES).map(|p| p[0] == 9).collect();
            for piece in bytes.chunks(DISK_TEAR_SIZE_BYTES) {
                assert!(piece.iter().all(|b| *b == piece[0]), "a tear splits only at 512 B");
            }
            outcomes.insert(pieces);
        }
        assert!(outcomes.contains(&vec![false; 8]), "lost");
        assert!(outcomes.contains(&vec![true; 8]), "kept");
        assert!(outcomes.len() > 3, "torn variants: {}", outcomes.len());
    }

    #[test]
    fn a_sync_covers_only_writes_completed_before_it_was_submitted() {
        let options = SimDiskOptions::default();
        let mut disk = created(options);
        // Submit the write and the sync together: the write has not completed when the
        // sync is submitted, so the sync does not cover it.
        disk.submit(OpId(1), Request::Write { file: SEGMENT, offset: 0, data: sector(5) });
        disk.submit(OpId(2), Request::Sync { file: SEGMENT });
        let mut completions = Vec::new();
        disk.poll(&mut completions);
        assert_eq!(completions.len(), 2);
        let lost = (0..64).any(|seed| disk.crash(seed).contents(SEGMENT).unwrap()[0] == 0);
        assert!(lost, "an uncovered write must be losable");
    }

    #[test]
    fn directory_changes_need_a_directory_sync() {
        let mut disk = created(SimDiskOptions::default());
        let staging = FileId::SnapshotStaging { group: crate::types::GroupId(1), number: 1 };
        let installed = FileId::Snapshot { group: crate::types::GroupId(1), number: 1 };
        let size_bytes = DISK_SECTOR_SIZE_BYTES as u64;
        assert!(run(&mut disk, Request::Create { file: staging, size_bytes }).is_ok());
        assert!(disk.crash(1).contents(staging).is_none(), "create not yet durable");
        assert!(run(&mut disk, Request::Rename { from: staging, to: installed }).is_ok());
        assert!(run(&mut disk, Request::SyncDirectory).is_ok());
        let after = disk.crash(1);
        assert!(after.contents(installed).is_some());
        assert!(after.contents(staging).is_none());
    }

    #[test]
    fn latent_sector_errors_fail_reads_until_rewritten() {
        let mut disk = created(SimDiskOptions::default());
        disk.add_latent_sector_error(SEGMENT, 100);
        let read = Request::Read { file: SEGMENT, offset: 0, length: DISK_SECTOR_SIZE_BYTES };
        assert!(matches!(run(&mut disk, read.clone()), Err(DiskError::Io(_))));
        write(&mut disk, 0, 3);
        assert_eq!(run(&mut disk, read), Ok(Response::Read(sector(3))));
    }

    #[test]
    fn bit_rot_changes_durable_bytes() {
        let mut disk = created(SimDiskOptions::default());
        disk.flip_bit(SEGMENT, 10, 2);
        assert_eq!(disk.crash(0).contents(SEGMENT).unwrap()[10], 4);
    }

    #[test]
    fn capacity_makes_create_fail_with_no_space() {
        let options = SimDiskOptions { capacity_bytes: 6 * 4096, ..SimDiskOptions::default() };
        let mut disk = created(options);
        let size_bytes = 4 * DISK_SECTOR_SIZE_BYTES as u64;
        let request = Request::Create { file: FileId::Segment(2), size_bytes };
        assert_eq!(run(&mut disk, request), Err(DiskError::NoSpace));
    }

    #[test]
    fn injected_faults_and_delays_are_deterministic_per_seed() {
        let options = SimDiskOptions {
            completion_delay_polls_max: 3,
            write_error_ppm: 200_000,
            misdirect_ppm: 200_000,
            ..SimDiskOptions::default()
        };
        let trace = |seed| {
            let mut disk = SimDisk::new(seed, options.clone());
            let size_bytes = 16 * DISK_SECTOR_SIZE_BYTES as u64;
            disk.submit(OpId(0), Request::Create { file: SEGMENT, size_bytes });
            let mut completions = Vec::new();
            disk.poll(&mut completions);
            for op in 1..50 {
                let offset = (op % 16) * DISK_SECTOR_SIZE_BYTES as u64;
                let data = sector(u8::try_from(op).unwrap());
                disk.submit(OpId(op), Request::Write { file: SEGMENT, offset, data });
                disk.poll(&mut completions);
            }
            while disk.in_flight_count() > 0 {
                disk.poll(&mut completions);
            }
            (completions, disk.stats.clone())
        };
        let (first, stats) = trace(42);
        assert_eq!(first, trace(42).0);
        assert_ne!(first, trace(43).0);
        assert!(stats.errors_injected > 0 && stats.misdirected > 0, "{stats:?}");
        let order: Vec<u64> = first.iter().map(|c| c.op.0).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_ne!(order, sorted, "delays reorder completions");
    }
}
