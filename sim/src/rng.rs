//! One seed per run, split deterministically by label.
//!
//! Every random choice of a run (turmoil's link latencies, the target's
//! StatSN and TTTs, the initiators' ISIDs and CHAP challenges, the
//! workload, the fault plan, the disk's crash outcomes) draws from an RNG
//! derived from the run's seed and a fixed label, so that adding a draw in
//! one place does not shift the draws of another, and a restarted host
//! gets a fresh but reproducible stream (its label includes the restart
//! count).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::hash::{Fnv64, mix64};

/// The seed of one run and the seeds derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    seed: u64,
}

impl Seeds {
    pub fn new(seed: u64) -> Seeds {
        Seeds { seed }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The seed for `label` (stable across releases and machines).
    pub fn derive(&self, label: &str) -> u64 {
        mix64(self.seed ^ mix64(Fnv64::of(label.as_bytes())))
    }

    /// An RNG for `label`.
    pub fn rng(&self, label: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.derive(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_seeds_give_distinct_streams() {
        let a = Seeds::new(1);
        assert_eq!(a.derive("target"), Seeds::new(1).derive("target"));
        assert_ne!(a.derive("target"), a.derive("init-1"));
        assert_ne!(a.derive("target"), Seeds::new(2).derive("target"));
    }
}
