//! `discovery`: a discovery session (RFC 7143 §13.21, Appendix C) asks
//! `SendTargets=All`; the answer must name exactly our target, at the
//! portal the initiator connected to, with portal group tag 1. The seed
//! decides whether discovery requires CHAP (and then whether the initiator
//! knows the secret: without it, discovery must be refused with 0201h).
//! Then a normal session logs in to what discovery returned and does I/O.

use std::time::Duration;

use iscsi_engine::login::{AuthPolicy, Credentials, LoginStatus};
use iscsi_engine::net::initiator::discover;
use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, initiator_name, run as run_io, session_config};
use crate::world::{PORT, TARGET_IQN, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "discovery",
    summary: "SendTargets=All with and without discovery CHAP, then a login to the result",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let chap = ctx.rng.random_bool(0.5);
    let knows_secret = !chap || ctx.rng.random_bool(0.7);
    let account = Credentials {
        user: "finder".into(),
        secret: "finder-secret-99".into(),
    };
    let mut target = TargetSetup::standard(AuthPolicy::default(), 16 << 20);
    if chap {
        target.config.discovery_auth = AuthPolicy {
            chap_accounts: vec![account.clone()],
            mutual: None,
        };
    }
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(6);
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let account = account.clone();
            async move {
                ctx.trace(format_args!(
                    "discovery chap={chap} knows_secret={knows_secret}"
                ));
                let name = initiator_name(&ctx.name);
                if chap && !knows_secret {
                    match discover(ctx.net.clone(), ctx.portal, &name, None, ctx.seed("d0")).await {
                        Ok(r) => return Err(format!("discovery without CHAP answered {r:?}")),
                        Err(e) if e.login_status() == Some(LoginStatus::AUTHENTICATION_FAILURE) => {
                        }
                        Err(e) => {
                            return Err(format!("discovery without CHAP: {e}, expected 0201"));
                        }
                    }
                }
                let creds = chap.then_some(account);
                let records = discover(ctx.net.clone(), ctx.portal, &name, creds, ctx.seed("d1"))
                    .await
                    .map_err(|e| format!("discovery: {e}"))?;
                let [record] = records.as_slice() else {
                    return Err(format!(
                        "SendTargets answered {records:?}, expected one target"
                    ));
                };
                let want_host = ctx.portal.ip().to_string();
                let ok = record.name == TARGET_IQN
                    && record.addresses.iter().any(|a| {
                        a.host == want_host && a.port == PORT && a.portal_group_tag == Some(1)
                    });
                if !ok {
                    return Err(format!("SendTargets answered {record:?}"));
                }
                ctx.trace(format_args!(
                    "discovered {} at {}",
                    record.name, record.addresses[0]
                ));
                let params = IoParams {
                    hot: 32,
                    final_ops: 5,
                    ..IoParams::default()
                };
                run_io(Io::new(ctx.clone(), params, session_config(&ctx))).await
            }
        }),
    );
    setup
}
