//! Seeds: readable cases, encoded into the corpus (`seeds_are_in_the_corpus`). Each says what it
//! exercises; the reproducers of known bugs are named after them.

use super::record::{Body, Built, Burst, Edit, Misplace, Placement};
use super::recovery::{
    BatchSpec, EntryKind, Field, Forge, Mutation, PAYLOAD_LONG_FLAG, RecordSpec, Spot,
};
use super::{Bytes, record, recovery};

/// `length` bytes that differ from their neighbours: `index * step + start`, modulo 256.
fn pattern(length: usize, step: usize, start: usize) -> Vec<u8> {
    (0..length).map(|index| (index * step + start).to_le_bytes()[0]).collect()
}

/// A payload length with the long-payload flag set (up to 4000 bytes, not 256).
fn long(length: u16) -> u16 {
    PAYLOAD_LONG_FLAG | length
}

fn built(kind: u8, payload_bytes: usize) -> Built {
    Built {
        kind,
        group: 3,
        slot: 42,
        round: 5,
        node: 2,
        misplace: Misplace::None,
        batch_back_units: 1,
        payload: Bytes(pattern(payload_bytes, 31, 7)),
        edits: Vec::new(),
        reseal_payload: false,
        reseal_header: false,
        cut: None,
    }
}

fn edited(mut built: Built, edits: &[(u16, u8)], reseal_header: bool) -> Built {
    built.edits = edits.iter().map(|(at, value)| Edit { at: *at, value: *value }).collect();
    built.reseal_header = reseal_header;
    built
}

fn case(body: Body) -> record::Case {
    record::Case {
        prefix_units: 2,
        filler: 0,
        body,
        trailer: Bytes(vec![0; 64]),
        placement: Placement::Scanned,
        search_start: 0,
        flips: vec![0, 37, 100, 300, 511, 512, 700],
        burst: Some(Burst { at: 90, pattern: 0x8000_0001 }),
    }
}

fn placed(body: Body, placement: Placement) -> record::Case {
    record::Case { placement, ..case(body) }
}

/// A record whose header, resealed, says it sits at an unaligned offset, decoded there.
pub fn unaligned_offset_accepted() -> record::Case {
    placed(Body::Built(edited(built(0, 16), &[(48, 40)], true)), Placement::Claimed)
}

/// A record whose header, resealed, says it sits 16 bytes before 4 GiB, decoded there.
pub fn record_past_the_largest_segment_accepted() -> record::Case {
    let edits = [(48, 0xf0), (49, 0xff), (50, 0xff), (51, 0xff)];
    placed(Body::Built(edited(built(1, 100), &edits, true)), Placement::Claimed)
}

pub fn record_cases() -> Vec<record::Case> {
    let mut cases = Vec::new();
    // Valid records of every kind and of payload sizes around the alignment.
    for (kind, length) in [(0, 0), (1, 1), (2, 15), (3, 16), (0, 17), (1, 1000), (2, 4096)] {
        cases.push(case(Body::Built(built(kind, length))));
    }
    // Raw bytes: nothing, a zeroed header, a zeroed page, the magic then garbage.
    cases.push(case(Body::Raw(Bytes(Vec::new()))));
    cases.push(case(Body::Raw(Bytes(vec![0; 64]))));
    cases.push(record::Case { prefix_units: 0, ..case(Body::Raw(Bytes(vec![0; 4096]))) });
    let mut magic = b"KLRC".to_vec();
    magic.extend(pattern(200, 13, 1));
    cases.push(case(Body::Raw(Bytes(magic))));
    cases.push(record::Case { filler: 0xa5, ..case(Body::Raw(Bytes(vec![0x5a; 300]))) });
    // Torn: the last byte, half the header, into the payload.
    for cut in [1, 40, 60] {
        cases.push(case(Body::Built(Built { cut: Some(cut), ..built(0, 100) })));
    }
    // Authentic headers of a newer format: version, kind, flags, batch offset, length.
    for edit in [(4, 2), (6, 9), (7, 1), (54, 1), (15, 2)] {
        cases.push(case(Body::Built(edited(built(1, 32), &[edit], true))));
    }
    // A damaged header; a damaged payload; nonzero padding.
    cases.push(case(Body::Built(edited(built(0, 32), &[(20, 0xee)], false))));
    cases.push(case(Body::Built(edited(built(0, 32), &[(70, 0xee)], false))));
    cases.push(case(Body::Built(edited(built(0, 1), &[(66, 1)], false))));
    // A payload edit with both checksums recomputed: valid again.
    let mut resealed = edited(built(2, 32), &[(70, 0xee)], true);
    resealed.reseal_payload = true;
    cases.push(case(Body::Built(resealed)));
    // Misplaced: another segment, a later offset; decoded where the header says, too.
    let other_segment = Built { misplace: Misplace::Segment(8), ..built(0, 20) };
    cases.push(case(Body::Built(other_segment.clone())));
    cases.push(placed(Body::Built(other_segment), Placement::Claimed));
    let later = Built { misplace: Misplace::LaterUnits(3), ..built(3, 0) };
    cases.push(placed(Body::Built(later), Placement::Claimed));
    // Arbitrary placements: unaligned, past every segment.
    let arbitrary = Placement::Arbitrary { segment: 7, offset: 40 };
    cases.push(placed(Body::Built(built(0, 8)), arbitrary));
    let far = Placement::Arbitrary { segment: u64::MAX, offset: u64::MAX };
    cases.push(placed(Body::Built(built(0, 8)), far));
    // Zeroed space before a valid record (a lost write), searched from the start.
    cases.push(record::Case { prefix_units: 16, ..case(Body::Built(built(1, 48))) });
    cases.push(unaligned_offset_accepted());
    cases.push(record_past_the_largest_segment_accepted());
    cases
}

fn spec(kind: EntryKind, group: u8, slot: u8, length: u16) -> RecordSpec {
    RecordSpec { kind, group, slot, length, fill: 0x41, forge: None }
}

fn accepted(group: u8, slot: u8, length: u16) -> RecordSpec {
    spec(EntryKind::Accepted, group, slot, length)
}

fn batch(records: Vec<RecordSpec>) -> BatchSpec {
    BatchSpec { records }
}

/// Four batches of small and long records, one sector each once sealed, over 2-sector
/// segments: segments 1 and 2 full, 3 the spare (or where a fifth batch goes).
fn workload() -> Vec<BatchSpec> {
    vec![
        batch(vec![accepted(0, 1, 40), accepted(1, 1, long(3000))]),
        batch(vec![accepted(2, 2, 100), spec(EntryKind::Chosen, 0, 1, 0)]),
        batch(vec![accepted(0, 3, long(3500)), accepted(3, 4, 7)]),
        batch(vec![accepted(1, 5, 200), accepted(2, 6, long(2000)), accepted(0, 1, 9)]),
    ]
}

fn case_with(
    batches: Vec<BatchSpec>,
    tail: Option<BatchSpec>,
    mutations: Vec<Mutation>,
) -> recovery::Case {
    recovery::Case { segment_sectors: 0, batches, tail, tail_steps: 1, crash_seed: 1, mutations }
}

fn damaged(mutations: Vec<Mutation>) -> recovery::Case {
    case_with(workload(), None, mutations)
}

fn at_record(record: u16, delta: u16) -> Spot {
    Spot::Record { record, delta }
}

/// Rot in the first batch's payload, and a later batch of a newer format: recovery must
/// stop at the newer header, not truncate it as the torn tail.
pub fn unreadable_header_after_damage() -> recovery::Case {
    case_with(
        vec![batch(vec![accepted(0, 1, 32)]), batch(vec![accepted(1, 2, 32)])],
        None,
        vec![
            Mutation::FlipBit { spot: at_record(0, 64), bit: 0 },
            Mutation::Reseal { record: 2, field: Field::Version, value: 0 },
        ],
    )
}

/// Rot in the first batch's end, so its record is applied at the corruption; the second
/// batch, which vouches for it, is then torn (a lost piece of its payload).
pub fn torn_batch_after_corruption() -> recovery::Case {
    case_with(
        vec![batch(vec![accepted(0, 1, 0)]), batch(vec![accepted(1, 2, long(1500))])],
        None,
        vec![
            Mutation::FlipBit { spot: at_record(1, 0), bit: 0 },
            Mutation::TearPiece { spot: at_record(2, 600), garbage: false },
        ],
    )
}

/// A client's value carries a whole record forged for where it lands; the record holding
/// it rots, and a later batch vouches that it was durable.
pub fn forged_record_in_a_damaged_payload() -> recovery::Case {
    let forge = Forge { at_units: 1, group: 2, slot: 7, later_batch: false };
    let carrier = RecordSpec { forge: Some(forge), ..accepted(0, 1, 200) };
    case_with(
        vec![batch(vec![carrier]), batch(vec![accepted(1, 2, 32)])],
        None,
        vec![Mutation::FlipBit { spot: at_record(0, 64), bit: 0 }],
    )
}

/// The first batch of a fresh log is torn by the power loss, and its first 512-byte piece
/// comes back as garbage.
pub fn torn_first_batch_with_garbage() -> recovery::Case {
    recovery::Case {
        tail_steps: 3,
        ..case_with(
            Vec::new(),
            Some(batch(vec![accepted(0, 1, 16)])),
            vec![Mutation::TearPiece {
                spot: Spot::Absolute { segment: 0, offset: 0 },
                garbage: true,
            }],
        )
    }
}

pub fn recovery_cases() -> Vec<recovery::Case> {
    let tail = || Some(batch(vec![accepted(3, 9, long(1500)), accepted(0, 2, 600)]));
    let mut cases = vec![
        case_with(Vec::new(), None, Vec::new()),
        case_with(vec![batch(vec![accepted(1, 1, 5)])], None, Vec::new()),
        damaged(Vec::new()),
        case_with(
            vec![batch(vec![
                spec(EntryKind::Chosen, 1, 1, 0),
                spec(EntryKind::Chosen, 1, 2, 0),
                spec(EntryKind::Truncated, 1, 2, 24),
            ])],
            None,
            Vec::new(),
        ),
    ];
    // Power losses with the last batch staged (0 rounds), written but not synced (1: kept,
    // lost, torn in its payload, torn before a record), and synced (2).
    for (tail_steps, crash_seed) in [(0, 1), (1, 1), (1, 2), (1, 5), (1, 16), (2, 1)] {
        let case = case_with(workload(), tail(), Vec::new());
        cases.push(recovery::Case { tail_steps, crash_seed, ..case });
    }
    // The power loss keeps the unsynced batch's first record and tears its second (crash
    // seed 5): the batch contributes nothing.
    let long_second = Some(batch(vec![accepted(3, 9, 20), accepted(0, 2, long(1500))]));
    let case = case_with(workload(), long_second, Vec::new());
    cases.push(recovery::Case { crash_seed: 5, ..case });
    // The unsynced batch (the start of segment 3) mangled further: a garbage piece, a short
    // file, zeros, garbage after it.
    let in_tail = |offset: u32| Spot::Absolute { segment: 2, offset };
    for mutation in [
        Mutation::TearPiece { spot: in_tail(600), garbage: true },
        Mutation::Truncate { spot: in_tail(1000) },
        Mutation::Zero { spot: in_tail(64), length: 700 },
        Mutation::Garbage { spot: in_tail(5000), bytes: Bytes(vec![0x99; 100]) },
    ] {
        let case = case_with(workload(), tail(), vec![mutation]);
        cases.push(recovery::Case { crash_seed: 5, ..case });
    }
    // Damage to durable batches: a zeroed piece, bit rot in a payload and in a header,
    // a zeroed batch, a short file mid-segment, garbage.
    cases.push(damaged(vec![Mutation::TearPiece { spot: at_record(2, 0), garbage: false }]));
    cases.push(damaged(vec![Mutation::FlipBit { spot: at_record(0, 70), bit: 3 }]));
    cases.push(damaged(vec![Mutation::FlipBit { spot: at_record(2, 20), bit: 1 }]));
    cases.push(damaged(vec![Mutation::Zero { spot: at_record(2, 0), length: 4096 }]));
    cases.push(damaged(vec![Mutation::Truncate { spot: at_record(3, 10) }]));
    let garbage = Bytes(pattern(700, 7, 3));
    cases.push(damaged(vec![Mutation::Garbage { spot: at_record(5, 8), bytes: garbage }]));
    // Misdirected writes: a piece copied within a segment, to another one, to the spare.
    cases.push(damaged(vec![Mutation::CopyPiece { from: at_record(0, 0), to: at_record(4, 0) }]));
    cases.push(damaged(vec![Mutation::CopyPiece {
        from: Spot::Absolute { segment: 0, offset: 0 },
        to: Spot::Absolute { segment: 1, offset: 4096 },
    }]));
    cases.push(damaged(vec![Mutation::CopyPiece {
        from: at_record(9, 0),
        to: Spot::Absolute { segment: 2, offset: 0 },
    }]));
    // Garbage in the empty spare segment after the last one in use.
    cases.push(damaged(vec![Mutation::TearPiece {
        spot: Spot::Absolute { segment: 2, offset: 5000 },
        garbage: true,
    }]));
    // Authentic headers of a newer format: recovery must stop.
    for (record, field) in [(0, Field::Version), (3, Field::Kind), (6, Field::PayloadLength)] {
        cases.push(damaged(vec![Mutation::Reseal { record, field, value: 0 }]));
    }
    cases.push(damaged(vec![Mutation::Reseal { record: 7, field: Field::Flags, value: 0 }]));
    // A client's forged record inside a valid payload is never read.
    let forge = Forge { at_units: 0, group: 1, slot: 3, later_batch: true };
    let mut forging = workload();
    forging[1].records[0].forge = Some(forge);
    cases.push(case_with(forging, None, Vec::new()));
    cases.push(unreadable_header_after_damage());
    cases.push(forged_record_in_a_damaged_payload());
    cases.push(torn_first_batch_with_garbage());
    cases.push(torn_batch_after_corruption());
    cases
}
