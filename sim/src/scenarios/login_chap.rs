//! `login-chap`: CHAP (RFC 7143 §12.1.3, RFC 1994 with MD5). The seed
//! chooses the target's policy — no authentication, one-way or mutual
//! CHAP — and the initiator first tries, in an order the seed shuffles,
//! every login that policy must refuse: a wrong secret, an unknown user,
//! no credentials (all refused by the target with status 0201h,
//! authentication failure, §11.13.5), and under mutual CHAP a target that
//! answers with the wrong secret (refused by the initiator). Failed logins
//! leave the target able to serve the right one, which then carries I/O.

use std::time::Duration;

use iscsi_engine::login::{AuthPolicy, Credentials, LoginStatus};
use iscsi_engine::net::initiator::Session;
use rand::Rng;
use rand::seq::SliceRandom;

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

/// The target's authentication policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    None,
    OneWay,
    Mutual,
}

/// A login the policy must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    WrongSecret,
    UnknownUser,
    NoCredentials,
    WrongTargetSecret,
}

const POLICIES: &[Policy] = &[Policy::None, Policy::OneWay, Policy::Mutual];

/// Every login `policy` must refuse.
fn refusals(policy: Policy) -> Vec<Refused> {
    match policy {
        Policy::None => Vec::new(),
        Policy::OneWay => vec![
            Refused::WrongSecret,
            Refused::UnknownUser,
            Refused::NoCredentials,
        ],
        Policy::Mutual => vec![
            Refused::WrongSecret,
            Refused::UnknownUser,
            Refused::NoCredentials,
            Refused::WrongTargetSecret,
        ],
    }
}

fn creds(user: &str, secret: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: secret.into(),
    }
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let policy = POLICIES[ctx.rng.random_range(0..POLICIES.len())];
    let mut attempts = refusals(policy);
    attempts.shuffle(&mut ctx.rng);
    let alice = creds("alice", "alice-secret-12");
    let target_creds = creds("target", "target-secret-34");
    let auth = match policy {
        Policy::None => AuthPolicy::default(),
        Policy::OneWay => AuthPolicy {
            chap_accounts: vec![alice.clone()],
            mutual: None,
        },
        Policy::Mutual => AuthPolicy {
            chap_accounts: vec![alice.clone()],
            mutual: Some(target_creds.clone()),
        },
    };
    let mut setup = WorldSetup::new(TargetSetup::standard(auth, 16 << 20));
    setup.heal_at = Duration::from_secs(6);
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let (alice, target_creds, attempts) =
                (alice.clone(), target_creds.clone(), attempts.clone());
            async move {
                ctx.trace(format_args!("policy {policy:?}, refusals {attempts:?}"));
                let mut good = session_config(&ctx);
                if policy != Policy::None {
                    good.chap = Some(alice.clone());
                }
                if policy == Policy::Mutual {
                    good.mutual = Some(target_creds.clone());
                }
                for (i, case) in attempts.into_iter().enumerate() {
                    let mut bad = good.clone();
                    let by_target = case != Refused::WrongTargetSecret;
                    match case {
                        Refused::WrongSecret => bad.chap = Some(creds("alice", "not-the-secret")),
                        Refused::UnknownUser => {
                            bad.chap = Some(creds("mallory", "alice-secret-12"))
                        }
                        Refused::NoCredentials => bad.chap = None,
                        Refused::WrongTargetSecret => {
                            bad.mutual = Some(creds("target", "wrong-target-secret"))
                        }
                    }
                    let seed = ctx.seed(&format!("bad-{i}"));
                    match Session::login(ctx.net.clone(), bad, seed).await {
                        Ok(_) => {
                            return Err(format!("{case:?}: the login succeeded; it must fail"));
                        }
                        Err(e) if by_target => {
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
