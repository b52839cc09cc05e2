//! The replica's seeded generator for election timeout jitter (`SplitMix64`).
//!
//! The seed is given at construction, so a simulator replays every timeout from its seed.
//!
//! Must never: read the clock or the OS's randomness.

/// `SplitMix64`'s increment (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// A `SplitMix64` generator (Steele, Lea and Flood): tiny, and good enough for jitter.
#[derive(Clone, Debug)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator whose outputs are a function of `seed` alone.
    #[must_use]
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[low, high)`; `low` when the range is empty.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_timeouts_within_bounds() {
        let mut one = Jitter::new(7);
        let mut two = Jitter::new(7);
        for _ in 0..1000 {
            let drawn = one.between(100, 200);
            assert_eq!(drawn, two.between(100, 200));
            assert!((100..200).contains(&drawn));
        }
        assert_ne!(Jitter::new(1).next_u64(), Jitter::new(2).next_u64());
    }
}
