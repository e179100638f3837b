//! The swarm's outcome depends on the seeds alone: the same range run on
//! one thread and on two gives every seed the same verdict and the same
//! trace hash, and a range covering every scenario passes (DESIGN.md,
//! "Determinism rules"; issue 5, "Swarm").

use iscsi_sim::scenarios;
use iscsi_sim::swarm::{self, SwarmConfig};

fn config(threads: usize) -> SwarmConfig {
    SwarmConfig {
        seeds: scenarios::all().len() as u64,
        start: 1000,
        scenario: None,
        planted: None,
        shard: None,
        threads,
        stop_at_first_failure: false,
    }
}

#[test]
fn threads_change_nothing_but_the_wall_time() {
    let one = swarm::run(&config(1), |_| {});
    let two = swarm::run(&config(2), |_| {});
    assert_eq!(one.outcomes.len(), scenarios::all().len());
    let failures: Vec<String> = one
        .outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| format!("{}: {:?}", o.token, o.failures))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let covered: std::collections::BTreeSet<&str> =
        one.outcomes.iter().map(|o| o.token.scenario.name).collect();
    assert_eq!(covered.len(), scenarios::all().len(), "every scenario ran");
    for (a, b) in one.outcomes.iter().zip(&two.outcomes) {
        assert_eq!(a.token.to_string(), b.token.to_string());
        assert_eq!(a.passed(), b.passed(), "{}", a.token);
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{}: another trace on two threads",
            a.token
        );
        assert_eq!(a.mix, b.mix, "{}", a.token);
    }
}
