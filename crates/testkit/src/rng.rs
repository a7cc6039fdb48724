//! Reproducible pseudo-random test data: a seeded generator, so that a failing case can be
//! replayed. Not for keys or nonces (use the operating system's generator for those).

use rand::SeedableRng;
pub use rand::{Rng, RngExt};

/// The generator the tests share.
pub type TestRng = rand::rngs::Xoshiro256PlusPlus;

/// A generator seeded with `seed`.
pub fn rng(seed: u64) -> TestRng {
    TestRng::seed_from_u64(seed)
}

/// `len` bytes from a generator seeded with `seed`.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng(seed).fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_for_a_seed_and_differs_across_seeds() {
        assert_eq!(bytes(7, 64), bytes(7, 64));
        assert_ne!(bytes(7, 64), bytes(8, 64));
        assert_eq!(bytes(7, 10)[..], bytes(7, 64)[..10]);
    }
}
