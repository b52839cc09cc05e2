//! The acceptor-metadata superblock of one core: every Paxos group's promised ballot,
//! membership, truncation point and snapshot slot, in one checksummed, sequence-numbered,
//! four-copy file.
//!
//! Why it exists: an acceptor that forgets a promise after a restart can accept a value it
//! promised to ignore, which breaks Paxos safety (Paxos Made Simple, section 2.3: "an acceptor
//! must remember this information even if it fails and then restarts"). So this metadata is
//! fsynced before any Promise or Accepted reply that depends on it, and recovery must find the
//! newest durable version or refuse to start; it must never silently roll back
//! (`../shared/VERIFICATION.md`, 4.4).
//!
//! This module is pure: encoding, decoding, choosing the newest valid copy, and the write plan.
//! It does no I/O; the log's writer submits the writes and syncs through the `disk` seam.
//!
//! # File layout
//!
//! The superblock file holds [`SUPERBLOCK_COPIES_COUNT`] (4) copy areas of
//! [`SUPERBLOCK_COPY_SIZE_BYTES`] (64 KiB) each; copy `i` starts at byte
//! `i * SUPERBLOCK_COPY_SIZE_BYTES`. Copies 0 and 1 form pair 0, copies 2 and 3 pair 1.
//!
//! ```text
//!   0        64 KiB     128 KiB    192 KiB    256 KiB
//!   +----------+----------+----------+----------+
//!   |  copy 0  |  copy 1  |  copy 2  |  copy 3  |
//!   +----------+----------+----------+----------+
//!   |<--- pair 0: even -->|<--- pair 1: odd --->|   sequence parity
//! ```
//!
//! One copy area, all integers little-endian:
//!
//! ```text
//!   offset size  field
//!   ------ ----  ---------------------------------------------------------------------
//!   header (32 bytes)
//!      0     8   magic                 b"KLEIN-SB"
//!      8     2   format_version        1
//!     10     1   copy_index            0..=3, the area this copy was written for
//!     11     1   flags                 0 (reserved; a nonzero value is a newer format)
//!     12     4   body_size_bytes       <= SUPERBLOCK_COPY_SIZE_BYTES - 32
//!     16     8   sequence              +1 on every write; 0 is the format version
//!     24     4   body_checksum         CRC32C of the body bytes
//!     28     4   header_checksum       CRC32C of header bytes 0..28
//!   body (body_size_bytes)
//!     32     8   cluster_id
//!     40     8   node_id               >= 1
//!     48     2   core
//!     50     2   reserved              0
//!     52     4   groups_count          <= SUPERBLOCK_GROUPS_COUNT_MAX
//!     56     ..  groups_count group entries, strictly ascending by group id
//!   rest of the area: ignored (zero when written by `encode_copy`)
//!
//!   group entry (48 + 8 * (m + l) bytes)
//!      0     4   group                 GroupId
//!      4     1   members_count m       <= SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX
//!      5     1   learners_count l      <= SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX
//!      6     1   flags                 bit 0: has a snapshot; other bits 0
//!      7     1   reserved              0
//!      8     8   promised.round        } Ballot::ZERO, or a real ballot
//!     16     8   promised.node         } (round >= 1 and node >= 1)
//!     24     8   membership_epoch
//!     32     8   truncated_before      first slot still in the log
//!     40     8   snapshot_slot         last slot in the snapshot; 0 when flags bit 0 is 0
//!     48    8*m  members (voters)      node ids, strictly ascending, >= 1
//!   48+8m   8*l  learners              node ids, strictly ascending, >= 1, not members
//! ```
//!
//! Two checksums, not one: the header checksum lets a reader trust `body_size_bytes`,
//! `copy_index` and `sequence` before it touches the body, so a corrupt length never drives a
//! read or an allocation, and a misdirected or wrong-version copy is refused cheaply. The body
//! checksum is itself inside the checksummed header, which binds the body to its header. This
//! is the same split as the log's record format (`../shared/STYLE.md` 9.4). The copy index and
//! the sequence are both inside the checksummed header, so a copy that landed in the wrong
//! area (a misdirected write) or in the wrong pair is detected.
//!
//! # Write protocol
//!
//! 1. **Format.** A new core's superblock file is created zero-filled and synced with its
//!    directory. Then [`Superblock::new`] (sequence 0: the identity, no groups) is encoded into
//!    copies 0 and 1 ([`WritePlan::format`]) and the file is fdatasynced. A sequence-0 copy
//!    fits in one 512-byte sector (a compile-time check), which the media writes atomically,
//!    so a crash while formatting leaves each of copies 0 and 1 either zero or valid: recovery
//!    then finds [`Chosen::Fresh`] (format again) or sequence 0.
//! 2. **Update.** With `durable` the last synced version, the writer builds `next` from
//!    [`Superblock::next`] (sequence + 1), changes its groups, and calls
//!    [`WritePlan::successor`], which asserts that the sequence grows by exactly 1, that the
//!    identity is unchanged and that no group's promised ballot, membership epoch, truncation
//!    point or snapshot slot goes backwards. It encodes `next` into both copies of the pair
//!    [`copies_for_sequence`]`(s)` = `{2 * (s % 2), 2 * (s % 2) + 1}`, writes them (the plan's
//!    `write_size_bytes` of each, or the whole 128 KiB pair at once with [`encode_pair`]), and
//!    fdatasyncs. Only then is `next` durable: no Promise or Accepted reply that depends on it
//!    leaves before.
//! 3. **One write in flight.** Version s + 1 is not submitted until version s is synced,
//!    because it goes to the pair that holds s - 1; changes arriving meanwhile wait and ride
//!    the next write together (group commit). A failed write or fdatasync is fatal and never
//!    retried.
//! 4. **Recovery rewrite.** After a restart, the first superblock write is
//!    [`Recovered::rewrite`]: the chosen content under a new sequence, to the pair that does
//!    not hold the chosen copy, fdatasynced before the core serves any Prepare or Accept. It
//!    restores two fresh copies of a version that a crash may have left in one, and it moves
//!    past every sequence an interrupted write may have used: its sequence is above every
//!    sequence found in an intact header, valid copy or not. Reusing such a sequence is
//!    unsafe: an interrupted write of version s can leave an intact header over a torn body,
//!    and a later write of a different version s to the same copy can supply the missing
//!    sectors with equal bytes, bringing the old s back to life next to the new one (found
//!    by this module's crash enumeration). After the rewrite, updates go on with +1.
//!
//! Why alternate pairs: writing version s touches only the pair holding s - 2 or older (or
//! torn leftovers); the pair holding the newest durable version is untouched. So a crash at
//! any point leaves that version intact and the one being written in zero, one or two valid
//! copies. The second copy of each pair protects the newest version against one latent sector
//! error or misdirected write.
//!
//! # Recovery rules ([`choose`])
//!
//! 0. The caller fdatasyncs the file before trusting what it reads: after a process crash the
//!    device cache (or page cache) may still hold an unsynced version, which a power loss
//!    could take back after we acted on it.
//! 1. Each of the four areas is decoded independently; any byte string is accepted as input
//!    and never panics. Invalid copies are discarded and reported with the reason
//!    ([`CopyStatus`]) for logging.
//! 2. (a) All four areas zero (or empty): [`Chosen::Fresh`], distinct from corruption. The
//!    caller may format only if the core's log directory has no segments or snapshots; a
//!    fresh superblock next to an existing log is a lost superblock, and the node must rejoin
//!    as a new member (VERIFICATION 4.4).
//! 3. (d) No valid copy but some nonzero area: [`RecoveryError::NoValidCopy`], never fresh.
//! 4. A copy whose header checksum passes but whose format version or flags are unknown is
//!    from a newer Klein: [`RecoveryError::UnsupportedFormat`], because ignoring it could roll
//!    back to an older version this binary understands.
//! 5. (e) Valid copies that name different clusters, nodes or cores:
//!    [`RecoveryError::IdentityMismatch`]. The caller also compares the identity with its
//!    configuration.
//! 6. (b) Two valid copies with the same sequence but different contents:
//!    [`RecoveryError::Disagreement`], never a silent pick. The recovery rewrite makes this
//!    impossible after crashes alone.
//! 7. (c) Otherwise the valid copy with the highest sequence is chosen ([`Chosen::Found`]),
//!    with the sequence of its recovery rewrite. The chosen version is the newest durable
//!    one or a version whose write was interrupted (never acknowledged, and a legal successor
//!    of the newest durable one, so no promise goes backwards).
//!
//! Any error is fatal to the core's replicas: they cast no votes and no promises until an
//! operator or a repair from a quorum intervenes. Recovery never formats over an error.
//!
//! # Assumptions about the media
//!
//! Writes tear at 512-byte sector granularity (a sector is written whole or not at all);
//! unsynced writes may be lost, kept or torn in any combination; fdatasync makes completed
//! writes durable. Detected: torn writes, lost writes, bit rot (CRC32C), misdirected writes
//! (copy index), stale copies (sequence). Survived: any crash, and the loss of any one copy of
//! the newest version. Not survived: both copies of the newest durable version corrupted
//! after it was synced, which rolls back to the version before (the log layer can cross-check:
//! no accepted ballot in the log may exceed a group's promised ballot).

#![deny(clippy::unwrap_used)]
#![deny(clippy::indexing_slicing)]

use crate::constants::{
    SUPERBLOCK_COPIES_COUNT, SUPERBLOCK_COPY_SIZE_BYTES, SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX,
    SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX, SUPERBLOCK_GROUPS_COUNT_MAX,
};
use crate::log::disk::{DISK_SECTOR_SIZE_BYTES, DISK_TEAR_SIZE_BYTES};
use crate::types::{Ballot, CoreIndex, GroupId, NodeId, Slot};

/// The first eight bytes of every superblock copy.
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"KLEIN-SB";

/// The format version this code writes and the only one it reads.
pub const SUPERBLOCK_FORMAT_VERSION: u16 = 1;

/// Size of a copy's header, in bytes.
pub const SUPERBLOCK_HEADER_SIZE_BYTES: usize = 32;

/// Size of the body's fixed part (identity and group count), in bytes.
const BODY_FIXED_SIZE_BYTES: usize = 24;

/// Size of a group entry's fixed part, in bytes.
const GROUP_FIXED_SIZE_BYTES: usize = 48;

/// Size of one node id in a member or learner list, in bytes.
const NODE_ID_SIZE_BYTES: usize = 8;

/// Offset of the sequence in the header.
const HEADER_SEQUENCE_OFFSET: usize = 16;

/// Offset of the header checksum: it covers every header byte before it.
const HEADER_CHECKSUM_OFFSET: usize = 28;

/// Group entry flag: `snapshot_slot` holds a slot.
const GROUP_FLAG_HAS_SNAPSHOT: u8 = 1;

/// The largest body the limits allow, in bytes.
pub const SUPERBLOCK_BODY_SIZE_BYTES_MAX: usize = BODY_FIXED_SIZE_BYTES
    + SUPERBLOCK_GROUPS_COUNT_MAX
        * (GROUP_FIXED_SIZE_BYTES
            + NODE_ID_SIZE_BYTES
                * (SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX + SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX));

// The worst case within the limits fits one copy area, so `EncodeError` only ever reports a
// limit, never a size surprise.
const _: () = assert!(
    SUPERBLOCK_HEADER_SIZE_BYTES + SUPERBLOCK_BODY_SIZE_BYTES_MAX <= SUPERBLOCK_COPY_SIZE_BYTES
);
// The format version (sequence 0, no groups) fits one atomically written sector.
const _: () = assert!(SUPERBLOCK_HEADER_SIZE_BYTES + BODY_FIXED_SIZE_BYTES <= DISK_TEAR_SIZE_BYTES);
const _: () = assert!(HEADER_CHECKSUM_OFFSET + 4 == SUPERBLOCK_HEADER_SIZE_BYTES);
const _: () = assert!(HEADER_SEQUENCE_OFFSET + 8 <= HEADER_CHECKSUM_OFFSET);
const _: () = assert!(SUPERBLOCK_COPY_SIZE_BYTES.is_multiple_of(DISK_SECTOR_SIZE_BYTES));
// Two pairs, alternated by sequence parity.
const _: () = assert!(SUPERBLOCK_COPIES_COUNT == 4);
// The counts are stored in one byte (members, learners) and four bytes (groups).
const _: () = assert!(SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX <= u8::MAX as usize);
const _: () = assert!(SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX <= u8::MAX as usize);
const _: () = assert!(SUPERBLOCK_GROUPS_COUNT_MAX <= u32::MAX as usize);
const _: () = assert!(SUPERBLOCK_COPY_SIZE_BYTES <= u32::MAX as usize);

/// One core's acceptor metadata: what it has promised, for every group it hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Version number: 0 when formatted, one more on every update; the recovery rewrite
    /// after a restart skips ahead ([`Recovered::rewrite`]).
    pub sequence: u64,
    /// The cluster this core belongs to.
    pub cluster_id: u64,
    /// The node this core belongs to.
    pub node_id: NodeId,
    /// The core within the node.
    pub core: CoreIndex,
    /// Every group hosted on the core, strictly ascending by [`GroupMeta::group`].
    pub groups: Vec<GroupMeta>,
}

/// One group's acceptor metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMeta {
    /// The group.
    pub group: GroupId,
    /// The highest ballot this acceptor promised for the group, or [`Ballot::ZERO`].
    pub promised: Ballot,
    /// Version of `members` and `learners`; never decreases.
    pub membership_epoch: u64,
    /// Voters, strictly ascending.
    pub members: Vec<NodeId>,
    /// Non-voting members, strictly ascending, none of them a voter.
    pub learners: Vec<NodeId>,
    /// The first slot still in the log; every slot below it is covered by the snapshot.
    pub truncated_before: Slot,
    /// The last slot included in the installed snapshot; `None` when there is none, which is
    /// only allowed while `truncated_before` is slot 0.
    pub snapshot_slot: Option<Slot>,
}

impl GroupMeta {
    /// A group with nothing promised, no members, nothing truncated and no snapshot.
    #[must_use]
    pub fn new(group: GroupId) -> GroupMeta {
        GroupMeta {
            group,
            promised: Ballot::ZERO,
            membership_epoch: 0,
            members: Vec::new(),
            learners: Vec::new(),
            truncated_before: Slot(0),
            snapshot_slot: None,
        }
    }
}

impl Superblock {
    /// The format version of a core's superblock: sequence 0, the identity, no groups.
    #[must_use]
    pub fn new(cluster_id: u64, node_id: NodeId, core: CoreIndex) -> Superblock {
        Superblock { sequence: 0, cluster_id, node_id, core, groups: Vec::new() }
    }

    /// A copy with the sequence one higher: the starting point of the next update. Not for
    /// the first write after a restart, which is [`Recovered::rewrite`].
    ///
    /// # Panics
    /// If the sequence is `u64::MAX` (it cannot be reached one write at a time).
    #[must_use]
    pub fn next(&self) -> Superblock {
        let mut next = self.clone();
        next.sequence = self.sequence.checked_add(1).expect("superblock sequence overflow");
        next
    }

    /// The metadata of `group`, if the core hosts it.
    #[must_use]
    pub fn group(&self, group: GroupId) -> Option<&GroupMeta> {
        let index = self.groups.binary_search_by_key(&group, |meta| meta.group).ok()?;
        self.groups.get(index)
    }
}

/// The two copies (one pair) that version `sequence` is written to: copies 0 and 1 for an
/// even sequence, 2 and 3 for an odd one.
#[must_use]
pub fn copies_for_sequence(sequence: u64) -> [usize; 2] {
    if sequence.is_multiple_of(2) { [0, 1] } else { [2, 3] }
}

/// Byte offset of copy `copy_index` in the superblock file.
///
/// # Panics
/// If `copy_index` is not below [`SUPERBLOCK_COPIES_COUNT`].
#[must_use]
pub fn copy_offset_bytes(copy_index: usize) -> u64 {
    assert!(copy_index < SUPERBLOCK_COPIES_COUNT, "no superblock copy {copy_index}");
    u64::try_from(copy_index * SUPERBLOCK_COPY_SIZE_BYTES).expect("offset fits u64")
}

/// Bytes `superblock` occupies in a copy area (header and body); the rest of the area is
/// ignored by [`decode_copy`].
#[must_use]
pub fn encoded_size_bytes(superblock: &Superblock) -> usize {
    SUPERBLOCK_HEADER_SIZE_BYTES + body_size_bytes(superblock)
}

fn body_size_bytes(superblock: &Superblock) -> usize {
    let groups: usize = superblock
        .groups
        .iter()
        .map(|meta| {
            GROUP_FIXED_SIZE_BYTES + NODE_ID_SIZE_BYTES * (meta.members.len() + meta.learners.len())
        })
        .sum();
    BODY_FIXED_SIZE_BYTES + groups
}

/// What the writer does to make one version durable: write `write_size_bytes` of the encoded
/// copy at each of `offsets_bytes`, then fdatasync, then (only then) reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// The version written.
    pub sequence: u64,
    /// The copies written: the pair [`copies_for_sequence`] gives.
    pub copy_indexes: [usize; 2],
    /// Where each of `copy_indexes` starts in the file.
    pub offsets_bytes: [u64; 2],
    /// Bytes to write at each offset: the encoded size rounded up to a disk sector, at most
    /// one copy area. Bytes past the body are ignored on read, so the rest may keep old data.
    pub write_size_bytes: usize,
}

impl WritePlan {
    fn for_superblock(superblock: &Superblock) -> WritePlan {
        let copy_indexes = copies_for_sequence(superblock.sequence);
        let write_size_bytes = encoded_size_bytes(superblock)
            .next_multiple_of(DISK_SECTOR_SIZE_BYTES)
            .min(SUPERBLOCK_COPY_SIZE_BYTES);
        WritePlan {
            sequence: superblock.sequence,
            copy_indexes,
            offsets_bytes: copy_indexes.map(copy_offset_bytes),
            write_size_bytes,
        }
    }

    /// The plan for formatting a new superblock file with `superblock` (copies 0 and 1).
    ///
    /// # Panics
    /// If `superblock` is not a format version: sequence 0 and no groups.
    #[must_use]
    pub fn format(superblock: &Superblock) -> WritePlan {
        assert_eq!(superblock.sequence, 0, "a superblock is formatted with sequence 0");
        assert!(superblock.groups.is_empty(), "the format version has no groups");
        WritePlan::for_superblock(superblock)
    }

    /// The plan for replacing the durable version `durable` with `next`, the next update.
    /// `durable` is the last version whose fdatasync returned: the format, a recovery
    /// rewrite, or an earlier update.
    ///
    /// # Panics
    /// If `next` is not a legal successor of `durable` (a bug in the caller): its sequence is
    /// not exactly one more, its identity differs, or a group present in both has a lower
    /// promised ballot, membership epoch, `truncated_before` or snapshot slot. Groups may be
    /// added and removed.
    #[must_use]
    pub fn successor(durable: &Superblock, next: &Superblock) -> WritePlan {
        assert_eq!(
            Some(next.sequence),
            durable.sequence.checked_add(1),
            "the superblock sequence grows by exactly 1 per write"
        );
        assert_eq!(next.cluster_id, durable.cluster_id, "cluster id changed");
        assert_eq!(next.node_id, durable.node_id, "node id changed");
        assert_eq!(next.core, durable.core, "core changed");
        for meta in &next.groups {
            let Some(before) = durable.group(meta.group) else { continue };
            // Paxos Made Simple 2.3: a promise is never withdrawn.
            assert!(meta.promised >= before.promised, "{}: promised went back", meta.group);
            assert!(
                meta.membership_epoch >= before.membership_epoch,
                "{}: membership epoch went back",
                meta.group
            );
            assert!(
                meta.truncated_before >= before.truncated_before,
                "{}: truncation point went back",
                meta.group
            );
            assert!(
                meta.snapshot_slot >= before.snapshot_slot,
                "{}: snapshot went back",
                meta.group
            );
        }
        WritePlan::for_superblock(next)
    }
}

/// Why a superblock cannot be encoded: it exceeds a limit. Everything within the limits fits
/// a copy area (checked at compile time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More groups than [`SUPERBLOCK_GROUPS_COUNT_MAX`].
    #[error("superblock too large: {count} groups, at most {SUPERBLOCK_GROUPS_COUNT_MAX}")]
    TooManyGroups {
        /// Groups in the superblock.
        count: usize,
    },
    /// A group with more voters than [`SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX`].
    #[error("superblock too large: {group} has {count} members, at most {max}",
        max = SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX)]
    TooManyMembers {
        /// The group.
        group: GroupId,
        /// Its voters.
        count: usize,
    },
    /// A group with more learners than [`SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX`].
    #[error("superblock too large: {group} has {count} learners, at most {max}",
        max = SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX)]
    TooManyLearners {
        /// The group.
        group: GroupId,
        /// Its learners.
        count: usize,
    },
}

/// Encodes `superblock` as copy `copy_index` into `out`, one whole copy area: header, body,
/// then zeros to the end.
///
/// # Errors
/// [`EncodeError`] when a count exceeds its limit; `out` is then left unchanged.
///
/// # Panics
/// If `out` is not exactly [`SUPERBLOCK_COPY_SIZE_BYTES`] long, `copy_index` is not in the
/// pair of `superblock.sequence`, or `superblock` breaks a structural rule (groups not
/// strictly ascending, members or learners not strictly ascending, a learner that is also a
/// member, a ballot that is neither zero nor real, a truncation point the snapshot does not
/// cover, or groups in the format version): all bugs in the caller.
pub fn encode_copy(
    superblock: &Superblock,
    copy_index: usize,
    out: &mut [u8],
) -> Result<(), EncodeError> {
    assert_eq!(out.len(), SUPERBLOCK_COPY_SIZE_BYTES, "out must be one copy area");
    assert!(
        copies_for_sequence(superblock.sequence).contains(&copy_index),
        "sequence {} is not written to copy {copy_index}",
        superblock.sequence
    );
    check_limits(superblock)?;
    if let Err(error) = check_structure(superblock) {
        panic!("superblock breaks a structural rule: {error}");
    }
    let body_size = body_size_bytes(superblock);
    out.fill(0);
    let (header, rest) = out.split_at_mut(SUPERBLOCK_HEADER_SIZE_BYTES);
    let (body, _) = rest.split_at_mut(body_size);

    let mut writer = Writer { bytes: body, position: 0 };
    writer.put(&superblock.cluster_id.to_le_bytes());
    writer.put(&superblock.node_id.get().to_le_bytes());
    writer.put(&superblock.core.0.to_le_bytes());
    writer.put(&0_u16.to_le_bytes());
    writer.put(&count_u32(superblock.groups.len()).to_le_bytes());
    for meta in &superblock.groups {
        let flags = if meta.snapshot_slot.is_some() { GROUP_FLAG_HAS_SNAPSHOT } else { 0 };
        writer.put(&meta.group.0.to_le_bytes());
        writer.put(&[count_u8(meta.members.len()), count_u8(meta.learners.len()), flags, 0]);
        writer.put(&meta.promised.round.to_le_bytes());
        writer.put(&meta.promised.node.to_le_bytes());
        writer.put(&meta.membership_epoch.to_le_bytes());
        writer.put(&meta.truncated_before.0.to_le_bytes());
        writer.put(&meta.snapshot_slot.map_or(0, |slot| slot.0).to_le_bytes());
        for node in meta.members.iter().chain(&meta.learners) {
            writer.put(&node.get().to_le_bytes());
        }
    }
    assert_eq!(writer.position, body_size, "body size computed and written agree");
    let body_checksum = crc32c::crc32c(body);

    let copy_index_byte = u8::try_from(copy_index).expect("copy index fits u8");
    let mut writer = Writer { bytes: header, position: 0 };
    writer.put(&SUPERBLOCK_MAGIC);
    writer.put(&SUPERBLOCK_FORMAT_VERSION.to_le_bytes());
    writer.put(&[copy_index_byte, 0]);
    writer.put(&count_u32(body_size).to_le_bytes());
    writer.put(&superblock.sequence.to_le_bytes());
    writer.put(&body_checksum.to_le_bytes());
    assert_eq!(writer.position, HEADER_CHECKSUM_OFFSET);
    let header_checksum = crc32c::crc32c(writer.bytes.get(..HEADER_CHECKSUM_OFFSET).expect("in"));
    writer.put(&header_checksum.to_le_bytes());

    // Pair assertion (STYLE 9.12): what we wrote must read back as what we meant.
    debug_assert_eq!(decode_copy(out, copy_index).as_ref(), Ok(superblock));
    Ok(())
}

/// Encodes `superblock` into both copies of its pair, `out` being the two adjacent copy areas
/// starting at [`WritePlan::offsets_bytes`]`[0]`, ready for one write of the whole pair.
///
/// # Errors
/// As [`encode_copy`].
///
/// # Panics
/// As [`encode_copy`], and if `out` is not exactly two copy areas long.
pub fn encode_pair(superblock: &Superblock, out: &mut [u8]) -> Result<(), EncodeError> {
    assert_eq!(out.len(), 2 * SUPERBLOCK_COPY_SIZE_BYTES, "out must be two copy areas");
    let [first, second] = copies_for_sequence(superblock.sequence);
    let (first_area, second_area) = out.split_at_mut(SUPERBLOCK_COPY_SIZE_BYTES);
    encode_copy(superblock, first, first_area)?;
    encode_copy(superblock, second, second_area)
}

fn count_u8(count: usize) -> u8 {
    u8::try_from(count).expect("count checked against its limit")
}

fn count_u32(count: usize) -> u32 {
    u32::try_from(count).expect("count checked against its limit")
}

fn check_limits(superblock: &Superblock) -> Result<(), EncodeError> {
    let count = superblock.groups.len();
    if count > SUPERBLOCK_GROUPS_COUNT_MAX {
        return Err(EncodeError::TooManyGroups { count });
    }
    for meta in &superblock.groups {
        let (group, count) = (meta.group, meta.members.len());
        if count > SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX {
            return Err(EncodeError::TooManyMembers { group, count });
        }
        let count = meta.learners.len();
        if count > SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX {
            return Err(EncodeError::TooManyLearners { group, count });
        }
    }
    Ok(())
}

/// A structural rule a decoded body breaks (its checksum passed, so this is a bug in the
/// writer or an incompatible writer, never a torn write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body ends before the counts in it say it should.
    #[error("body shorter than its counts")]
    Short,
    /// The body continues after the last group.
    #[error("{0} bytes after the last group")]
    TrailingBytes(usize),
    /// A reserved byte or an unknown group flag is set.
    #[error("a reserved field is not zero")]
    ReservedNotZero,
    /// The node id is 0.
    #[error("node id 0")]
    ZeroNodeId,
    /// More groups than the limit.
    #[error("{0} groups, at most {SUPERBLOCK_GROUPS_COUNT_MAX}")]
    TooManyGroups(u32),
    /// Groups not strictly ascending (unsorted or duplicate) at this group.
    #[error("groups not strictly ascending at {0}")]
    GroupsNotAscending(GroupId),
    /// A group with more members than the limit.
    #[error("{0} has too many members")]
    TooManyMembers(GroupId),
    /// A group with more learners than the limit.
    #[error("{0} has too many learners")]
    TooManyLearners(GroupId),
    /// A member or learner id is 0.
    #[error("{0} lists node id 0")]
    ZeroMember(GroupId),
    /// Members or learners not strictly ascending, or a learner that is also a member.
    #[error("{0} has an unsorted, duplicate or overlapping membership")]
    BadMembership(GroupId),
    /// A promised ballot that is neither [`Ballot::ZERO`] nor real.
    #[error("{0} has an invalid promised ballot")]
    BadBallot(GroupId),
    /// Slots below `truncated_before` that the snapshot does not cover.
    #[error("{0} truncated slots its snapshot does not cover")]
    SnapshotBehindTruncation(GroupId),
    /// The format version (sequence 0) lists groups.
    #[error("sequence 0 with groups")]
    FormatHasGroups,
}

/// Checks the rules that the types do not enforce; shared by encode (assert) and decode
/// (reject), so both sides agree on what a well-formed superblock is.
fn check_structure(superblock: &Superblock) -> Result<(), BodyError> {
    if superblock.sequence == 0 && !superblock.groups.is_empty() {
        return Err(BodyError::FormatHasGroups);
    }
    for pair in superblock.groups.windows(2) {
        if let [before, after] = pair
            && before.group >= after.group
        {
            return Err(BodyError::GroupsNotAscending(after.group));
        }
    }
    for meta in &superblock.groups {
        let group = meta.group;
        if meta.promised != Ballot::ZERO && !meta.promised.is_real() {
            return Err(BodyError::BadBallot(group));
        }
        let ascending = |nodes: &[NodeId]| nodes.windows(2).all(|pair| pair.first() < pair.last());
        if !ascending(&meta.members)
            || !ascending(&meta.learners)
            || meta.learners.iter().any(|learner| meta.members.binary_search(learner).is_ok())
        {
            return Err(BodyError::BadMembership(group));
        }
        // Slots below `truncated_before` are gone from the log, so the snapshot must cover
        // them: truncated_before - 1 <= snapshot_slot.
        if let Some(last_truncated) = meta.truncated_before.0.checked_sub(1)
            && meta.snapshot_slot.is_none_or(|snapshot| snapshot.0 < last_truncated)
        {
            return Err(BodyError::SnapshotBehindTruncation(group));
        }
    }
    Ok(())
}

/// Why one copy area does not hold a usable superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    /// Every byte is zero (or the area is empty): never written.
    #[error("blank")]
    Blank,
    /// Too short to hold a header, and not blank.
    #[error("short: {length} bytes, no room for a header")]
    ShortHeader {
        /// Bytes in the area.
        length: usize,
    },
    /// Not a superblock copy (garbage, or a torn first sector).
    #[error("bad magic")]
    BadMagic,
    /// The header checksum does not match: torn or rotted header.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// The header is intact but from another format version (a newer Klein).
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    /// The header is intact but has flags this version does not know (a newer Klein).
    #[error("unsupported flags {0:#04x}")]
    UnsupportedFlags(u8),
    /// The copy was written for another area: a misdirected write.
    #[error("misdirected: written for copy {stored}")]
    Misdirected {
        /// The copy index in the header.
        stored: u8,
    },
    /// The sequence is not one the writer puts in this pair.
    #[error("sequence {0} does not belong in this pair")]
    WrongPair(u64),
    /// The header claims a body larger than a copy area.
    #[error("body of {0} bytes cannot fit a copy area")]
    BodyTooLarge(u32),
    /// The area ends before the body does (a short read).
    #[error("truncated: body needs {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the body needs.
        needed: usize,
        /// Bytes after the header.
        available: usize,
    },
    /// The body checksum does not match: torn or rotted body.
    #[error("body checksum mismatch")]
    BodyChecksum,
    /// The checksums pass but the body breaks a structural rule.
    #[error("malformed body: {0}")]
    Malformed(BodyError),
}

impl CopyError {
    /// Whether the copy's header is intact but written by a newer format: ignoring such a
    /// copy could roll back, so recovery refuses to go on.
    #[must_use]
    pub fn is_newer_format(self) -> bool {
        matches!(self, CopyError::UnsupportedVersion(_) | CopyError::UnsupportedFlags(_))
    }
}

/// Decodes the copy area read from position `copy_index` of the superblock file.
///
/// Accepts any bytes and never panics on them. An area longer or shorter than a copy area is
/// fine as long as it holds the whole header and body; bytes after the body are ignored.
///
/// # Errors
/// [`CopyError`] saying why the area holds no valid copy.
///
/// # Panics
/// If `copy_index` is not below [`SUPERBLOCK_COPIES_COUNT`] (a bug in the caller).
pub fn decode_copy(area: &[u8], copy_index: usize) -> Result<Superblock, CopyError> {
    assert!(copy_index < SUPERBLOCK_COPIES_COUNT, "no superblock copy {copy_index}");
    let Some(header) = area.first_chunk::<SUPERBLOCK_HEADER_SIZE_BYTES>() else {
        return Err(if is_blank(area) {
            CopyError::Blank
        } else {
            CopyError::ShortHeader { length: area.len() }
        });
    };
    let (covered, stored_checksum) = header.split_at(HEADER_CHECKSUM_OFFSET);
    let mut reader = Reader { bytes: covered };
    let (
        Some(magic),
        Some(version),
        Some(stored_index),
        Some(flags),
        Some(body_size),
        Some(sequence),
        Some(body_checksum),
    ) = (
        reader.array::<8>(),
        reader.u16(),
        reader.u8(),
        reader.u8(),
        reader.u32(),
        reader.u64(),
        reader.u32(),
    )
    else {
        // Not reachable: the header array is long enough for every field.
        return Err(CopyError::ShortHeader { length: area.len() });
    };
    if magic != SUPERBLOCK_MAGIC {
        return Err(if is_blank(area) { CopyError::Blank } else { CopyError::BadMagic });
    }
    if crc32c::crc32c(covered).to_le_bytes() != stored_checksum {
        return Err(CopyError::HeaderChecksum);
    }
    // From here on the header is trusted.
    if version != SUPERBLOCK_FORMAT_VERSION {
        return Err(CopyError::UnsupportedVersion(version));
    }
    if flags != 0 {
        return Err(CopyError::UnsupportedFlags(flags));
    }
    if usize::from(stored_index) != copy_index {
        return Err(CopyError::Misdirected { stored: stored_index });
    }
    if !copies_for_sequence(sequence).contains(&copy_index) {
        return Err(CopyError::WrongPair(sequence));
    }
    let body_size_bytes = usize::try_from(body_size).unwrap_or(usize::MAX);
    if body_size_bytes > SUPERBLOCK_COPY_SIZE_BYTES - SUPERBLOCK_HEADER_SIZE_BYTES {
        return Err(CopyError::BodyTooLarge(body_size));
    }
    let after_header = area.get(SUPERBLOCK_HEADER_SIZE_BYTES..).unwrap_or_default();
    let Some(body) = after_header.get(..body_size_bytes) else {
        return Err(CopyError::Truncated {
            needed: body_size_bytes,
            available: after_header.len(),
        });
    };
    if crc32c::crc32c(body) != body_checksum {
        return Err(CopyError::BodyChecksum);
    }
    decode_body(body, sequence).map_err(CopyError::Malformed)
}

fn is_blank(area: &[u8]) -> bool {
    area.iter().all(|byte| *byte == 0)
}

fn decode_body(body: &[u8], sequence: u64) -> Result<Superblock, BodyError> {
    let mut reader = Reader { bytes: body };
    let cluster_id = reader.u64().ok_or(BodyError::Short)?;
    let node_id =
        NodeId::new(reader.u64().ok_or(BodyError::Short)?).ok_or(BodyError::ZeroNodeId)?;
    let core = CoreIndex(reader.u16().ok_or(BodyError::Short)?);
    if reader.u16().ok_or(BodyError::Short)? != 0 {
        return Err(BodyError::ReservedNotZero);
    }
    let groups_count = reader.u32().ok_or(BodyError::Short)?;
    // Checked before the allocation below: the count is bounded, whatever the bytes say.
    let count = usize::try_from(groups_count).unwrap_or(usize::MAX);
    if count > SUPERBLOCK_GROUPS_COUNT_MAX {
        return Err(BodyError::TooManyGroups(groups_count));
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(decode_group(&mut reader)?);
    }
    if !reader.bytes.is_empty() {
        return Err(BodyError::TrailingBytes(reader.bytes.len()));
    }
    let superblock = Superblock { sequence, cluster_id, node_id, core, groups };
    check_structure(&superblock)?;
    Ok(superblock)
}

fn decode_group(reader: &mut Reader<'_>) -> Result<GroupMeta, BodyError> {
    let group = GroupId(reader.u32().ok_or(BodyError::Short)?);
    let [members_count, learners_count, flags, reserved] =
        reader.array::<4>().ok_or(BodyError::Short)?;
    if flags & !GROUP_FLAG_HAS_SNAPSHOT != 0 || reserved != 0 {
        return Err(BodyError::ReservedNotZero);
    }
    if usize::from(members_count) > SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX {
        return Err(BodyError::TooManyMembers(group));
    }
    if usize::from(learners_count) > SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX {
        return Err(BodyError::TooManyLearners(group));
    }
    let mut next = || reader.u64().ok_or(BodyError::Short);
    let promised = Ballot { round: next()?, node: next()? };
    let membership_epoch = next()?;
    let truncated_before = Slot(next()?);
    let snapshot = next()?;
    let snapshot_slot = if flags & GROUP_FLAG_HAS_SNAPSHOT != 0 {
        Some(Slot(snapshot))
    } else if snapshot == 0 {
        None
    } else {
        return Err(BodyError::ReservedNotZero);
    };
    let mut nodes = |count: u8| -> Result<Vec<NodeId>, BodyError> {
        (0..count).map(|_| NodeId::new(next()?).ok_or(BodyError::ZeroMember(group))).collect()
    };
    let members = nodes(members_count)?;
    let learners = nodes(learners_count)?;
    Ok(GroupMeta {
        group,
        promised,
        membership_epoch,
        members,
        learners,
        truncated_before,
        snapshot_slot,
    })
}

/// What one copy area held, for the recovery log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyStatus {
    /// A valid copy of this version.
    Valid {
        /// Its sequence.
        sequence: u64,
    },
    /// No valid copy, and why.
    Invalid(CopyError),
}

/// What recovery found in a superblock file that is not corrupt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// Every area is zero: the file was never formatted (or formatting crashed before any
    /// copy landed). See the module docs for when the caller may format it.
    Fresh,
    /// The newest valid version, to be rewritten before use.
    Found(Recovered),
}

/// The newest valid version found by [`choose`], and how to rewrite it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The chosen version.
    pub superblock: Superblock,
    /// The sequence of the mandatory recovery rewrite: above every sequence in an intact
    /// header (valid copy or not), with the parity of the pair that does not hold the chosen
    /// version.
    pub rewrite_sequence: u64,
    /// What each copy area held, by copy index.
    pub copies: [CopyStatus; SUPERBLOCK_COPIES_COUNT],
}

impl Recovered {
    /// The recovery rewrite (the chosen content at [`Recovered::rewrite_sequence`]) and its
    /// plan. It must be durable before the core serves any Prepare or Accept, and before any
    /// other superblock write: later writes are its successors.
    ///
    /// # Panics
    /// If `rewrite_sequence` does not target the other pair or is not above the chosen
    /// sequence (a bug: [`choose`] computes it).
    #[must_use]
    pub fn rewrite(&self) -> (Superblock, WritePlan) {
        let chosen = self.superblock.sequence;
        assert!(self.rewrite_sequence > chosen, "the rewrite goes forward");
        assert_ne!(
            copies_for_sequence(self.rewrite_sequence),
            copies_for_sequence(chosen),
            "the rewrite never overwrites the chosen version"
        );
        let rewrite = Superblock { sequence: self.rewrite_sequence, ..self.superblock.clone() };
        let plan = WritePlan::for_superblock(&rewrite);
        (rewrite, plan)
    }
}

/// Why recovery cannot trust the superblock file. Every case is fatal for the core's
/// replicas: no votes, no promises, and no formatting over it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// No copy is valid, yet some area is not zero: the superblock was lost.
    #[error("no valid superblock copy: {0:?}")]
    NoValidCopy([CopyError; SUPERBLOCK_COPIES_COUNT]),
    /// A copy's intact header names a format this version cannot read.
    #[error("superblock copy {copy_index} is from a newer format: {error}")]
    UnsupportedFormat {
        /// The copy.
        copy_index: usize,
        /// What its header says.
        error: CopyError,
    },
    /// Two valid copies belong to different clusters, nodes or cores.
    #[error("superblock copies {} and {} name different identities", .copy_indexes[0],
        .copy_indexes[1])]
    IdentityMismatch {
        /// The two copies.
        copy_indexes: [usize; 2],
    },
    /// An intact header holds a sequence so high that no rewrite sequence is left.
    #[error("superblock sequence {0} leaves no room for a rewrite")]
    SequenceExhausted(u64),
    /// Two valid copies have the same sequence but different contents.
    #[error("superblock copies {} and {} disagree at sequence {sequence}", .copy_indexes[0],
        .copy_indexes[1])]
    Disagreement {
        /// The sequence both claim.
        sequence: u64,
        /// The two copies.
        copy_indexes: [usize; 2],
    },
}

/// Chooses the newest valid version among the copy areas read from the superblock file,
/// following the recovery rules in the module docs.
///
/// # Errors
/// [`RecoveryError`] when the file is corrupt (some area nonzero but none valid, valid copies
/// that disagree or name different identities) or from a newer format.
///
/// # Panics
/// If `copies` does not hold exactly [`SUPERBLOCK_COPIES_COUNT`] areas (a bug in the caller).
pub fn choose(copies: &[&[u8]]) -> Result<Chosen, RecoveryError> {
    assert_eq!(copies.len(), SUPERBLOCK_COPIES_COUNT, "one area per superblock copy");
    let decoded: [Result<Superblock, CopyError>; SUPERBLOCK_COPIES_COUNT] =
        std::array::from_fn(|copy_index| match copies.get(copy_index) {
            Some(area) => decode_copy(area, copy_index),
            None => unreachable!("length asserted"),
        });
    for (copy_index, result) in decoded.iter().enumerate() {
        if let Err(error) = result
            && error.is_newer_format()
        {
            return Err(RecoveryError::UnsupportedFormat { copy_index, error: *error });
        }
    }
    let statuses = decoded.each_ref().map(|result| match result {
        Ok(superblock) => CopyStatus::Valid { sequence: superblock.sequence },
        Err(error) => CopyStatus::Invalid(*error),
    });
    let valid: Vec<(usize, &Superblock)> = decoded
        .iter()
        .enumerate()
        .filter_map(|(copy_index, result)| Some((copy_index, result.as_ref().ok()?)))
        .collect();
    let Some(&(newest_index, newest)) =
        valid.iter().max_by_key(|(_, superblock)| superblock.sequence)
    else {
        let errors = decoded.map(|result| result.err().unwrap_or(CopyError::Blank));
        if errors.iter().all(|error| *error == CopyError::Blank) {
            return Ok(Chosen::Fresh);
        }
        return Err(RecoveryError::NoValidCopy(errors));
    };
    for (index, &(first_index, first)) in valid.iter().enumerate() {
        for &(second_index, second) in valid.iter().skip(index + 1) {
            let copy_indexes = [first_index, second_index];
            if (first.cluster_id, first.node_id, first.core)
                != (second.cluster_id, second.node_id, second.core)
            {
                return Err(RecoveryError::IdentityMismatch { copy_indexes });
            }
            if first.sequence == second.sequence && first != second {
                return Err(RecoveryError::Disagreement { sequence: first.sequence, copy_indexes });
            }
        }
    }
    // Rule (c): nothing valid is newer than the choice.
    debug_assert!(valid.iter().all(|(_, superblock)| superblock.sequence <= newest.sequence));
    debug_assert!(copies_for_sequence(newest.sequence).contains(&newest_index));

    // An interrupted write may have left an intact header over a torn body. A later write
    // reusing its sequence could complete that body with equal bytes and resurrect it next to
    // the new copy: two valid copies, one sequence, two contents. So the rewrite skips every
    // sequence an intact header shows.
    let highest = copies
        .iter()
        .filter_map(|area| intact_header_sequence(area))
        .fold(newest.sequence, u64::max);
    let rewrite_sequence = highest
        .checked_add(if highest % 2 == newest.sequence % 2 { 1 } else { 2 })
        .ok_or(RecoveryError::SequenceExhausted(highest))?;
    Ok(Chosen::Found(Recovered { superblock: newest.clone(), rewrite_sequence, copies: statuses }))
}

/// The sequence in `area`'s header if the header checksum passes, whatever the body holds.
fn intact_header_sequence(area: &[u8]) -> Option<u64> {
    let header = area.first_chunk::<SUPERBLOCK_HEADER_SIZE_BYTES>()?;
    let (covered, stored_checksum) = header.split_at(HEADER_CHECKSUM_OFFSET);
    if !covered.starts_with(&SUPERBLOCK_MAGIC)
        || crc32c::crc32c(covered).to_le_bytes() != stored_checksum
    {
        return None;
    }
    let sequence = covered.get(HEADER_SEQUENCE_OFFSET..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*sequence))
}

/// Appends little-endian fields to a buffer sized in advance.
struct Writer<'a> {
    bytes: &'a mut [u8],
    position: usize,
}

impl Writer<'_> {
    fn put(&mut self, value: &[u8]) {
        let end = self.position + value.len();
        let target = self.bytes.get_mut(self.position..end).expect("buffer sized in advance");
        target.copy_from_slice(value);
        self.position = end;
    }
}

/// Takes little-endian fields off the front of untrusted bytes; `None` when they run out.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array().map(u8::from_le_bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const CLUSTER_ID: u64 = 0xC1_0571;

    fn node(id: u64) -> NodeId {
        NodeId::new(id).unwrap()
    }

    fn nodes(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|id| node(*id)).collect()
    }

    /// A superblock of `groups_count` groups, all distinct, all well formed.
    fn sample(sequence: u64, groups_count: u32) -> Superblock {
        let groups = (0..groups_count)
            .map(|index| {
                let base = u64::from(index);
                GroupMeta {
                    group: GroupId(index * 3 + 1),
                    promised: Ballot { round: base + 1, node: 1 + base % 3 },
                    membership_epoch: base,
                    members: nodes(&[1, 2, 3]),
                    learners: nodes(&[4]),
                    truncated_before: Slot(base * 10),
                    snapshot_slot: (index > 0).then_some(Slot(base * 10 + 5)),
                }
            })
            .collect();
        Superblock {
            sequence,
            cluster_id: CLUSTER_ID,
            node_id: node(2),
            core: CoreIndex(3),
            groups,
        }
    }

    /// The largest superblock the limits allow, every field at its widest.
    fn largest(sequence: u64) -> Superblock {
        let members: Vec<u64> = (1..=9).collect();
        let learners: Vec<u64> = (10..=18).collect();
        assert_eq!(members.len(), SUPERBLOCK_GROUP_MEMBERS_COUNT_MAX);
        assert_eq!(learners.len(), SUPERBLOCK_GROUP_LEARNERS_COUNT_MAX);
        let groups = (0..u32::try_from(SUPERBLOCK_GROUPS_COUNT_MAX).unwrap())
            .map(|index| GroupMeta {
                group: GroupId(u32::MAX - 300 + index),
                promised: Ballot { round: u64::MAX, node: u64::MAX },
                membership_epoch: u64::MAX,
                members: nodes(&members),
                learners: nodes(&learners),
                truncated_before: Slot(u64::MAX),
                snapshot_slot: Some(Slot(u64::MAX)),
            })
            .collect();
        Superblock {
            sequence,
            cluster_id: u64::MAX,
            node_id: node(u64::MAX),
            core: CoreIndex(u16::MAX),
            groups,
        }
    }

    fn encode(superblock: &Superblock, copy_index: usize) -> Vec<u8> {
        let mut area = vec![0; SUPERBLOCK_COPY_SIZE_BYTES];
        encode_copy(superblock, copy_index, &mut area).unwrap();
        area
    }

    fn found(result: Result<Chosen, RecoveryError>) -> Superblock {
        match result {
            Ok(Chosen::Found(recovered)) => recovered.superblock,
            other => panic!("expected a valid copy, got {other:?}"),
        }
    }

    fn refs(areas: &[Vec<u8>]) -> Vec<&[u8]> {
        areas.iter().map(Vec::as_slice).collect()
    }

    /// Recomputes both checksums after a test edited a copy on purpose, so the edit reaches
    /// the checks behind them.
    fn reseal(area: &mut [u8]) {
        let body_size = usize::try_from(u32::from_le_bytes(area[12..16].try_into().unwrap()));
        if let Some(body) =
            area.get(SUPERBLOCK_HEADER_SIZE_BYTES..).and_then(|rest| rest.get(..body_size.unwrap()))
        {
            let checksum = crc32c::crc32c(body);
            area[24..28].copy_from_slice(&checksum.to_le_bytes());
        }
        let checksum = crc32c::crc32c(&area[..HEADER_CHECKSUM_OFFSET]);
        area[HEADER_CHECKSUM_OFFSET..SUPERBLOCK_HEADER_SIZE_BYTES]
            .copy_from_slice(&checksum.to_le_bytes());
    }

    #[test]
    fn round_trip_keeps_a_superblock_without_groups() {
        let superblock = Superblock::new(CLUSTER_ID, node(1), CoreIndex(0));
        for copy_index in copies_for_sequence(0) {
            let area = encode(&superblock, copy_index);
            assert_eq!(decode_copy(&area, copy_index), Ok(superblock.clone()));
        }
        // The format version is written in one atomic sector.
        assert!(encoded_size_bytes(&superblock) <= DISK_TEAR_SIZE_BYTES);
    }

    #[test]
    fn round_trip_keeps_one_group() {
        let superblock = sample(1, 1);
        for copy_index in copies_for_sequence(1) {
            let area = encode(&superblock, copy_index);
            assert_eq!(decode_copy(&area, copy_index), Ok(superblock.clone()));
            assert!(is_blank(&area[encoded_size_bytes(&superblock)..]));
        }
    }

    #[test]
    fn round_trip_keeps_the_largest_superblock_the_limits_allow() {
        let superblock = largest(u64::MAX - 1);
        let size = encoded_size_bytes(&superblock);
        assert_eq!(size, SUPERBLOCK_HEADER_SIZE_BYTES + SUPERBLOCK_BODY_SIZE_BYTES_MAX);
        assert!(size <= SUPERBLOCK_COPY_SIZE_BYTES);
        let area = encode(&superblock, 1);
        assert_eq!(decode_copy(&area, 1), Ok(superblock));
    }

    #[test]
    fn encode_refuses_counts_over_the_limits_and_leaves_the_area_alone() {
        let mut area = vec![0xAB; SUPERBLOCK_COPY_SIZE_BYTES];

        let mut superblock = largest(2);
        superblock.groups.push(GroupMeta::new(GroupId(u32::MAX)));
        let count = SUPERBLOCK_GROUPS_COUNT_MAX + 1;
        assert_eq!(
            encode_copy(&superblock, 0, &mut area),
            Err(EncodeError::TooManyGroups { count })
        );

        let mut superblock = sample(2, 2);
        superblock.groups[1].members = nodes(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let expected = EncodeError::TooManyMembers { group: GroupId(4), count: 10 };
        assert_eq!(encode_copy(&superblock, 0, &mut area), Err(expected));

        let mut superblock = sample(2, 2);
        superblock.groups[0].learners = nodes(&[11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
        let expected = EncodeError::TooManyLearners { group: GroupId(1), count: 10 };
        assert_eq!(encode_copy(&superblock, 0, &mut area), Err(expected));

        assert!(area.iter().all(|byte| *byte == 0xAB));
    }

    #[test]
    #[should_panic(expected = "structural rule")]
    fn encode_panics_on_groups_out_of_order() {
        let mut superblock = sample(2, 3);
        superblock.groups.swap(0, 2);
        let _ = encode(&superblock, 0);
    }

    #[test]
    #[should_panic(expected = "is not written to copy")]
    fn encode_panics_on_a_copy_outside_the_pair_of_the_sequence() {
        let _ = encode(&sample(2, 1), 2);
    }

    #[test]
    fn every_bit_flip_in_the_used_bytes_invalidates_the_copy() {
        let superblock = sample(3, 4);
        let area = encode(&superblock, 2);
        let used = encoded_size_bytes(&superblock);
        let mut flipped = area.clone();
        for byte in 0..used {
            for bit in 0..8 {
                flipped[byte] ^= 1 << bit;
                assert!(decode_copy(&flipped, 2).is_err(), "flip of byte {byte} bit {bit}");
                flipped[byte] ^= 1 << bit;
            }
        }
        // Bytes past the body are not part of the copy: the writer may leave old data there.
        for byte in &mut flipped[used..used + 64] {
            *byte ^= 0xFF;
        }
        assert_eq!(decode_copy(&flipped, 2), Ok(superblock));
    }

    #[test]
    fn a_copy_read_from_another_area_is_misdirected() {
        let area = encode(&sample(4, 2), 0);
        for copy_index in 1..SUPERBLOCK_COPIES_COUNT {
            assert_eq!(decode_copy(&area, copy_index), Err(CopyError::Misdirected { stored: 0 }));
        }
        // A copy of version 6 meant for copy 0 lands on copy 2, which held version 5: only
        // copy 3 still holds 5, copy 0 still holds 4, copy 1 has 6.
        let areas = vec![
            encode(&sample(4, 2), 0),
            encode(&sample(6, 3), 1),
            encode(&sample(6, 3), 0),
            encode(&sample(5, 2), 3),
        ];
        let Ok(Chosen::Found(Recovered { superblock, copies, .. })) = choose(&refs(&areas)) else {
            panic!()
        };
        assert_eq!(superblock, sample(6, 3));
        assert_eq!(copies[2], CopyStatus::Invalid(CopyError::Misdirected { stored: 0 }));
    }

    #[test]
    fn a_checksummed_copy_in_the_wrong_pair_is_invalid() {
        let mut area = encode(&sample(2, 1), 0);
        area[10] = 2;
        reseal(&mut area);
        assert_eq!(decode_copy(&area, 2), Err(CopyError::WrongPair(2)));
    }

    #[test]
    fn choose_picks_the_highest_valid_sequence() {
        let mut areas = vec![
            encode(&sample(4, 1), 0),
            encode(&sample(4, 1), 1),
            encode(&sample(5, 2), 2),
            encode(&sample(5, 2), 3),
        ];
        let Ok(Chosen::Found(Recovered { superblock, copies, .. })) = choose(&refs(&areas)) else {
            panic!()
        };
        assert_eq!(superblock, sample(5, 2));
        assert_eq!(
            copies.map(|status| status == CopyStatus::Valid { sequence: 5 }),
            [false, false, true, true]
        );

        areas[2] = encode(&sample(3, 2), 2);
        areas[3] = encode(&sample(3, 2), 3);
        assert_eq!(found(choose(&refs(&areas))), sample(4, 1));
    }

    #[test]
    fn choose_survives_the_loss_of_either_copy_of_the_newest_version() {
        let healthy = vec![
            encode(&sample(6, 2), 0),
            encode(&sample(6, 2), 1),
            encode(&sample(7, 3), 2),
            encode(&sample(7, 3), 3),
        ];
        for lost in 2..4 {
            let mut areas = healthy.clone();
            areas[lost][40] ^= 0x10;
            let Ok(Chosen::Found(Recovered { superblock, copies, .. })) = choose(&refs(&areas))
            else {
                panic!()
            };
            assert_eq!(superblock, sample(7, 3));
            assert_eq!(copies[lost], CopyStatus::Invalid(CopyError::BodyChecksum));
        }
    }

    #[test]
    fn choose_reports_fresh_for_a_zeroed_or_empty_file() {
        let zeroed = vec![vec![0; SUPERBLOCK_COPY_SIZE_BYTES]; SUPERBLOCK_COPIES_COUNT];
        assert_eq!(choose(&refs(&zeroed)), Ok(Chosen::Fresh));
        let empty: Vec<Vec<u8>> = vec![Vec::new(); SUPERBLOCK_COPIES_COUNT];
        assert_eq!(choose(&refs(&empty)), Ok(Chosen::Fresh));
        let short = vec![vec![0; 16], vec![0; 4096], Vec::new(), vec![0; 100]];
        assert_eq!(choose(&refs(&short)), Ok(Chosen::Fresh));
    }

    #[test]
    fn choose_refuses_nonzero_areas_without_a_valid_copy() {
        let mut areas = vec![vec![0; SUPERBLOCK_COPY_SIZE_BYTES]; SUPERBLOCK_COPIES_COUNT];
        areas[3][SUPERBLOCK_COPY_SIZE_BYTES - 1] = 1;
        let Err(RecoveryError::NoValidCopy(errors)) = choose(&refs(&areas)) else { panic!() };
        assert_eq!(
            errors,
            [CopyError::Blank, CopyError::Blank, CopyError::Blank, CopyError::BadMagic]
        );

        // Every copy torn or rotted: corruption, never a fresh start.
        let mut areas = vec![
            encode(&sample(4, 2), 0),
            encode(&sample(4, 2), 1),
            encode(&sample(5, 2), 2),
            encode(&sample(5, 2), 3),
        ];
        for area in &mut areas {
            area[100] ^= 1;
        }
        let Err(RecoveryError::NoValidCopy(errors)) = choose(&refs(&areas)) else { panic!() };
        assert_eq!(errors, [CopyError::BodyChecksum; 4]);

        let areas = vec![vec![7; 48], vec![0; 4096], vec![0; 4096], vec![0; 4096]];
        assert!(matches!(choose(&refs(&areas)), Err(RecoveryError::NoValidCopy(_))));
    }

    #[test]
    fn choose_refuses_equal_sequences_with_different_contents() {
        let areas = vec![
            encode(&sample(4, 2), 0),
            encode(&sample(4, 3), 1),
            encode(&sample(3, 2), 2),
            encode(&sample(3, 2), 3),
        ];
        let expected = RecoveryError::Disagreement { sequence: 4, copy_indexes: [0, 1] };
        assert_eq!(choose(&refs(&areas)), Err(expected));
    }

    #[test]
    fn choose_refuses_copies_that_name_different_nodes_clusters_or_cores() {
        let newer = sample(5, 2);
        let changes: [fn(&mut Superblock); 3] = [
            |superblock| superblock.node_id = node(9),
            |superblock| superblock.cluster_id += 1,
            |superblock| superblock.core = CoreIndex(0),
        ];
        for change in changes {
            let mut other = sample(4, 2);
            change(&mut other);
            let areas = vec![encode(&other, 0), vec![0; 64], encode(&newer, 2), encode(&newer, 3)];
            let expected = RecoveryError::IdentityMismatch { copy_indexes: [0, 2] };
            assert_eq!(choose(&refs(&areas)), Err(expected));
        }
    }

    #[test]
    fn choose_refuses_a_copy_from_a_newer_format() {
        let mut areas = vec![
            encode(&sample(4, 2), 0),
            encode(&sample(4, 2), 1),
            encode(&sample(5, 2), 2),
            encode(&sample(5, 2), 3),
        ];
        areas[1][8] = 2;
        reseal(&mut areas[1]);
        let expected = RecoveryError::UnsupportedFormat {
            copy_index: 1,
            error: CopyError::UnsupportedVersion(2),
        };
        assert_eq!(choose(&refs(&areas)), Err(expected));

        areas[1] = encode(&sample(4, 2), 1);
        areas[3][11] = 0x80;
        reseal(&mut areas[3]);
        let Err(RecoveryError::UnsupportedFormat { copy_index: 3, error }) = choose(&refs(&areas))
        else {
            panic!()
        };
        assert_eq!(error, CopyError::UnsupportedFlags(0x80));
    }

    /// Byte offset of group entry `index` in a copy of `sample(_, n)` (every entry is 80 bytes).
    fn entry(index: usize) -> usize {
        SUPERBLOCK_HEADER_SIZE_BYTES + BODY_FIXED_SIZE_BYTES + index * 80
    }

    #[test]
    fn decode_rejects_checksummed_bodies_that_break_the_rules() {
        use BodyError::{
            BadBallot, BadMembership, FormatHasGroups, GroupsNotAscending, ReservedNotZero, Short,
            SnapshotBehindTruncation, TooManyGroups, TooManyLearners, TooManyMembers,
            TrailingBytes, ZeroMember, ZeroNodeId,
        };
        let base = encode(&sample(2, 3), 0);
        let body = SUPERBLOCK_HEADER_SIZE_BYTES;
        let (g0, g1, g2) = (entry(0), entry(1), entry(2));
        // (what, where, the bytes written there, the error), each on a fresh copy that is
        // then resealed, so the checksums pass and the structural check must catch it.
        let cases: [(&str, usize, &[u8], CopyError); 18] = [
            ("node id 0", body + 8, &[0; 8], CopyError::Malformed(ZeroNodeId)),
            ("reserved body bytes", body + 18, &[1], CopyError::Malformed(ReservedNotZero)),
            ("groups beyond the limit", body + 20, &[0xFF; 4], {
                CopyError::Malformed(TooManyGroups(u32::MAX))
            }),
            ("more groups than bytes", body + 20, &[4], CopyError::Malformed(Short)),
            ("fewer groups than bytes", body + 20, &[2], CopyError::Malformed(TrailingBytes(80))),
            ("duplicate group", g1, &[1, 0, 0, 0], {
                CopyError::Malformed(GroupsNotAscending(GroupId(1)))
            }),
            ("groups out of order", g2, &[2, 0, 0, 0], {
                CopyError::Malformed(GroupsNotAscending(GroupId(2)))
            }),
            ("members beyond the limit", g0 + 4, &[200], {
                CopyError::Malformed(TooManyMembers(GroupId(1)))
            }),
            ("learners beyond the limit", g0 + 5, &[10], {
                CopyError::Malformed(TooManyLearners(GroupId(1)))
            }),
            ("unknown group flag", g0 + 6, &[2], CopyError::Malformed(ReservedNotZero)),
            ("slot without a snapshot", g0 + 40, &[1], CopyError::Malformed(ReservedNotZero)),
            ("half-zero ballot", g0 + 16, &[0; 8], CopyError::Malformed(BadBallot(GroupId(1)))),
            ("member id 0", g0 + 48, &[0; 8], CopyError::Malformed(ZeroMember(GroupId(1)))),
            ("members out of order", g0 + 48, &[3], {
                CopyError::Malformed(BadMembership(GroupId(1)))
            }),
            ("learner that is a member", g0 + 72, &[2], {
                CopyError::Malformed(BadMembership(GroupId(1)))
            }),
            ("truncation the snapshot misses", g1 + 32, &[17], {
                CopyError::Malformed(SnapshotBehindTruncation(GroupId(4)))
            }),
            ("format version with groups", 16, &[0], CopyError::Malformed(FormatHasGroups)),
            ("body beyond the area", 12, &[0, 0, 1, 0], CopyError::BodyTooLarge(0x1_0000)),
        ];
        for (name, offset, bytes, expected) in cases {
            let mut area = base.clone();
            area[offset..offset + bytes.len()].copy_from_slice(bytes);
            reseal(&mut area);
            assert_eq!(decode_copy(&area, 0), Err(expected), "{name}");
        }
        let short = &base[..encoded_size_bytes(&sample(2, 3)) - 1];
        assert!(matches!(decode_copy(short, 0), Err(CopyError::Truncated { .. })));
        assert_eq!(decode_copy(&base[..20], 0), Err(CopyError::ShortHeader { length: 20 }));
    }

    #[test]
    fn write_plans_alternate_pairs_and_cover_the_encoded_bytes() {
        let format = Superblock::new(CLUSTER_ID, node(2), CoreIndex(3));
        let plan = WritePlan::format(&format);
        assert_eq!(plan.copy_indexes, [0, 1]);
        assert_eq!(plan.offsets_bytes, [0, 64 * 1024]);
        assert_eq!(plan.write_size_bytes, DISK_SECTOR_SIZE_BYTES);

        let mut durable = format;
        for expected_first in [2, 0, 2, 0] {
            let mut next = durable.next();
            next.groups = sample(next.sequence, 5).groups;
            let plan = WritePlan::successor(&durable, &next);
            assert_eq!(plan.sequence, next.sequence);
            assert_eq!(plan.copy_indexes, [expected_first, expected_first + 1]);
            assert_eq!(plan.offsets_bytes[1], plan.offsets_bytes[0] + 64 * 1024);
            durable = next;
        }
        let plan = WritePlan::successor(&largest(6), &largest(7));
        assert!(plan.write_size_bytes >= encoded_size_bytes(&largest(7)));
        assert!(plan.write_size_bytes.is_multiple_of(DISK_SECTOR_SIZE_BYTES));
        assert!(plan.write_size_bytes <= SUPERBLOCK_COPY_SIZE_BYTES);
    }

    #[test]
    fn encode_pair_fills_both_copies_of_the_pair() {
        let superblock = sample(9, 3);
        let mut out = vec![0xEE; 2 * SUPERBLOCK_COPY_SIZE_BYTES];
        encode_pair(&superblock, &mut out).unwrap();
        let (first, second) = out.split_at(SUPERBLOCK_COPY_SIZE_BYTES);
        assert_eq!(decode_copy(first, 2), Ok(superblock.clone()));
        assert_eq!(decode_copy(second, 3), Ok(superblock));
    }

    #[test]
    fn successor_plan_allows_groups_to_come_and_go() {
        let durable = sample(4, 3);
        let mut next = durable.next();
        next.groups.remove(0);
        next.groups.push(GroupMeta::new(GroupId(100)));
        assert_eq!(WritePlan::successor(&durable, &next).copy_indexes, [2, 3]);
    }

    #[test]
    #[should_panic(expected = "grows by exactly 1")]
    fn successor_plan_refuses_a_sequence_gap() {
        let _ = WritePlan::successor(&sample(4, 1), &sample(6, 1));
    }

    #[test]
    #[should_panic(expected = "promised went back")]
    fn successor_plan_refuses_a_promise_going_back() {
        let durable = sample(4, 2);
        let mut next = durable.next();
        next.groups[1].promised.round -= 1;
        let _ = WritePlan::successor(&durable, &next);
    }

    #[test]
    #[should_panic(expected = "node id changed")]
    fn successor_plan_refuses_a_new_identity() {
        let durable = sample(4, 2);
        let mut next = durable.next();
        next.node_id = node(7);
        let _ = WritePlan::successor(&durable, &next);
    }

    // --- Crash-point enumeration -------------------------------------------------------------

    /// The model keeps this prefix of every copy area. Every version it writes fits in it,
    /// and the encoder zero-fills the rest, so the rest is zero in every state.
    const MODEL_AREA_BYTES: usize = 2048;

    /// Groups in the model's superblocks: enough that a copy spans three 512-byte sectors,
    /// so tears inside the body happen.
    const MODEL_GROUPS_COUNT: u32 = 14;

    fn model_area(superblock: &Superblock, copy_index: usize) -> Vec<u8> {
        assert!(encoded_size_bytes(superblock) <= MODEL_AREA_BYTES);
        let mut area = encode(superblock, copy_index);
        area.truncate(MODEL_AREA_BYTES);
        area
    }

    /// A change the writer makes on top of `durable`: promises, membership, snapshots and the
    /// set of groups, steered by `salt` so that retries after a crash differ from the
    /// interrupted write.
    fn evolve(durable: &Superblock, salt: u64) -> Superblock {
        let mut next = durable.next();
        if next.groups.is_empty() {
            next.groups = sample(next.sequence, MODEL_GROUPS_COUNT).groups;
        }
        let step = next.sequence + salt * 5;
        let index = usize::try_from(step * 7).unwrap() % next.groups.len();
        let meta = &mut next.groups[index];
        meta.promised = Ballot { round: meta.promised.round + 1 + salt % 2, node: 1 + step % 3 };
        if step.is_multiple_of(3) {
            meta.membership_epoch += 1;
            meta.learners = if meta.learners.is_empty() { nodes(&[4]) } else { Vec::new() };
        }
        if step % 4 == 1 {
            meta.snapshot_slot = Some(Slot(meta.truncated_before.0 + 7));
            meta.truncated_before = Slot(meta.truncated_before.0 + 5);
        }
        if step % 5 == 2 {
            // Group ids are never reused, so a group's promise history is one line.
            let group = GroupId(u32::try_from(1000 + next.sequence * 8 + salt % 8).unwrap());
            if durable.group(group).is_none() {
                next.groups.push(GroupMeta::new(group));
            }
            if next.groups.len() > usize::try_from(MODEL_GROUPS_COUNT).unwrap() + 2 {
                next.groups.remove(0);
            }
        }
        next
    }

    /// Every state a copy can be left in by a crash while `new` was being written over `old`
    /// and not yet synced: each 512-byte sector that differs is independently old or new
    /// (the write lost, kept, or torn anywhere). Mask 0 is `old`; all ones is `new`.
    fn crash_states(old: &[u8], new: &[u8]) -> Vec<Vec<u8>> {
        let sector =
            |index: usize| index * DISK_TEAR_SIZE_BYTES..(index + 1) * DISK_TEAR_SIZE_BYTES;
        let differing: Vec<usize> = (0..MODEL_AREA_BYTES / DISK_TEAR_SIZE_BYTES)
            .filter(|index| old[sector(*index)] != new[sector(*index)])
            .collect();
        assert!(differing.len() <= 4, "model copies span at most four sectors");
        (0..1_u32 << differing.len())
            .map(|mask| {
                let mut area = old.to_vec();
                for (bit, index) in differing.iter().enumerate() {
                    if mask & (1 << bit) != 0 {
                        area[sector(*index)].copy_from_slice(&new[sector(*index)]);
                    }
                }
                area
            })
            .collect()
    }

    /// What a restarted writer recovers: `None` for a fresh file. A crash must never make
    /// the superblock unrecoverable.
    fn recover(disk: &[Vec<u8>]) -> Option<Recovered> {
        match choose(&refs(disk)) {
            Ok(Chosen::Fresh) => None,
            Ok(Chosen::Found(recovered)) => Some(recovered),
            Err(error) => panic!("a crash made the superblock unrecoverable: {error}"),
        }
    }

    /// The writer as the model sees it between two writes.
    #[derive(Clone)]
    struct ModelState {
        /// The four copy areas as the media holds them.
        disk: Vec<Vec<u8>>,
        /// The newest version known to be on the media (synced, or found by recovery);
        /// `None` before the format write.
        durable: Option<Superblock>,
        /// Versions written on top of `durable` whose writes crashed.
        interrupted: Vec<Superblock>,
        /// The recovery that must be followed by its rewrite before anything else.
        recovered: Option<Recovered>,
    }

    impl ModelState {
        fn blank() -> ModelState {
            ModelState {
                disk: vec![vec![0; MODEL_AREA_BYTES]; SUPERBLOCK_COPIES_COUNT],
                durable: None,
                interrupted: Vec::new(),
                recovered: None,
            }
        }

        /// The writer's next version and plan: format, recovery rewrite, or an update.
        fn next_write(&self, salt: u64) -> (Superblock, WritePlan) {
            match (&self.durable, &self.recovered) {
                (None, _) => {
                    let format = Superblock::new(CLUSTER_ID, node(2), CoreIndex(1));
                    let plan = WritePlan::format(&format);
                    (format, plan)
                }
                (Some(_), Some(recovered)) => recovered.rewrite(),
                (Some(durable), None) => {
                    let next = evolve(durable, salt);
                    let plan = WritePlan::successor(durable, &next);
                    (next, plan)
                }
            }
        }

        /// The write of `next` completed and its fdatasync returned.
        fn synced(&self, next: &Superblock, plan: &WritePlan, areas: &[Vec<u8>; 2]) -> Self {
            let mut disk = self.disk.clone();
            for (copy_index, area) in plan.copy_indexes.iter().zip(areas) {
                disk[*copy_index].clone_from(area);
            }
            let found = recover(&disk).expect("a synced write is found");
            assert_eq!(&found.superblock, next);
            ModelState {
                disk,
                durable: Some(next.clone()),
                interrupted: Vec::new(),
                recovered: None,
            }
        }

        /// A crash left the pair in `states` while `next` was written; the writer restarts.
        /// Checks the invariant: recovery finds the newest durable version or a version
        /// written on top of it (never older, never a mix, never an error), and no promise
        /// goes backwards.
        fn crashed(&self, next: &Superblock, plan: &WritePlan, states: [&Vec<u8>; 2]) -> Self {
            let mut disk = self.disk.clone();
            for (copy_index, state) in plan.copy_indexes.iter().zip(states) {
                disk[*copy_index].clone_from(state);
            }
            let recovered = recover(&disk);
            let Some(found) = &recovered else {
                assert!(self.durable.is_none(), "a formatted superblock came back fresh");
                return ModelState { disk, durable: None, interrupted: Vec::new(), recovered };
            };
            let chosen = &found.superblock;
            let mut interrupted = self.interrupted.clone();
            interrupted.push(next.clone());
            let is_durable = self.durable.as_ref() == Some(chosen);
            assert!(is_durable || interrupted.contains(chosen), "recovered {chosen:?}");
            if let Some(durable) = &self.durable {
                assert!(chosen.sequence >= durable.sequence);
                for meta in &chosen.groups {
                    if let Some(before) = durable.group(meta.group) {
                        assert!(meta.promised >= before.promised, "{}: promise back", meta.group);
                    }
                }
            }
            if !is_durable {
                interrupted.clear();
            }
            ModelState { disk, durable: Some(chosen.clone()), interrupted, recovered }
        }
    }

    #[derive(Default)]
    struct Explorer {
        crashes: usize,
        second_crashes: usize,
        interrupted_recoveries: usize,
        durable_recoveries: usize,
    }

    impl Explorer {
        /// Makes `writes_left` writes from `state`, and at each write also every crash state
        /// of the written pair, recovering and carrying on from each. A second crash is
        /// explored only during the recovery rewrite right after the first, followed by at
        /// most two more writes (bounding the tree).
        fn explore(&mut self, state: &ModelState, writes_left: usize, crashes_count: u64) {
            if writes_left == 0 {
                return;
            }
            let (next, plan) = state.next_write(crashes_count);
            let areas = plan.copy_indexes.map(|copy_index| model_area(&next, copy_index));
            self.explore(&state.synced(&next, &plan, &areas), writes_left - 1, crashes_count);

            let is_rewrite = state.recovered.is_some();
            if crashes_count >= 2 || (crashes_count == 1 && !is_rewrite) {
                return;
            }
            let writes_after = if crashes_count == 0 { writes_left - 1 } else { 2 };
            let [first, second] = plan.copy_indexes;
            // Crash before the pair write, after one copy, with either copy torn anywhere,
            // or after both but before the fdatasync: every combination of sector states.
            for state_first in crash_states(&state.disk[first], &areas[0]) {
                for state_second in crash_states(&state.disk[second], &areas[1]) {
                    let after = state.crashed(&next, &plan, [&state_first, &state_second]);
                    self.crashes += 1;
                    if crashes_count == 1 {
                        self.second_crashes += 1;
                    }
                    if after.durable == state.durable {
                        self.durable_recoveries += 1;
                    } else {
                        self.interrupted_recoveries += 1;
                    }
                    self.explore(&after, writes_left.min(writes_after + 1) - 1, crashes_count + 1);
                }
            }
        }
    }

    #[test]
    fn a_crash_at_any_point_of_eight_writes_recovers_the_durable_or_an_interrupted_version() {
        let blank = ModelState::blank();
        assert!(recover(&blank.disk).is_none());
        let mut explorer = Explorer::default();
        // The format write, then eight updates.
        explorer.explore(&blank, 9, 0);
        assert!(explorer.crashes > 10_000, "{}", explorer.crashes);
        assert!(explorer.second_crashes > 5_000);
        assert!(explorer.interrupted_recoveries > 1_000);
        assert!(explorer.durable_recoveries > 1_000);
    }

    #[test]
    fn reusing_the_sequence_of_an_interrupted_write_could_resurrect_it() {
        // Version 6 is durable in copies 0 and 1, version 5 in copies 2 and 3. Group 0 lives
        // in the first 512-byte sector of a copy, group 7 in the second.
        let durable = sample(6, MODEL_GROUPS_COUNT);
        let older = sample(5, MODEL_GROUPS_COUNT);
        let mut disk: Vec<Vec<u8>> = vec![
            model_area(&durable, 0),
            model_area(&durable, 1),
            model_area(&older, 2),
            model_area(&older, 3),
        ];
        let second_sector = DISK_TEAR_SIZE_BYTES..2 * DISK_TEAR_SIZE_BYTES;
        // Writing version 7 crashes: copy 2 gets the new first sector (header included) but
        // keeps its old second sector; copy 3 is untouched.
        let mut interrupted = durable.next();
        interrupted.groups[0].promised.round += 10;
        interrupted.groups[7].promised.round += 10;
        let new = model_area(&interrupted, 2);
        disk[2][..DISK_TEAR_SIZE_BYTES].copy_from_slice(&new[..DISK_TEAR_SIZE_BYTES]);
        assert_eq!(decode_copy(&disk[2], 2), Err(CopyError::BodyChecksum));
        let Some(found) = recover(&disk) else { panic!() };
        assert_eq!(found.superblock, durable);
        // The intact header of the interrupted 7 pushes the rewrite to 9.
        assert_eq!(found.rewrite_sequence, 9);

        // Had the writer reused 7 for content with the same second sector, a crash that
        // lands only that sector in copy 2 and all of copy 3 revives the old 7 next to the
        // new 7: a crash alone would look like corruption.
        let mut reused = durable.next();
        reused.groups[0].promised.round += 20;
        reused.groups[7].promised.round += 10;
        let mut revived = disk.clone();
        revived[2][second_sector.clone()]
            .copy_from_slice(&model_area(&reused, 2)[second_sector.clone()]);
        revived[3] = model_area(&reused, 3);
        assert_eq!(decode_copy(&revived[2], 2), Ok(interrupted.clone()));
        let expected = RecoveryError::Disagreement { sequence: 7, copy_indexes: [2, 3] };
        assert_eq!(choose(&refs(&revived)), Err(expected));

        // With the rewrite at 9 the same revival is harmless: 9 wins when it landed, and
        // otherwise the revived 7 is an interrupted successor of 6 (no promise goes back).
        let (rewrite, plan) = found.rewrite();
        assert_eq!((rewrite.sequence, plan.copy_indexes), (9, [2, 3]));
        let mut after = revived.clone();
        after[3] = model_area(&rewrite, 3);
        assert_eq!(recover(&after).map(|found| found.superblock), Some(rewrite));
        after[3] = model_area(&older, 3);
        assert_eq!(recover(&after).map(|found| found.superblock), Some(interrupted));
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(bound).unwrap()).unwrap()
        }
    }

    #[test]
    fn promises_never_go_back_across_a_long_run_of_random_crashes() {
        let mut random = XorShift(0x5EED_0F5B);
        let mut state = ModelState::blank();
        // The highest promise each group ever had in a version found on the media.
        let mut promised_floor = std::collections::BTreeMap::new();
        let mut crashes_count = 0_u64;
        for step in 0..3_000_u64 {
            let (next, plan) = state.next_write(step);
            let areas = plan.copy_indexes.map(|copy_index| model_area(&next, copy_index));
            state = if random.below(3) == 0 {
                crashes_count += 1;
                let states = plan.copy_indexes.map(|copy_index| {
                    let [area_index] = [usize::from(copy_index == plan.copy_indexes[1])];
                    let states = crash_states(&state.disk[copy_index], &areas[area_index]);
                    states[random.below(states.len())].clone()
                });
                state.crashed(&next, &plan, [&states[0], &states[1]])
            } else {
                state.synced(&next, &plan, &areas)
            };
            for meta in state.durable.iter().flat_map(|superblock| &superblock.groups) {
                let floor = promised_floor.entry(meta.group).or_insert(meta.promised);
                assert!(meta.promised >= *floor, "{}: promise went back at {step}", meta.group);
                *floor = meta.promised;
            }
        }
        assert!(crashes_count > 900);
        assert!(state.durable.unwrap().sequence > 1_000);
    }

    // --- Fuzzing ------------------------------------------------------------------------------

    /// Anything `decode_copy` accepts is well formed: it encodes again, to the same value.
    fn check_decoded(area: &[u8], copy_index: usize) {
        if let Ok(superblock) = decode_copy(area, copy_index) {
            let again = encode(&superblock, copy_index);
            assert_eq!(decode_copy(&again, copy_index), Ok(superblock));
        }
    }

    #[test]
    fn decode_and_choose_never_panic_on_random_or_mutated_areas() {
        let mut random = XorShift(0xF0_22_ED);
        let valid: Vec<(Vec<u8>, usize)> = [(2, 0, 0), (2, 5, 1), (3, 1, 2), (5, 9, 3), (0, 0, 1)]
            .iter()
            .map(|&(sequence, groups_count, copy_index)| {
                let superblock = if sequence == 0 {
                    Superblock::new(CLUSTER_ID, node(2), CoreIndex(3))
                } else {
                    sample(sequence, groups_count)
                };
                let mut area = encode(&superblock, copy_index);
                area.truncate(4096);
                (area, copy_index)
            })
            .collect();
        let mut accepted_count = 0;
        for iteration in 0..10_000 {
            let (base, base_index) = &valid[random.below(valid.len())];
            let used = base.len().min(2048);
            let mut area = base.clone();
            match random.below(8) {
                0 => {
                    area =
                        (0..random.below(4097)).map(|_| random.next().to_le_bytes()[0]).collect();
                }
                1 => {
                    for _ in 0..=random.below(8) {
                        area[random.below(used)] = random.next().to_le_bytes()[0];
                    }
                }
                2 => area.truncate(random.below(used + 1)),
                3 => {
                    for _ in 0..=random.below(8) {
                        let at = SUPERBLOCK_HEADER_SIZE_BYTES + random.below(used - 32);
                        area[at] = random.next().to_le_bytes()[0];
                    }
                    reseal(&mut area);
                }
                4 => {
                    let at = 8 + random.below(HEADER_CHECKSUM_OFFSET - 8 - 4);
                    area[at] = random.next().to_le_bytes()[0];
                    reseal(&mut area);
                }
                5 => {
                    let body_size = u32::try_from(random.below(2048)).unwrap();
                    area[12..16].copy_from_slice(&body_size.to_le_bytes());
                    for byte in &mut area[SUPERBLOCK_HEADER_SIZE_BYTES..] {
                        *byte = random.next().to_le_bytes()[0] & 0x03;
                    }
                    reseal(&mut area);
                }
                6 => {
                    let at = random.below(used);
                    area[at] ^= 1 << random.below(8);
                }
                _ => {
                    // A plausible group count with garbage entries behind it.
                    let count = u32::try_from(random.below(300)).unwrap();
                    let at = SUPERBLOCK_HEADER_SIZE_BYTES + 20;
                    area[at..at + 4].copy_from_slice(&count.to_le_bytes());
                    reseal(&mut area);
                }
            }
            let copy_index = if random.below(2) == 0 {
                *base_index
            } else {
                random.below(SUPERBLOCK_COPIES_COUNT)
            };
            if decode_copy(&area, copy_index).is_ok() {
                accepted_count += 1;
            }
            check_decoded(&area, copy_index);

            let mut areas: Vec<Vec<u8>> = (0..SUPERBLOCK_COPIES_COUNT)
                .map(|_| match random.below(3) {
                    0 => Vec::new(),
                    1 => vec![0; 4096],
                    _ => {
                        let (other, other_index) = &valid[random.below(valid.len())];
                        let _ = other_index;
                        other.clone()
                    }
                })
                .collect();
            areas[copy_index] = area;
            if let Ok(Chosen::Found(Recovered { superblock, copies, .. })) = choose(&refs(&areas)) {
                let index = copies
                    .iter()
                    .position(|status| {
                        *status == CopyStatus::Valid { sequence: superblock.sequence }
                    })
                    .unwrap_or_else(|| panic!("iteration {iteration}: chosen copy not reported"));
                assert_eq!(decode_copy(&areas[index], index).as_ref(), Ok(&superblock));
            }
        }
        // Mutations that keep the copy valid (bytes past the body, identical rewrites) exist,
        // but most must be refused.
        assert!(accepted_count < 5_000, "{accepted_count}");
    }
}
