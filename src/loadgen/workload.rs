//! What the generator sends: the command mix, the key distribution, and the RESP encoding of
//! one request straight into a connection's output buffer (no allocation per request).
//!
//! Keys look like redis-benchmark's (`key:000000001234`, 16 bytes; `counter:000000001234` for
//! `INCR`), so runs of both tools on one server touch the same kind of keys. Values are `x`
//! repeated `value_size` times.

use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use rand::rngs::SmallRng;
use rand_distr::{Distribution as _, Zipf};

/// Digits of the number in a key (`key:` + 12 digits = 16 bytes, as redis-benchmark's `-r`).
pub const KEY_DIGITS: usize = 12;
/// The largest key space the 12 digits can name.
pub const KEYSPACE_MAX: u64 = 1_000_000_000_000;

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `SET key value`: expects `+OK`.
    Set,
    /// `GET key`: expects a bulk string of `value_size` bytes, or nil for a key never set.
    Get,
    /// `INCR counter:N`: expects an integer.
    Incr,
    /// `DEL key`: expects an integer.
    Del,
    /// `PING`: expects `+PONG`.
    Ping,
}

impl Op {
    /// Every op, in report order.
    pub const ALL: [Op; 5] = [Op::Set, Op::Get, Op::Incr, Op::Del, Op::Ping];

    /// The position of the op in [`Op::ALL`] (an index into per-op tables).
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Op::Set => 0,
            Op::Get => 1,
            Op::Incr => 2,
            Op::Del => 3,
            Op::Ping => 4,
        }
    }

    /// The lower-case command name, as the mix spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Get => "get",
            Op::Incr => "incr",
            Op::Del => "del",
            Op::Ping => "ping",
        }
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown command `{text}` (known: set, get, incr, del, ping)"))
    }
}

/// A weighted command mix, e.g. `get:80,set:20`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// Each op with its cumulative weight (strictly increasing).
    cumulative: Vec<(Op, u32)>,
}

impl Mix {
    /// The sum of the weights.
    fn total(&self) -> u32 {
        self.cumulative.last().map_or(0, |(_, weight)| *weight)
    }

    /// Draws the op of the next request.
    pub fn pick(&self, rng: &mut SmallRng) -> Op {
        if self.cumulative.len() == 1 {
            return self.cumulative[0].0;
        }
        let draw = rng.random_range(0..self.total());
        self.cumulative.iter().find(|(_, upto)| draw < *upto).map_or(Op::Ping, |(op, _)| *op)
    }

    /// Each op with its weight, as given.
    #[must_use]
    pub fn weights(&self) -> Vec<(Op, u32)> {
        let mut previous = 0;
        self.cumulative
            .iter()
            .map(|(op, upto)| {
                let weight = upto - previous;
                previous = *upto;
                (*op, weight)
            })
            .collect()
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `set`, `get:80,set:20`, `incr`; a missing weight is 1.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut cumulative: Vec<(Op, u32)> = Vec::new();
        let mut total: u32 = 0;
        for item in text.split(',') {
            let (name, weight) = match item.split_once(':') {
                Some((name, weight)) => {
                    let weight: u32 =
                        weight.trim().parse().map_err(|_| format!("bad weight in `{item}`"))?;
                    (name, weight)
                }
                None => (item, 1),
            };
            let op: Op = name.trim().parse()?;
            if weight == 0 {
                continue;
            }
            if cumulative.iter().any(|(seen, _)| *seen == op) {
                return Err(format!("`{}` is listed twice in the mix", op.name()));
            }
            total = total.checked_add(weight).ok_or("mix weights overflow")?;
            cumulative.push((op, total));
        }
        if cumulative.is_empty() {
            return Err("the mix names no command with a weight above 0".to_string());
        }
        Ok(Mix { cumulative })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> =
            self.weights().iter().map(|(op, weight)| format!("{}:{weight}", op.name())).collect();
        f.write_str(&items.join(","))
    }
}

/// How keys are drawn from the key space `0..keyspace`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s` (key 0 the hottest; `s` = 0.99 is YCSB's default).
    Zipf(f64),
    /// Every key in turn: connection `i` of `n` takes keys `i`, `i + n`, `i + 2n`, ... (so `n`
    /// connections sending `keyspace` requests in total touch every key once; `--prefill`).
    Sequential,
}

impl FromStr for KeyDist {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("uniform") {
            return Ok(KeyDist::Uniform);
        }
        if text.eq_ignore_ascii_case("sequential") {
            return Ok(KeyDist::Sequential);
        }
        let exponent = text.strip_prefix("zipf:").ok_or_else(|| {
            format!("unknown key distribution `{text}` (uniform, zipf:<s> or sequential)")
        })?;
        let exponent: f64 =
            exponent.parse().map_err(|_| format!("bad zipf exponent in `{text}`"))?;
        if !(exponent.is_finite() && exponent > 0.0) {
            return Err(format!("the zipf exponent must be above 0, not {exponent}"));
        }
        Ok(KeyDist::Zipf(exponent))
    }
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipf(exponent) => write!(f, "zipf:{exponent}"),
            KeyDist::Sequential => f.write_str("sequential"),
        }
    }
}

/// Draws key numbers from `0..keyspace`.
#[derive(Debug, Clone)]
pub enum KeySampler {
    /// Uniform over the key space.
    Uniform(u64),
    /// Zipf over the key space (ranks 1..=n, returned as 0..n).
    Zipf(Zipf<f64>),
    /// `next`, `next + step`, ... modulo the key space.
    Sequential {
        /// The next key (before the modulo).
        next: u64,
        /// The distance between two keys of one connection.
        step: u64,
        /// The key space.
        keyspace: u64,
    },
}

impl KeySampler {
    /// A sampler for `keyspace` keys (at least 1) drawn by `dist`.
    ///
    /// # Errors
    /// A key space of 0 or above [`KEYSPACE_MAX`], or a zipf exponent the sampler refuses.
    pub fn new(keyspace: u64, dist: KeyDist) -> Result<Self, String> {
        if keyspace == 0 || keyspace > KEYSPACE_MAX {
            return Err(format!("the key space must be 1..={KEYSPACE_MAX}, not {keyspace}"));
        }
        match dist {
            KeyDist::Uniform => Ok(KeySampler::Uniform(keyspace)),
            KeyDist::Zipf(exponent) => {
                #[expect(clippy::cast_precision_loss, reason = "key spaces up to 10^12 < 2^53")]
                let n = keyspace as f64;
                Zipf::new(n, exponent).map(KeySampler::Zipf).map_err(|error| error.to_string())
            }
            KeyDist::Sequential => Ok(KeySampler::Sequential { next: 0, step: 1, keyspace }),
        }
    }

    /// The sampler of connection `index` of `clients` (only `Sequential` differs per
    /// connection: it starts at `index` and steps by `clients`).
    #[must_use]
    pub fn for_connection(&self, index: u64, clients: u64) -> KeySampler {
        match self {
            KeySampler::Sequential { keyspace, .. } => {
                KeySampler::Sequential { next: index, step: clients.max(1), keyspace: *keyspace }
            }
            other => other.clone(),
        }
    }

    /// The next key number.
    pub fn sample(&mut self, rng: &mut SmallRng) -> u64 {
        match self {
            KeySampler::Uniform(keyspace) => rng.random_range(0..*keyspace),
            KeySampler::Sequential { next, step, keyspace } => {
                let key = *next % *keyspace;
                *next = next.wrapping_add(*step);
                key
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "the sample is an integer-valued float in 1..=n, n <= 10^12"
            )]
            KeySampler::Zipf(zipf) => (zipf.sample(rng) as u64).saturating_sub(1),
        }
    }
}

/// Appends the RESP request for `op` on key number `key` to `out`.
pub fn encode(out: &mut Vec<u8>, op: Op, key: u64, value: &[u8]) {
    match op {
        Op::Set => {
            out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
            push_key(out, b"key:", key);
            push_bulk_header(out, value.len());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Op::Get => {
            out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
            push_key(out, b"key:", key);
        }
        Op::Incr => {
            out.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n");
            push_key(out, b"counter:", key);
        }
        Op::Del => {
            out.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n");
            push_key(out, b"key:", key);
        }
        Op::Ping => out.extend_from_slice(b"*1\r\n$4\r\nPING\r\n"),
    }
}

/// `$<len>\r\n<prefix><12 digits>\r\n`.
fn push_key(out: &mut Vec<u8>, prefix: &[u8], key: u64) {
    push_bulk_header(out, prefix.len() + KEY_DIGITS);
    out.extend_from_slice(prefix);
    let mut digits = [b'0'; KEY_DIGITS];
    let mut rest = key;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
    }
    out.extend_from_slice(&digits);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n`.
fn push_bulk_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    push_decimal(out, len);
    out.extend_from_slice(b"\r\n");
}

fn push_decimal(out: &mut Vec<u8>, value: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn mix_parses_weights_and_defaults() {
        let mix: Mix = "get:80,set:20".parse().unwrap();
        assert_eq!(mix.weights(), [(Op::Get, 80), (Op::Set, 20)]);
        assert_eq!(mix.to_string(), "get:80,set:20");
        let mix: Mix = "SET".parse().unwrap();
        assert_eq!(mix.weights(), [(Op::Set, 1)]);
        assert!("get,get".parse::<Mix>().is_err());
        assert!("get:0".parse::<Mix>().is_err());
        assert!("hset".parse::<Mix>().is_err());
        assert!("get:x".parse::<Mix>().is_err());
    }

    #[test]
    fn mix_draws_in_proportion() {
        let mix: Mix = "get:80,set:20".parse().unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let gets = (0..10_000).filter(|_| mix.pick(&mut rng) == Op::Get).count();
        assert!((7_700..8_300).contains(&gets), "{gets}");
    }

    #[test]
    fn key_distributions_stay_in_the_key_space() {
        let mut rng = SmallRng::seed_from_u64(1);
        for dist in [KeyDist::Uniform, "zipf:0.99".parse().unwrap(), KeyDist::Zipf(1.2)] {
            let mut sampler = KeySampler::new(100, dist).unwrap();
            let mut hits = [0u32; 100];
            for _ in 0..20_000 {
                hits[usize::try_from(sampler.sample(&mut rng)).unwrap()] += 1;
            }
            if let KeyDist::Zipf(_) = dist {
                assert!(hits[0] > 10 * hits[99].max(1), "{dist}: {hits:?}");
            } else {
                assert!(hits.iter().all(|count| *count > 100), "{hits:?}");
            }
        }
        assert!(KeySampler::new(0, KeyDist::Uniform).is_err());
        let template = KeySampler::new(10, "sequential".parse().unwrap()).unwrap();
        let mut keys: Vec<u64> = (0..3)
            .flat_map(|index| {
                let mut sampler = template.for_connection(index, 3);
                let count = if index == 0 { 4 } else { 3 };
                (0..count)
                    .map(move |_| sampler.sample(&mut SmallRng::seed_from_u64(0)))
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..10).collect::<Vec<u64>>());
        assert!("zipf:-1".parse::<KeyDist>().is_err());
        assert!("pareto".parse::<KeyDist>().is_err());
    }

    #[test]
    fn requests_are_redis_benchmark_shaped() {
        let mut out = Vec::new();
        encode(&mut out, Op::Set, 42, b"xyz");
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxyz\r\n");
        out.clear();
        encode(&mut out, Op::Incr, 999_999_999_999, b"");
        assert_eq!(out, b"*2\r\n$4\r\nINCR\r\n$20\r\ncounter:999999999999\r\n");
        out.clear();
        encode(&mut out, Op::Set, 0, &[]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$0\r\n\r\n");
        out.clear();
        encode(&mut out, Op::Ping, 0, b"");
        encode(&mut out, Op::Get, 7, b"");
        assert_eq!(out, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000007\r\n");
    }
}
