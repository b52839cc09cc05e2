//! Fuzz harness for what a Redis client can send (issue 6): the RESP request parser and the
//! command dispatch into the state machine, on stable Rust, after `fuzz_log` and `fuzz_wire`.
//!
//! - `parser`: arbitrary bytes, also cut into arbitrary pieces. `parse_request` never panics,
//!   never claims more bytes than it was given, and parsing the pieces as a connection does
//!   (buffer, parse every complete request, keep the rest) yields the same requests, the same
//!   error and the same leftover as parsing the whole input at once.
//! - `dispatch`: arbitrary argument vectors built from a small alphabet of command names,
//!   keys, numbers and options (so most inputs reach deep into option parsing). `parse` never
//!   panics and refuses with an error reply whose text starts with an upper-case code; every
//!   command it accepts applies (writes through a batch at a stamp, reads on the read path)
//!   without a panic; and a replica restored from a snapshot taken at the end has the same
//!   digest as the original.
//!
//! Corpus: `tests/fuzz-corpus/resp-<target>/`, one file per input. `corpus_replays` runs
//! every file; `explores` mutates corpus entries for a bounded number of iterations with a
//! seeded generator in every test run. `KLEIN_FUZZ_ITERATIONS` and `KLEIN_FUZZ_SEED` bound and
//! seed it; a failing input is printed with the seed that reproduces it.

use std::env;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use klein::server::resp::{Parsed, parse_request};
use klein::state_machine::{Access, BatchBuilder, Limits, Reply, StateMachine, parse};

/// Iterations of `explores` per target when `KLEIN_FUZZ_ITERATIONS` is not set.
const ITERATIONS_DEFAULT: u64 = 3000;
/// The generator's seed when `KLEIN_FUZZ_SEED` is not set.
const SEED_DEFAULT: u64 = 0x7265_7370_2d66_757a;
/// Longest input the exploration builds.
const INPUT_BYTES_MAX: usize = 4096;

/// xorshift64*: small, seeded, enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound.max(1) as u64).unwrap()
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(format!("resp-{target}"))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = fs::read_dir(corpus_dir(target))
        .map(|entries| {
            entries.filter_map(Result::ok).filter_map(|entry| fs::read(entry.path()).ok()).collect()
        })
        .unwrap_or_default();
    inputs.extend(seeds(target));
    inputs
}

/// Built-in seeds, so the exploration starts from well-formed inputs.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let texts: &[&str] = if target == "parser" {
        &[
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            "PING\r\nECHO \"a b\\x41\" 'c'\r\n",
            "*2\r\n$3\r\nGET\r\n$-1\r\n*0\r\n*-1\r\n\r\n",
            "*1\r\n$99999999999\r\n",
        ]
    } else {
        &[
            "SET k v EX 10 NX GET",
            "SET k 1\nINCRBY k 5\nGETRANGE k 0 -1\nAPPEND k xyz\nSETRANGE k 2 ab",
            "HSET h f 1 g 2\nHINCRBYFLOAT h f 1.5\nHGETALL h\nHDEL h f",
            "RPUSH l a b c\nLPOP l 2\nLRANGE l 0 -1\nLINSERT l BEFORE c x",
            "ZADD z 1 a 2 b\nZRANGE z 0 -1 WITHSCORES\nZINCRBY z 3 a\nZPOPMIN z",
            "SADD s a b\nSPOP s\nSMEMBERS s\nEXPIRE s 5 NX\nTTL s\nPERSIST s",
            "MSET a 1 b 2\nMGET a b c\nRENAME a c\nCOPY c d\nKEYS *\nSCAN 0 MATCH * COUNT 5",
        ]
    };
    texts.iter().map(|text| text.as_bytes().to_vec()).collect()
}

/// Parses `input` whole, then in the pieces `cuts` makes, as a connection buffers them.
fn check_parser(input: &[u8], cuts: &[usize]) {
    let whole = parse_all(&[input]);
    let mut pieces = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let cut = cut.min(input.len()).max(start);
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces.push(&input[start..]);
    assert_eq!(parse_all(&pieces), whole, "pieces parse like the whole");
}

type Requests = (Vec<Vec<Vec<u8>>>, Option<String>, usize);

/// Every request, the error if any, and the bytes left unparsed (none after an error).
fn parse_all(pieces: &[&[u8]]) -> Requests {
    let mut buffer = Vec::new();
    let mut requests = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            let mut arguments = Vec::new();
            match parse_request(&buffer, &mut arguments) {
                Ok(Parsed::Request { consumed }) => {
                    assert!(consumed > 0 && consumed <= buffer.len(), "consumed {consumed}");
                    let request: Vec<Vec<u8>> = arguments.iter().map(|a| a.to_vec()).collect();
                    drop(arguments);
                    requests.push(request);
                    buffer.drain(..consumed);
                }
                Ok(Parsed::Incomplete) => break,
                // The connection closes here: what follows the error is never read.
                Err(error) => return (requests, Some(error.message()), 0),
            }
        }
    }
    (requests, None, buffer.len())
}

/// Runs the commands of `input` (one per line, words split on spaces) on a state machine;
/// how many parsed and ran.
fn check_dispatch(input: &[u8]) -> usize {
    let mut ran = 0;
    let mut machine = StateMachine::new(Limits::default());
    let mut replies = Vec::new();
    let mut stamp = 1_700_000_000_000_u64;
    for (sequence, line) in input.split(|byte| *byte == b'\n').enumerate() {
        let words: Vec<&[u8]> =
            line.split(|byte| *byte == b' ').filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            continue;
        }
        match parse(&words) {
            Err(Reply::Error(text)) => {
                let code = text.split(' ').next().unwrap_or_default();
                assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase()), "{text}");
            }
            Err(other) => panic!("parse refused with a non-error reply {other:?}"),
            Ok(command) => {
                stamp += 250;
                if command.access() == Access::Read {
                    let _ = machine.read(stamp, &command);
                }
                let mut batch = BatchBuilder::new();
                batch.push(1, u64::try_from(sequence).unwrap() + 1, &command);
                replies.clear();
                machine
                    .apply_batch(stamp, &batch.finish(), &mut replies)
                    .expect("a batch we built");
                assert_eq!(replies.len(), 1);
                ran += 1;
            }
        }
    }
    let restored = StateMachine::restore(&machine.snapshot(), Limits::default()).expect("restores");
    assert_eq!(restored.digest(), machine.digest(), "a restored replica equals the original");
    ran
}

/// Words the dispatch mutations splice in.
const WORDS: &[&str] = &[
    "SET",
    "GET",
    "DEL",
    "INCR",
    "INCRBYFLOAT",
    "APPEND",
    "SETRANGE",
    "GETEX",
    "EXPIRE",
    "PEXPIREAT",
    "HSET",
    "HINCRBY",
    "LPUSH",
    "RPOP",
    "LRANGE",
    "SADD",
    "SPOP",
    "ZADD",
    "ZRANGE",
    "ZPOPMIN",
    "RENAME",
    "COPY",
    "SCAN",
    "KEYS",
    "MULTI",
    "EXEC",
    "k",
    "h",
    "l",
    "s",
    "z",
    "0",
    "-1",
    "1e308",
    "inf",
    "-inf",
    "nan",
    "9223372036854775807",
    "-9223372036854775808",
    "EX",
    "PX",
    "NX",
    "XX",
    "GT",
    "LT",
    "KEEPTTL",
    "WITHSCORES",
    "BYSCORE",
    "REV",
    "LIMIT",
    "MATCH",
    "COUNT",
    "TYPE",
    "*",
    "[a-",
    "\\",
];

fn mutate(rng: &mut Rng, input: &[u8], target: &str) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if !out.is_empty() => {
                let end = (at + rng.below(8)).min(out.len());
                out.drain(at.min(end)..end);
            }
            1 if target == "dispatch" => {
                let word = WORDS[rng.below(WORDS.len())];
                let glue = if rng.below(3) == 0 { "\n" } else { " " };
                out.splice(at..at, format!("{glue}{word} ").bytes());
            }
            2 => out.insert(at, u8::try_from(rng.below(256)).unwrap()),
            _ => {
                let bytes: Vec<u8> = b"\r\n*$:-+0123456789"[..].to_vec();
                out.insert(at, bytes[rng.below(bytes.len())]);
            }
        }
    }
    out.truncate(INPUT_BYTES_MAX);
    out
}

fn run(target: &str, input: &[u8], rng: &mut Rng) {
    if target == "parser" {
        let cuts: Vec<usize> = (0..rng.below(5)).map(|_| rng.below(input.len() + 1)).collect();
        let mut sorted = cuts;
        sorted.sort_unstable();
        check_parser(input, &sorted);
    } else {
        check_dispatch(input);
    }
}

fn explore(target: &str) {
    let iterations = env::var("KLEIN_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok());
    let seed = env::var("KLEIN_FUZZ_SEED").ok().and_then(|v| v.parse().ok());
    let seed = seed.unwrap_or(SEED_DEFAULT);
    let mut rng = Rng(seed | 1);
    let corpus = corpus(target);
    for iteration in 0..iterations.unwrap_or(ITERATIONS_DEFAULT) {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, target);
        let mut cut_rng = Rng(rng.next() | 1);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(target, &input, &mut cut_rng)));
        assert!(
            outcome.is_ok(),
            "{target}: iteration {iteration} (KLEIN_FUZZ_SEED={seed}) failed on input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn the_dispatch_seeds_run_their_commands() {
    // Not vacuous: every built-in seed line parses and runs.
    for seed in seeds("dispatch") {
        let lines = seed.split(|byte| *byte == b'\n').count();
        assert_eq!(check_dispatch(&seed), lines, "{}", String::from_utf8_lossy(&seed));
    }
}

#[test]
fn corpus_replays() {
    for target in ["parser", "dispatch"] {
        for input in corpus(target) {
            let mut rng = Rng(SEED_DEFAULT);
            run(target, &input, &mut rng);
        }
    }
}

#[test]
fn explores_the_parser() {
    explore("parser");
}

#[test]
fn explores_the_dispatch() {
    explore("dispatch");
}
