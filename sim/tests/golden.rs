//! Golden traces (`traces/golden/*.snap`, insta): the exact events of a
//! few short runs. A change to any engine's wire behaviour shows up here
//! as a reviewable diff (`cargo insta review`), not as a surprise.

use iscsi_sim::swarm::run_token;
use iscsi_sim::token::Token;
use iscsi_sim::world::RunOptions;

fn golden(token: &str) {
    let token: Token = token.parse().expect("token");
    let options = RunOptions {
        keep_trace: true,
        ..RunOptions::default()
    };
    let (outcome, result) = run_token(token, &options);
    assert!(outcome.passed(), "{token}: {:#?}", outcome.failures);
    let mut text = result.trace_lines.expect("kept").join("\n");
    text.push_str(&format!("\ntrace-hash: {:016x}\n", result.trace_hash));
    let name = token.to_string().replace('@', "-");
    insta::with_settings!({
        snapshot_path => "../../traces/golden",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn inquiry() {
    golden("inquiry@1");
}

#[test]
fn persistent_reservations() {
    golden("persistent-reservations@1");
}

#[test]
fn caw_race() {
    golden("caw-race@1");
}
