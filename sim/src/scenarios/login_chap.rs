//! `login-chap`: CHAP (RFC 7143 §12.1.3, RFC 1994 with MD5) in each of
//! its cases, the seed choosing one: no authentication, one-way, mutual,
//! and the failures — a wrong secret, an unknown user, no credentials for
//! a target that requires them (all refused by the target with status
//! 0201h, authentication failure, §11.13.5), and a target that answers
//! mutual CHAP with the wrong secret (refused by the initiator). A failed
//! login leaves the target able to serve the right one; every successful
//! login carries I/O.

use std::time::Duration;

use iscsi_engine::login::{AuthPolicy, Credentials, LoginStatus};
use iscsi_engine::net::initiator::Session;
use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "login-chap",
    summary: "CHAP none, one-way, mutual; wrong secret, unknown user, wrong target secret",
    faults: FaultKind::TIMING,
    build,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    None,
    OneWay,
    Mutual,
    WrongSecret,
    UnknownUser,
    NoCredentials,
    WrongTargetSecret,
}

const CASES: &[Case] = &[
    Case::None,
    Case::OneWay,
    Case::Mutual,
    Case::WrongSecret,
    Case::UnknownUser,
    Case::NoCredentials,
    Case::WrongTargetSecret,
];

fn creds(user: &str, secret: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: secret.into(),
    }
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let case = CASES[ctx.rng.random_range(0..CASES.len())];
    let alice = creds("alice", "alice-secret-12");
    let target_creds = creds("target", "target-secret-34");
    let auth = match case {
        Case::None => AuthPolicy::default(),
        Case::OneWay | Case::WrongSecret | Case::UnknownUser | Case::NoCredentials => AuthPolicy {
            chap_accounts: vec![alice.clone()],
            mutual: None,
        },
        Case::Mutual | Case::WrongTargetSecret => AuthPolicy {
            chap_accounts: vec![alice.clone()],
            mutual: Some(target_creds.clone()),
        },
    };
    let mut setup = WorldSetup::new(TargetSetup::standard(auth, 16 << 20));
    setup.heal_at = Duration::from_secs(6);
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let (alice, target_creds) = (alice.clone(), target_creds.clone());
            async move {
                ctx.trace(format_args!("case {case:?}"));
                let mut good = session_config(&ctx);
                if case != Case::None {
                    good.chap = Some(alice.clone());
                }
                if matches!(case, Case::Mutual | Case::WrongTargetSecret) {
                    good.mutual = Some(target_creds.clone());
                }
                let mut bad = good.clone();
                let (expect_target_refusal, attempt) = match case {
                    Case::WrongSecret => (true, Some(creds("alice", "not-the-secret"))),
                    Case::UnknownUser => (true, Some(creds("mallory", "alice-secret-12"))),
                    Case::NoCredentials => (true, None),
                    Case::WrongTargetSecret => {
                        bad.mutual = Some(creds("target", "wrong-target-secret"));
                        (false, Some(alice.clone()))
                    }
                    _ => (false, good.chap.clone()),
                };
                let failing = !matches!(case, Case::None | Case::OneWay | Case::Mutual);
                if failing {
                    bad.chap = attempt;
                    match Session::login(ctx.net.clone(), bad, ctx.seed("bad")).await {
                        Ok(_) => {
                            return Err(format!("{case:?}: the login succeeded; it must fail"));
                        }
                        Err(e) if expect_target_refusal => {
                            if e.login_status() != Some(LoginStatus::AUTHENTICATION_FAILURE) {
                                return Err(format!(
                                    "{case:?}: expected status 0201 (authentication failure), got {e}"
                                ));
                            }
                        }
                        Err(e) => {
                            if e.login_status().is_some() {
                                return Err(format!(
                                    "{case:?}: the initiator must refuse the target, yet the target refused: {e}"
                                ));
                            }
                        }
                    }
                    ctx.trace(format_args!("{case:?}: refused as it must be"));
                }
                let params = IoParams {
                    hot: 32,
                    final_ops: 8,
                    ..IoParams::default()
                };
                run_io(Io::new(ctx.clone(), params, good)).await
            }
        }),
    );
    setup
}
