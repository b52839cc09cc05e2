//! Fuzz harness for the log's record decoder and recovery scanner, on stable Rust.
//!
//! Each target reads arbitrary bytes as a structured case (`arbitrary`) and checks what the
//! framing contract (`src/log/format.rs`, `docs/design/log-format.md`) and the recovery rules
//! (`src/log/recovery.rs`) promise, not only that nothing panics:
//!
//! - `record`: `decode_record`, `decode_header` and `find_next_valid_record` on arbitrary bytes
//!   at arbitrary (segment, offset) placements agree with a reference written from the
//!   documented validity rules (same verdict, same first failing check); lengths they report
//!   stay within the input; a record that decodes re-encodes to the same bytes; every single
//!   flipped bit and every burst of up to 32 bits in a valid record is rejected.
//! - `recovery`: batches written by the real `Writer` over `SimDisk`, a power loss, then
//!   mutations (bit flips, zeroed ranges, torn or garbage 512-byte pieces, misdirected pieces,
//!   garbage, short files, authentic headers of a newer format, client bytes forging a
//!   record). `recover` never panics; it stops only on an authentic header it cannot read and
//!   truncates no such header; every indexed record is valid where the index says and was
//!   written there; writing resumes past every recovered record and every leftover is wiped;
//!   every acknowledged batch no mutation touched is recovered, and losing records before one
//!   is reported as corruption; a plain power loss, even with the unsynced tail mangled,
//!   reports no corruption and recovers exactly the acknowledged records, plus the unsynced
//!   batch whole or not at all.
//!
//! Each target has a committed corpus, `tests/fuzz-corpus/<target>/`, one file per input,
//! named by a hash of its content (the built-in seeds below, plus inputs explorations found).
//! `<target>_tests::corpus_replays` runs every file; `<target>_tests::explores` mutates corpus
//! entries for a bounded number of iterations with a seeded generator, in every test run.
//! Long campaigns (`perf/fuzz_log.sh` runs one):
//!
//! ```text
//! KLEIN_FUZZ_SECONDS=300 KLEIN_FUZZ_SEED=42 KLEIN_FUZZ_SAVE=1 \
//!     cargo test --release --test fuzz_log explores -- --nocapture --test-threads=1
//! ```
//!
//! `KLEIN_FUZZ_ITERATIONS` sets the iterations per target, `KLEIN_FUZZ_SECONDS` a time bound,
//! `KLEIN_FUZZ_SEED` the generator's seed. The coverage proxy is an input's outcome signature
//! (for recovery: fatal or not, corruption, the torn tail's error kind, power loss or not,
//! the first mutation; for the decoder: the verdicts at the body and at the placement);
//! `KLEIN_FUZZ_SAVE=1` writes into the corpus the built-in seeds, inputs whose coarse signature
//! is new, and failing inputs. A panic or a violated property writes the input to
//! `target/fuzz-crashes/` and prints the command that replays it. Violations of known,
//! reported bugs ([`Property::is_known_bug`]) are counted, not failed; each has a reproducer in
//! the corpus and an ignored test that passes once it is fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fmt;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use klein::constants::{LOG_RECORD_PAYLOAD_BYTES_MAX, LOG_SEGMENT_SIZE_BYTES_MAX};
use klein::log::format::{
    HeaderError, PayloadError, RECORD_ALIGNMENT_BYTES, RECORD_HEADER_SIZE_BYTES, RECORD_MAGIC,
    RecordError, RecordHeader, append_record, decode_header, decode_record, find_next_valid_record,
};

/// Longest byte string a [`Bytes`] field takes from the input.
const BYTES_MAX: usize = 4096;
/// Longest input the exploration builds; longer mutants are cut.
const INPUT_BYTES_MAX: usize = 16 * 1024;
/// Most byte-level mutations applied to one corpus entry to make a new input.
const MUTATIONS_PER_INPUT_MAX: usize = 4;
/// Failures after which an exploration stops early (each one is saved and printed).
const FAILURES_MAX: usize = 5;
/// The generator's seed when `KLEIN_FUZZ_SEED` is not set.
const SEED_DEFAULT: u64 = 0x6b6c_6569_6e2d_667a;

/// Bytes taken from the input: a little-endian u16 length (modulo [`BYTES_MAX`] + 1, cut to
/// what is left), then that many bytes. Cheaper and easier to write by hand than `Vec<u8>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Bytes> {
        let length = usize::from(u16::arbitrary(u)?) % (BYTES_MAX + 1);
        Ok(Bytes(u.bytes(length.min(u.len()))?.to_vec()))
    }
}

/// Writes a case as the bytes `arbitrary` reads it back from (integers little-endian, `bool`
/// and `Option` as one byte, `Vec` as a continue byte before each element and a stop byte,
/// enum variants as a u32 that the derive's multiply-shift maps to the variant). Seeds are
/// written as readable cases and encoded; `seeds_round_trip` checks the two agree.
trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

macro_rules! encode_integers {
    ($($type:ty),*) => {
        $(impl Encode for $type {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        })*
    };
}

encode_integers!(u8, u16, u32, u64);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(value) = self {
            value.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for element in self {
            true.encode(out);
            element.encode(out);
        }
        false.encode(out);
    }
}

impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        assert!(self.0.len() <= BYTES_MAX, "a seed's bytes fit a Bytes field");
        u16::try_from(self.0.len()).expect("BYTES_MAX fits u16").encode(out);
        out.extend_from_slice(&self.0);
    }
}

/// Encodes the variant `index` of an enum with `count` variants: the smallest u32 that the
/// derive's `(u64::from(x) * count) >> 32` maps to `index`.
fn encode_variant(index: u32, count: u32, out: &mut Vec<u8>) {
    assert!(index < count);
    let value = (u64::from(index) << 32).div_ceil(u64::from(count));
    u32::try_from(value).expect("below 2^32 for index < count").encode(out);
}

/// `Encode` for a struct: its fields in declaration order, as the derive reads them.
macro_rules! encode_struct {
    ($type:ident { $($field:ident),* }) => {
        impl Encode for $type {
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$field.encode(out);)*
            }
        }
    };
}

/// Encodes a case into input bytes.
fn encoded<T: Encode>(case: &T) -> Vec<u8> {
    let mut out = Vec::new();
    case.encode(&mut out);
    out
}

/// A promise of the contract, each with its own name in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Property {
    /// Decoder and documented rules disagree on a verdict or on the first failing check.
    DecoderFollowsTheRules,
    /// A reported length or slice reaches outside the input, or misstates it.
    LengthsStayWithinInput,
    /// A decoded record does not re-encode to the bytes it was decoded from.
    DecodedRecordReencodes,
    /// The decoder accepts an authentic header that the encoder refuses to write (offset not
    /// 16-aligned, or the record would end past the largest segment). Known, minor.
    DecoderAcceptsOnlyPlaceableHeaders,
    /// A single flipped bit or a short burst in a valid record is not rejected as documented.
    CorruptionIsDetected,
    /// `find_next_valid_record` disagrees with its documented definition.
    FindFollowsTheRules,
    /// Recovery stopped although no authentic unreadable header is in the log, or named the
    /// wrong one.
    FatalOnlyOnUnreadableHeaders,
    /// An authentic header this build cannot read was truncated or wiped. Known bug.
    UnreadableHeadersAreNeverTruncated,
    /// The index names a record that is not valid where it says, or disagrees with it.
    IndexedRecordsAreValid,
    /// The index or the truncation markers hold a record the writer never wrote.
    RecordsComeFromTheWriter,
    /// A record forged inside the payload of a damaged record whose header still decodes was
    /// read as a record: the search must start past the damaged record. Known bug.
    ForgedRecordsAreNotRead,
    /// The resume point, torn tail, wipes or suspects are not where the rules put them.
    ResumeFollowsTheRules,
    /// Writing would resume (and the wipes zero) before the end of a record in the index.
    /// Known bug: records of a batch applied at a corruption are not counted in the end of
    /// the batches, so a torn tail after them resumes before them.
    RecoveredRecordsAreNotOverwritten,
    /// Nonzero bytes remain past the resume point after the wipes.
    LeftoversAreWiped,
    /// A plain power loss (with only the unsynced tail damaged) was reported as corruption or
    /// stopped recovery.
    PowerLossIsNotCorruption,
    /// A log where no segment holds a valid record recovers as an empty log: recovery scans
    /// such segments as earlier ones (no torn-tail allowance), so garbage a power loss left
    /// is reported as corruption, and only the first segment is wiped. Known bug.
    EmptyLogIsRecoveredAsEmpty,
    /// An acknowledged batch no mutation touched was not recovered.
    UntouchedBatchesAreRecovered,
    /// After a plain power loss the index is not exactly the acknowledged records, plus the
    /// unsynced batch whole or not at all.
    PowerLossRecoversExactlyTheDurableBatches,
    /// Acknowledged records before an intact later batch were lost without a corruption
    /// report.
    LostRecordsAreReported,
}

impl Property {
    /// Whether the violation is a known bug, reported and left for the owner of the code:
    /// explorations count it instead of failing, and an ignored test reproduces it.
    fn is_known_bug(self) -> bool {
        // Every bug this fuzzer found is fixed; a new one is listed here (with its reproducer
        // in an ignored test) only while its fix is pending.
        let _ = self;
        false
    }
}

/// A property that did not hold, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Violation {
    property: Property,
    detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.property, self.detail)
    }
}

/// What a target says about one input: a short signature of what happened (the coverage
/// proxy, `coarse|detail`: exploration keeps inputs with a new signature, `KLEIN_FUZZ_SAVE`
/// writes those with a new coarse part), or the first property that did not hold.
type Outcome = Result<String, Violation>;

/// The result of one check.
type Checked = Result<(), Violation>;

/// Fails with `property` unless `condition` holds.
fn ensure(condition: bool, property: Property, detail: impl FnOnce() -> String) -> Checked {
    if condition { Ok(()) } else { Err(Violation { property, detail: detail() }) }
}

mod harness;
mod record;
mod recovery;
mod reference;
mod seeds;

use harness::*;
use reference::*;

/// Asserts that `case` passes every property, known bugs included.
fn assert_passes(target: Target, data: &[u8]) {
    if let Err(violation) = target.run(data) {
        panic!("{} input {}: {violation}", target.name(), input_name(data));
    }
}

#[test]
fn seeds_round_trip_through_arbitrary() {
    for case in seeds::record_cases() {
        let decoded = record::Case::arbitrary(&mut Unstructured::new(&encoded(&case)));
        assert_eq!(decoded.ok(), Some(case));
    }
    for case in seeds::recovery_cases() {
        let decoded = recovery::Case::arbitrary(&mut Unstructured::new(&encoded(&case)));
        assert_eq!(decoded.ok(), Some(case));
    }
}

/// Every built-in seed is in the committed corpus (`KLEIN_FUZZ_SAVE=1` writes them).
#[test]
fn seeds_are_in_the_corpus() {
    for target in [Target::Record, Target::Recovery] {
        for data in target.seeds() {
            let name = input_name(&data);
            if is_saving() {
                save(&target.corpus_dir(), &name, &data);
            }
            let path = target.corpus_dir().join(&name);
            assert!(path.exists(), "seed {} missing; run with KLEIN_FUZZ_SAVE=1", path.display());
        }
    }
}

/// Replays the input file named by `KLEIN_FUZZ_REPLAY`, strictly (a known bug fails too).
#[test]
#[ignore = "run by hand: KLEIN_FUZZ_REPLAY=path cargo test --release --test fuzz_log replay"]
fn replay() {
    let path = env::var("KLEIN_FUZZ_REPLAY").expect("KLEIN_FUZZ_REPLAY names an input file");
    let data = fs::read(&path).expect("the input file is readable");
    let target = Target::of_path(&path);
    let mut u = Unstructured::new(&data);
    match target {
        Target::Record => println!("{:#?}", record::Case::arbitrary(&mut u)),
        Target::Recovery => println!("{:#?}", recovery::Case::arbitrary(&mut u)),
    }
    assert_passes(target, &data);
    println!("{} input {path}: every property holds", target.name());
}

mod record_tests {
    use super::*;

    #[test]
    fn corpus_replays() {
        replay_corpus(Target::Record);
    }

    #[test]
    fn explores() {
        explore(Target::Record);
    }

    /// Regression found by this fuzzer (fixed in `format.rs`): `decode_header` accepted an
    /// authentic header whose offset is not 16-aligned, or whose record would end past
    /// `LOG_SEGMENT_SIZE_BYTES_MAX`, which no writer produces (`HeaderError::BadOffset` now).
    #[test]
    fn decoder_rejects_headers_the_encoder_refuses() {
        assert_passes(Target::Record, &encoded(&seeds::unaligned_offset_accepted()));
        let far = seeds::record_past_the_largest_segment_accepted();
        assert_passes(Target::Record, &encoded(&far));
    }
}

mod recovery_tests {
    use super::*;

    #[test]
    fn corpus_replays() {
        replay_corpus(Target::Recovery);
    }

    #[test]
    fn explores() {
        explore(Target::Recovery);
    }

    /// Regression found by this fuzzer (fixed in `recovery.rs`): damage before an authentic
    /// header this build cannot read was cut as a torn tail and the header wiped, instead of
    /// stopping recovery.
    #[test]
    fn an_unreadable_header_after_damage_stops_recovery() {
        assert_passes(Target::Recovery, &encoded(&seeds::unreadable_header_after_damage()));
    }

    /// Regression found by this fuzzer (fixed in `recovery.rs`): after a damaged record whose
    /// header checks, the search went on at the next 16 bytes instead of past the record, so a
    /// record a client forged inside the damaged payload was indexed.
    #[test]
    fn a_record_forged_in_a_damaged_payload_is_not_read() {
        assert_passes(Target::Recovery, &encoded(&seeds::forged_record_in_a_damaged_payload()));
    }

    /// Regression found by this fuzzer (fixed in `recovery.rs`): records applied at a
    /// corruption did not move the resume point, so a torn tail after them resumed (and wiped)
    /// before records the index holds.
    #[test]
    fn a_torn_tail_after_corruption_resumes_past_the_recovered_records() {
        assert_passes(Target::Recovery, &encoded(&seeds::torn_batch_after_corruption()));
    }

    /// Regression found by this fuzzer (fixed by the streaming `Recovery`): with no valid
    /// record anywhere, garbage a torn first batch left was reported as corruption.
    #[test]
    fn a_torn_first_batch_with_garbage_is_a_power_loss() {
        assert_passes(Target::Recovery, &encoded(&seeds::torn_first_batch_with_garbage()));
    }
}
