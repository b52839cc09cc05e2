//! The harness: running inputs with panics caught, the corpus on disk, the seeded exploration
//! that mutates corpus entries, and where failing inputs go.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Record,
    Recovery,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Record => "record",
            Target::Recovery => "recovery",
        }
    }

    pub fn run(self, data: &[u8]) -> Outcome {
        match self {
            Target::Record => record::target(data),
            Target::Recovery => recovery::target(data),
        }
    }

    /// Iterations of a normal test run: a few seconds in release mode on this machine.
    pub fn iterations_default(self) -> u64 {
        match self {
            Target::Record => 300_000,
            Target::Recovery => 30_000,
        }
    }

    pub fn corpus_dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(self.name())
    }

    /// The built-in seeds, encoded.
    pub fn seeds(self) -> Vec<Vec<u8>> {
        match self {
            Target::Record => seeds::record_cases().iter().map(encoded).collect(),
            Target::Recovery => seeds::recovery_cases().iter().map(encoded).collect(),
        }
    }

    /// The target an input file belongs to, from its directory or name.
    pub fn of_path(path: &str) -> Target {
        if path.contains("recovery") { Target::Recovery } else { Target::Record }
    }
}

/// What running one input came to.
pub enum Verdict {
    Passed(String),
    /// A violation of a known, reported bug.
    Known(Violation),
    Failed(String),
}

pub fn run_guarded(target: Target, data: &[u8]) -> Verdict {
    match panic::catch_unwind(AssertUnwindSafe(|| target.run(data))) {
        Ok(Ok(signature)) => Verdict::Passed(signature),
        Ok(Err(violation)) if violation.property.is_known_bug() => Verdict::Known(violation),
        Ok(Err(violation)) => Verdict::Failed(violation.to_string()),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(ToString::to_string))
                .unwrap_or_default();
            Verdict::Failed(format!("panic: {message}"))
        }
    }
}

/// The corpus of a target: (file name, content), sorted by name.
pub fn load_corpus(target: Target) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(target.corpus_dir()) else { return Vec::new() };
    let mut corpus: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let data = fs::read(entry.path()).expect("corpus files are readable");
            (name, data)
        })
        .collect();
    corpus.sort();
    corpus
}

pub fn input_name(data: &[u8]) -> String {
    format!("{:016x}", content_hash(data))
}

/// Writes `data` into `dir` under its content hash (a no-op if it is there); returns the path.
pub fn save(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).expect("the directory can be created");
    let path = dir.join(name);
    if !path.exists() {
        fs::write(&path, data).expect("the input can be written");
    }
    path
}

/// Where crashing inputs go: `target/fuzz-crashes/`.
pub fn crash_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory holds tmp/")
        .join("fuzz-crashes")
}

pub fn save_crash(target: Target, data: &[u8], message: &str) {
    let name = format!("{}-{}", target.name(), input_name(data));
    let path = save(&crash_dir(), &name, data);
    eprintln!(
        "fuzz-log {}: FAILED: {message}\n  input: {}\n  replay: KLEIN_FUZZ_REPLAY={} cargo test \
         --release --test fuzz_log replay -- --ignored --nocapture",
        target.name(),
        path.display(),
        path.display(),
    );
}

pub fn env_number(name: &str) -> Option<u64> {
    let value = env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

pub fn is_saving() -> bool {
    env::var("KLEIN_FUZZ_SAVE").is_ok_and(|value| value == "1")
}

/// Runs every corpus file of `target`; fails on an empty corpus and on any failure other than
/// a known bug.
pub fn replay_corpus(target: Target) {
    let corpus = load_corpus(target);
    assert!(!corpus.is_empty(), "{} holds no input", target.corpus_dir().display());
    let mut failures = Vec::new();
    let mut known: BTreeMap<Property, usize> = BTreeMap::new();
    for (name, data) in &corpus {
        match run_guarded(target, data) {
            Verdict::Passed(signature) => println!("  {name}: {signature}"),
            Verdict::Known(violation) => {
                println!("  {name}: known bug: {violation}");
                *known.entry(violation.property).or_default() += 1;
            }
            Verdict::Failed(message) => failures.push(format!("{name}: {message}")),
        }
    }
    println!(
        "fuzz-log {}: {} corpus inputs replayed; known bugs hit: {known:?}",
        target.name(),
        corpus.len()
    );
    assert!(failures.is_empty(), "{} corpus inputs fail:\n{}", failures.len(), failures.join("\n"));
}

/// One libFuzzer-style byte mutation of `data`, with `other` for splicing.
pub fn mutate_once(data: &mut Vec<u8>, other: &[u8], prng: &mut Prng) {
    const INTERESTING: [u32; 10] = [0, 1, 2, 15, 16, 64, 511, 512, 4096, u32::MAX];
    let length = data.len();
    match prng.below(9) {
        0 if length > 0 => {
            let at = prng.below(length);
            data[at] ^= 1 << prng.below(8);
        }
        1 if length > 0 => {
            let at = prng.below(length);
            data[at] = prng.byte();
        }
        2 if length > 0 => {
            let at = prng.below(length);
            data[at] = [0, 1, 0x7f, 0x80, 0xff][prng.below(5)];
        }
        3 => {
            let at = prng.below(length + 1);
            let count = 1 + prng.below(8);
            let inserted: Vec<u8> = (0..count).map(|_| prng.byte()).collect();
            data.splice(at..at, inserted);
        }
        4 if length > 0 => {
            let at = prng.below(length);
            let end = (at + 1 + prng.below(16)).min(length);
            data.drain(at..end);
        }
        5 if length > 0 => {
            let at = prng.below(length);
            let end = (at + 1 + prng.below(32)).min(length);
            let copy = data[at..end].to_vec();
            let to = prng.below(length + 1);
            data.splice(to..to, copy);
        }
        6 if !other.is_empty() => {
            let at = prng.below(other.len());
            let end = (at + 1 + prng.below(64)).min(other.len());
            let to = prng.below(length + 1);
            let replaced = (to + end - at).min(length);
            data.splice(to..replaced, other[at..end].iter().copied());
        }
        7 if length >= 4 => {
            let at = prng.below(length - 3);
            let value = INTERESTING[prng.below(INTERESTING.len())];
            data[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        _ => {
            if prng.below(2) == 0 {
                data.truncate(prng.below(length + 1));
            } else {
                let count = 1 + prng.below(32);
                data.extend((0..count).map(|_| prng.byte()));
            }
        }
    }
}

/// The part of a signature before `|`.
pub fn coarse(signature: &str) -> &str {
    signature.split('|').next().unwrap_or_default()
}

/// Explores `target` from its corpus: mutates entries, keeps inputs with a new signature,
/// saves failures. Bounded by `KLEIN_FUZZ_ITERATIONS` (default: a few seconds' worth) and
/// `KLEIN_FUZZ_SECONDS`.
pub fn explore(target: Target) {
    let seconds = env_number("KLEIN_FUZZ_SECONDS");
    let iterations = match (env_number("KLEIN_FUZZ_ITERATIONS"), seconds) {
        (Some(iterations), _) => iterations,
        (None, Some(_)) => u64::MAX,
        (None, None) => target.iterations_default(),
    };
    let seed = env_number("KLEIN_FUZZ_SEED").unwrap_or(SEED_DEFAULT);
    let saving = is_saving();
    let mut corpus: Vec<Vec<u8>> = load_corpus(target).into_iter().map(|(_, data)| data).collect();
    assert!(!corpus.is_empty(), "{} holds no input", target.corpus_dir().display());
    let initial = corpus.len();
    let mut seen = BTreeSet::new();
    let mut seen_coarse = BTreeSet::new();
    for data in &corpus {
        let signature = match run_guarded(target, data) {
            Verdict::Passed(signature) => signature,
            Verdict::Known(violation) => format!("known {:?}", violation.property),
            Verdict::Failed(_) => continue, // `corpus_replays` reports it.
        };
        seen_coarse.insert(coarse(&signature).to_string());
        seen.insert(signature);
    }
    let mut prng = Prng(seed ^ content_hash(target.name().as_bytes()));
    let mut known: BTreeMap<Property, usize> = BTreeMap::new();
    let mut failures = 0;
    let mut done = 0;
    let started = Instant::now();
    while done < iterations && seconds.is_none_or(|limit| started.elapsed().as_secs() < limit) {
        let mut data = corpus[prng.below(corpus.len())].clone();
        let other = &corpus[prng.below(corpus.len())];
        for _ in 0..=prng.below(MUTATIONS_PER_INPUT_MAX) {
            mutate_once(&mut data, other, &mut prng);
        }
        data.truncate(INPUT_BYTES_MAX);
        done += 1;
        let signature = match run_guarded(target, &data) {
            Verdict::Passed(signature) => signature,
            Verdict::Known(violation) => {
                *known.entry(violation.property).or_default() += 1;
                format!("known {:?}", violation.property)
            }
            Verdict::Failed(message) => {
                save_crash(target, &data, &message);
                if saving {
                    // A regression input: `corpus_replays` fails on it until the bug is fixed.
                    save(&target.corpus_dir(), &input_name(&data), &data);
                }
                failures += 1;
                if failures >= FAILURES_MAX {
                    break;
                }
                continue;
            }
        };
        if saving && seen_coarse.insert(coarse(&signature).to_string()) {
            save(&target.corpus_dir(), &input_name(&data), &data);
        }
        if seen.insert(signature) {
            corpus.push(data);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // A rate for people to read.
    let rate = done as f64 / elapsed.max(f64::EPSILON);
    println!(
        "fuzz-log {}: iterations={done} seconds={elapsed:.1} iterations/s={rate:.0} seed={seed} \
         corpus={initial}+{} signatures={} coarse={} known bugs hit={known:?} failures={failures}",
        target.name(),
        corpus.len() - initial,
        seen.len(),
        seen_coarse.len(),
    );
    assert_eq!(failures, 0, "see the inputs saved under {}", crash_dir().display());
}

/// FNV-1a, 64 bits: corpus files are named by it, so saving an input twice is a no-op.
pub fn content_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `SplitMix64`: the exploration's deterministic generator.
pub struct Prng(u64);

impl Prng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % to_u64(bound)).expect("below a usize bound")
    }

    pub fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}
