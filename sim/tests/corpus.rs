//! Replays every run that ever failed (`traces/failed-seeds.txt`): the
//! real bugs the simulator found must stay fixed, and every planted bug
//! must still be caught by the seed that first caught it.

use iscsi_sim::swarm::run_token;
use iscsi_sim::token::Token;
use iscsi_sim::world::RunOptions;

const CORPUS: &str = include_str!("../../traces/failed-seeds.txt");

#[test]
fn every_seed_that_ever_failed_does_what_it_must() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in CORPUS.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(token), Some(expect)) = (words.next(), words.next()) else {
            panic!("bad corpus line {line:?}");
        };
        let token: Token = token.parse().expect("token");
        let must_fail = match expect {
            "fail" => true,
            "pass" => false,
            other => panic!("bad expectation {other:?} in {line:?}"),
        };
        let (outcome, _) = run_token(token, &RunOptions::default());
        if outcome.passed() == must_fail {
            wrong.push(format!(
                "{token}: expected to {expect}, got {:?}",
                outcome.failures
            ));
        }
        checked += 1;
    }
    assert!(checked >= 10, "the corpus has {checked} tokens");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
