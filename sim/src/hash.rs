//! Stable hashing for trace hashes and seed derivation.
//!
//! `std`'s `DefaultHasher` may change between Rust releases and
//! `RandomState` is seeded by the OS, so neither can name a run that must
//! replay "on any machine": the trace hash is FNV-1a (64 bits), whose
//! definition is fixed, and seeds are split with SplitMix64.

/// FNV-1a, 64 bits (<http://www.isthe.com/chongo/tech/comp/fnv/>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of `bytes` alone.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut h = Fnv64::new();
        h.update(bytes);
        h.finish()
    }
}

/// SplitMix64's output function: a bijective mixer that turns related
/// inputs (seed, seed + 1, ...) into unrelated outputs.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(Fnv64::of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv64::of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv64::of(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn mix_separates_neighbours() {
        assert_ne!(mix64(1), mix64(2));
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
