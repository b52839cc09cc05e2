//! The simulator's seeded pseudo-random generator: xoshiro256** seeded through `SplitMix64`.
//!
//! Every random decision of a simulation (fault rates, latencies, which node crashes) comes
//! from a [`Prng`] derived from the run's seed, so a seed replays the same run bit for bit.
//! The generator is written here rather than taken from a crate on purpose: a crate's
//! algorithm or its seeding may change between versions (the `rand` family has changed both),
//! and then every seed recorded from a past failure would silently replay a different run.
//! These forty lines never change without a decision to invalidate old seeds.
//!
//! Each component takes its own stream with [`Prng::fork`] or [`Prng::fork_stream`], so a
//! change in how many values one component draws does not shift what another one sees.
//!
//! Probabilities are integers in parts per million ([`PARTS_PER_MILLION`]), so no decision
//! depends on floating-point rounding.
//!
//! Must never: read the clock, the OS's randomness or anything else outside its state.

use std::ops::RangeInclusive;

/// The denominator of every probability: a rate of `PARTS_PER_MILLION` is "always".
pub const PARTS_PER_MILLION: u32 = 1_000_000;

/// `SplitMix64`'s increment (the golden ratio in 64-bit fixed point).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A seeded xoshiro256** generator (Blackman and Vigna): fast, 256 bits of state, passes
/// `BigCrush`; not cryptographic, which a simulator does not need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prng {
    state: [u64; 4],
}

impl Prng {
    /// A generator whose whole future is a function of `seed`.
    ///
    /// The state is four consecutive `SplitMix64` outputs, as the xoshiro authors recommend;
    /// `SplitMix64`'s output function is a bijection, so the four words differ and the state is
    /// never the all-zero state xoshiro cannot leave.
    #[must_use]
    pub fn new(seed: u64) -> Prng {
        let mut counter = seed;
        let mut state = [0; 4];
        for word in &mut state {
            counter = counter.wrapping_add(SPLITMIX_GAMMA);
            *word = splitmix64_mix(counter);
        }
        Prng { state }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        self.state = [s0, s1, s2 ^ t, s3.rotate_left(45)];
        result
    }

    /// A uniform value in `0..bound`, without modulo bias (Lemire's multiply-and-reject).
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no value to return");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            let low = low_half(product);
            if low >= threshold {
                return high_half(product);
            }
        }
    }

    /// A uniform index in `0..bound`.
    ///
    /// # Panics
    /// If `bound` is 0.
    pub fn below_usize(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound).expect("usize fits in u64");
        usize::try_from(self.below(bound)).expect("a value below a usize bound fits a usize")
    }

    /// A uniform value in `range`, inclusive at both ends.
    ///
    /// # Panics
    /// If the range is empty (`start > end`).
    pub fn range(&mut self, range: RangeInclusive<u64>) -> u64 {
        let (start, end) = range.into_inner();
        assert!(start <= end, "empty range {start}..={end}");
        match (end - start).checked_add(1) {
            Some(width) => start + self.below(width),
            None => self.next_u64(),
        }
    }

    /// True with probability `ppm / PARTS_PER_MILLION`. Always draws exactly one value, so
    /// changing a rate does not shift the stream of later draws.
    ///
    /// # Panics
    /// If `ppm` exceeds [`PARTS_PER_MILLION`].
    pub fn chance(&mut self, ppm: u32) -> bool {
        assert!(ppm <= PARTS_PER_MILLION, "a probability of {ppm} ppm is above 1");
        self.below(u64::from(PARTS_PER_MILLION)) < u64::from(ppm)
    }

    /// Puts `items` in a uniformly random order (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for upper in (1..items.len()).rev() {
            let other = self.below_usize(upper + 1);
            items.swap(upper, other);
        }
    }

    /// One element of `items` chosen uniformly, or `None` if it is empty.
    pub fn choose<'items, T>(&mut self, items: &'items [T]) -> Option<&'items T> {
        if items.is_empty() {
            return None;
        }
        let index = self.below_usize(items.len());
        items.get(index)
    }

    /// A new, independent generator for a sub-component; draws one value from `self`.
    ///
    /// After the fork, draws from either generator do not affect the other.
    #[must_use]
    pub fn fork(&mut self) -> Prng {
        let seed = self.next_u64();
        Prng::new(seed)
    }

    /// An independent generator named by `stream`, derived from the current state without
    /// advancing it: components forked by name do not depend on the order they were created
    /// in, and adding a new named stream does not perturb the existing ones.
    #[must_use]
    pub fn fork_stream(&self, stream: u64) -> Prng {
        let mut seed = splitmix64_mix(stream.wrapping_add(SPLITMIX_GAMMA));
        for word in self.state {
            seed = splitmix64_mix(seed ^ word);
        }
        Prng::new(seed)
    }
}

/// `SplitMix64`'s output function (Steele, Lea and Flood): a bijection that scrambles bits.
fn splitmix64_mix(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The low 64 bits of a 128-bit product.
fn low_half(value: u128) -> u64 {
    u64::try_from(value & u128::from(u64::MAX)).expect("masked to 64 bits")
}

/// The high 64 bits of a 128-bit product.
fn high_half(value: u128) -> u64 {
    u64::try_from(value >> 64).expect("shifted to 64 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_stream_and_different_seeds_differ() {
        let draw = |seed| {
            let mut prng = Prng::new(seed);
            (0..64).map(|_| prng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert_ne!(draw(0), draw(1));
    }

    #[test]
    fn stream_is_pinned_to_the_algorithm() {
        // xoshiro256** from a known state, checked against the reference C implementation's
        // recurrence: a change here invalidates every recorded seed.
        let mut prng = Prng { state: [1, 2, 3, 4] };
        let first = [prng.next_u64(), prng.next_u64(), prng.next_u64()];
        assert_eq!(first, [11_520, 0, 1_509_978_240]);
        // `SplitMix64` from seed 0: 0xE220A8397B1DCDAF is its well-known first output.
        assert_eq!(Prng::new(0).state[0], 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn below_stays_in_bounds_and_covers_them() {
        let mut prng = Prng::new(1);
        let mut seen = [0_u32; 7];
        for _ in 0..7_000 {
            let value = prng.below_usize(7);
            seen[value] += 1;
        }
        for count in seen {
            assert!((800..1_200).contains(&count), "uneven: {seen:?}");
        }
        assert_eq!(prng.below(1), 0);
    }

    #[test]
    fn range_is_inclusive_and_handles_the_full_width() {
        let mut prng = Prng::new(2);
        let values: Vec<u64> = (0..1_000).map(|_| prng.range(10..=12)).collect();
        assert!(values.iter().all(|value| (10..=12).contains(value)));
        assert!(values.contains(&10));
        assert!(values.contains(&12));
        assert_eq!(prng.range(5..=5), 5);
        let _ = prng.range(0..=u64::MAX);
    }

    #[test]
    fn chance_follows_the_rate() {
        let mut prng = Prng::new(3);
        let hits = (0..100_000).filter(|_| prng.chance(250_000)).count();
        assert!((24_000..26_000).contains(&hits), "hits={hits}");
        assert!(!(0..1_000).any(|_| prng.chance(0)));
        assert!((0..1_000).all(|_| prng.chance(PARTS_PER_MILLION)));
    }

    #[test]
    fn shuffle_permutes_and_depends_on_the_seed() {
        let shuffled = |seed| {
            let mut items: Vec<u32> = (0..20).collect();
            Prng::new(seed).shuffle(&mut items);
            items
        };
        let mut sorted = shuffled(4);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_eq!(shuffled(4), shuffled(4));
        assert_ne!(shuffled(4), shuffled(5));
        assert_eq!(Prng::new(6).choose::<u8>(&[]), None);
        assert_eq!(Prng::new(6).choose(&[9]), Some(&9));
    }

    #[test]
    fn fork_isolates_the_child_from_the_parents_later_draws() {
        let mut parent = Prng::new(9);
        let mut child = parent.fork();
        let mut twin_parent = Prng::new(9);
        let mut twin = twin_parent.fork();
        for _ in 0..10 {
            parent.next_u64(); // Extra draws in the parent only.
        }
        let child_draws: Vec<u64> = (0..8).map(|_| child.next_u64()).collect();
        let twin_draws: Vec<u64> = (0..8).map(|_| twin.next_u64()).collect();
        assert_eq!(child_draws, twin_draws);
        assert_ne!(child.next_u64(), parent.next_u64());
    }

    #[test]
    fn named_streams_are_stable_and_distinct() {
        let root = Prng::new(11);
        assert_eq!(root.fork_stream(1), root.fork_stream(1));
        assert_ne!(root.fork_stream(1), root.fork_stream(2));
        assert_ne!(Prng::new(12).fork_stream(1), root.fork_stream(1));
        assert_ne!(root.fork_stream(1), root);
    }
}
