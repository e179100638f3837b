//! The one-line replay token a failure prints: `SCENARIO@SEED`, or
//! `SCENARIO@SEED+BUG` when a planted bug was switched on. Everything else
//! about a run (its fault mix and plan, the workload, every RNG) derives
//! from these, so the token replays the run exactly.

use std::fmt;
use std::str::FromStr;

use iscsi_engine::planted::PlantedBug;

use crate::scenarios::{self, Scenario};

#[derive(Clone, Copy)]
pub struct Token {
    pub scenario: &'static Scenario,
    pub seed: u64,
    pub planted: Option<PlantedBug>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.scenario.name == other.scenario.name
            && self.seed == other.seed
            && self.planted == other.planted
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.scenario.name, self.seed)?;
        if let Some(bug) = self.planted {
            write!(f, "+{bug}")?;
        }
        Ok(())
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Token, String> {
        let (rest, planted) = match s.split_once('+') {
            Some((rest, bug)) => (
                rest,
                Some(
                    PlantedBug::from_name(bug)
                        .ok_or_else(|| format!("unknown planted bug {bug:?} in {s:?}"))?,
                ),
            ),
            None => (s, None),
        };
        let (name, seed) = rest
            .split_once('@')
            .ok_or_else(|| format!("{s:?} is not a replay token (SCENARIO@SEED[+BUG])"))?;
        let scenario =
            scenarios::find(name).ok_or_else(|| format!("unknown scenario {name:?} in {s:?}"))?;
        let seed = seed
            .parse()
            .map_err(|_| format!("bad seed {seed:?} in {s:?}"))?;
        Ok(Token {
            scenario,
            seed,
            planted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for text in ["soak@17", "caw-race@0+compare-first-block-only"] {
            let t: Token = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert!("soak".parse::<Token>().is_err());
        assert!("nope@1".parse::<Token>().is_err());
        assert!("soak@x".parse::<Token>().is_err());
        assert!("soak@1+nope".parse::<Token>().is_err());
    }
}
