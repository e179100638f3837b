//! The swarm: many seeds, each its own world, spread over threads.
//!
//! Without `--scenario`, seed `s` runs scenario `s mod n` (the scenarios in
//! `sim list` order), so any range of seeds covers every scenario; each
//! seed also picks its fault mix. The outcome of a seed depends on the
//! seed alone — threads only decide which seed runs when — so the set of
//! failures, and every replay token, is the same on any machine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iscsi_engine::planted::PlantedBug;

use crate::scenarios::{self, Scenario};
use crate::token::Token;
use crate::world::RunOptions;

/// What to run.
#[derive(Clone)]
pub struct SwarmConfig {
    pub seeds: u64,
    pub start: u64,
    pub scenario: Option<&'static Scenario>,
    pub planted: Option<PlantedBug>,
    /// `(k, n)`: only every n-th seed, starting with the k-th (1-based).
    pub shard: Option<(u64, u64)>,
    pub threads: usize,
    /// Stop at the first failure (for measuring seeds-to-detection).
    pub stop_at_first_failure: bool,
}

impl SwarmConfig {
    /// The token of the `i`-th seed of the range.
    pub fn token(&self, seed: u64) -> Token {
        let all = scenarios::all();
        let scenario = self
            .scenario
            .unwrap_or_else(|| &all[(seed % all.len() as u64) as usize]);
        Token {
            scenario,
            seed,
            planted: self.planted,
        }
    }

    /// The seeds this run (or shard) covers, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds)
            .filter(|i| match self.shard {
                Some((k, n)) => i % n == k - 1,
                None => true,
            })
            .map(|i| self.start + i)
            .collect()
    }
}

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    pub token: Token,
    pub mix: String,
    pub failures: Vec<String>,
    pub tail: Vec<String>,
    pub sim_time: Duration,
    pub wall: Duration,
    pub trace_hash: u64,
}

impl SeedOutcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// How long one run may take in wall time before it is declared hung.
pub const HANG_LIMIT: Duration = Duration::from_secs(300);

/// A run that does not end is a finding too (a livelock spins inside one
/// simulated tick, so simulated time stops): a watchdog thread prints the
/// replay token and ends the process, since a spinning thread cannot be
/// stopped from outside.
fn watchdog(token: Token) -> std::sync::mpsc::Sender<()> {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(HANG_LIMIT) {
            println!(
                "FAIL {token}: hang: the run made no progress for {} s of wall time (a livelock in a simulated tick?)",
                HANG_LIMIT.as_secs()
            );
            println!("  replay: iscsi-harness sim replay {token}");
            std::process::exit(1);
        }
    });
    done
}

/// Runs one token.
pub fn run_token(token: Token, options: &RunOptions) -> (SeedOutcome, crate::world::RunResult) {
    let started = Instant::now();
    let _watchdog = watchdog(token);
    let options = RunOptions {
        planted: token.planted,
        ..options.clone()
    };
    let (mix, result) = scenarios::run(token.scenario, token.seed, &options);
    let outcome = SeedOutcome {
        token,
        mix: mix.to_string(),
        failures: result.failures.clone(),
        tail: result.tail.clone(),
        sim_time: result.sim_time,
        wall: started.elapsed(),
        trace_hash: result.trace_hash,
    };
    (outcome, result)
}

/// Totals of a swarm.
#[derive(Debug, Clone, Default)]
pub struct SwarmReport {
    /// Every seed's outcome, in seed order.
    pub outcomes: Vec<SeedOutcome>,
    pub wall: Duration,
}

impl SwarmReport {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }

    pub fn sim_time(&self) -> Duration {
        self.outcomes.iter().map(|o| o.sim_time).sum()
    }
}

/// Runs the seeds of `config` on `config.threads` threads; `each` sees
/// every outcome as it arrives (on the calling thread's behalf, under a
/// lock).
pub fn run(config: &SwarmConfig, mut each: impl FnMut(&SeedOutcome) + Send) -> SwarmReport {
    let seeds = config.seed_list();
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Mutex<Vec<SeedOutcome>> = Mutex::new(Vec::with_capacity(seeds.len()));
    let each = Mutex::new(&mut each);
    let started = Instant::now();
    let threads = config.threads.max(1).min(seeds.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&seed) = seeds.get(i) else {
                        break;
                    };
                    let (outcome, _) = run_token(config.token(seed), &RunOptions::default());
                    if !outcome.passed() && config.stop_at_first_failure {
                        stop.store(true, Ordering::Relaxed);
                    }
                    (each.lock().unwrap_or_else(|p| p.into_inner()))(&outcome);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(outcome);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by_key(|o| o.token.seed);
    SwarmReport {
        outcomes,
        wall: started.elapsed(),
    }
}

/// JUnit XML for CI: one test case per seed, named by its replay token.
pub fn junit(report: &SwarmReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites><testsuite name="sim swarm" tests="{}" failures="{}" time="{:.3}">"#,
        report.outcomes.len(),
        report.failed(),
        report.wall.as_secs_f64()
    )?;
    for o in &report.outcomes {
        write!(
            out,
            r#"<testcase classname="sim.{}" name="{}" time="{:.3}">"#,
            o.token.scenario.name,
            esc(&o.token.to_string()),
            o.wall.as_secs_f64()
        )?;
        write!(
            out,
            r#"<properties><property name="mix" value="{}"/><property name="sim-seconds" value="{:.3}"/></properties>"#,
            esc(&o.mix),
            o.sim_time.as_secs_f64()
        )?;
        if let Some(first) = o.failures.first() {
            write!(
                out,
                r#"<failure message="{}">replay: iscsi-harness sim replay {}&#10;{}</failure>"#,
                esc(first),
                esc(&o.token.to_string()),
                esc(&o.failures.join("\n"))
            )?;
        }
        writeln!(out, "</testcase>")?;
    }
    writeln!(out, "</testsuite></testsuites>")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seeds: u64, shard: Option<(u64, u64)>) -> SwarmConfig {
        SwarmConfig {
            seeds,
            start: 100,
            scenario: None,
            planted: None,
            shard,
            threads: 1,
            stop_at_first_failure: false,
        }
    }

    #[test]
    fn shards_split_the_range_without_overlap() {
        let all = config(10, None).seed_list();
        assert_eq!(all, (100..110).collect::<Vec<_>>());
        let mut union: Vec<u64> = (1..=3)
            .flat_map(|k| config(10, Some((k, 3))).seed_list())
            .collect();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(
            config(10, Some((1, 3))).seed_list(),
            vec![100, 103, 106, 109]
        );
    }

    #[test]
    fn seeds_cycle_through_the_scenarios() {
        let c = config(1, None);
        let n = scenarios::all().len() as u64;
        assert_eq!(c.token(0).scenario.name, scenarios::all()[0].name);
        assert_eq!(c.token(n + 1).scenario.name, scenarios::all()[1].name);
    }

    #[test]
    fn junit_names_each_case_by_its_token() {
        let token = config(1, None).token(0);
        let report = SwarmReport {
            outcomes: vec![SeedOutcome {
                token,
                mix: "none".into(),
                failures: vec!["x < y".into()],
                tail: Vec::new(),
                sim_time: Duration::from_secs(1),
                wall: Duration::from_millis(5),
                trace_hash: 0,
            }],
            wall: Duration::from_millis(5),
        };
        let mut out = Vec::new();
        junit(&report, &mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(xml.contains(r#"tests="1" failures="1""#));
        assert!(xml.contains(&format!(r#"name="{token}""#)));
        assert!(xml.contains("x &lt; y"));
    }
}
