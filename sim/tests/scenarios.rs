//! Every scenario on fixed seeds: it passes, the same seed run twice gives
//! the same trace hash, and another seed gives another (DESIGN.md,
//! "Determinism rules"; issue 5, "Must show" 1).

use iscsi_sim::scenarios;
use iscsi_sim::world::RunOptions;

const SEED: u64 = 1;
const OTHER: u64 = 2;

fn check(name: &str) {
    let s = scenarios::find(name).expect("scenario");
    let run = |seed| scenarios::run(s, seed, &RunOptions::default()).1;
    let a = run(SEED);
    assert!(
        a.passed(),
        "{name}@{SEED}: {:#?}\n{}",
        a.failures,
        a.tail.join("\n")
    );
    let again = run(SEED);
    assert_eq!(
        a.trace_hash, again.trace_hash,
        "{name}@{SEED}: the same seed gave another trace"
    );
    assert_eq!(a.trace_len, again.trace_len);
    let b = run(OTHER);
    assert!(
        b.passed(),
        "{name}@{OTHER}: {:#?}\n{}",
        b.failures,
        b.tail.join("\n")
    );
    assert_ne!(
        a.trace_hash, b.trace_hash,
        "{name}: seeds {SEED} and {OTHER} gave the same trace"
    );
}

macro_rules! scenario_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        #[test]
        fn every_scenario_is_tested_and_there_are_at_least_16() {
            let tested = [$($name),*];
            let all: Vec<&str> = scenarios::all().iter().map(|s| s.name).collect();
            assert_eq!(all, tested);
            assert!(all.len() >= 16);
        }
    };
}

scenario_tests! {
    inquiry => "inquiry",
    login_digests => "login-digests",
    login_chap => "login-chap",
    discovery => "discovery",
    r2t_matrix => "r2t-matrix",
    large_transfers => "large-transfers",
    abort_task => "abort-task",
    lun_reset => "lun-reset",
    nop_keepalive => "nop-keepalive",
    no_route => "no-route",
    target_crash => "target-crash",
    torn_writes => "torn-writes",
    initiator_crash => "initiator-crash",
    logout_during_io => "logout-during-io",
    persistent_reservations => "persistent-reservations",
    caw_race => "caw-race",
    media_errors => "media-errors",
    hold_release => "hold-release",
    soak => "soak",
}
