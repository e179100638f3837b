//! `initiator-crash`: one of two initiator hosts crashes mid-I/O — a
//! power cut (the target sees nothing) or a process crash (its sockets
//! close) — and boots again with no memory of its session. It logs in with
//! the same initiator name and ISID, so the target must reinstate: close
//! the old session and its connection (RFC 7143 §6.3.5), leaving one
//! session per initiator. Writes in flight at the crash have an unknown
//! outcome; everything acknowledged must read back, from both hosts.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::{Action, FaultKind};
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "initiator-crash",
    summary: "an initiator host crashes and reboots: the same ISID reinstates its session",
    faults: &[
        FaultKind::Hold,
        FaultKind::SlowLink,
        FaultKind::SlowDisk,
        FaultKind::CrashTarget,
    ],
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = Duration::from_secs(25);
    setup.disruptive = true;
    let at = Duration::from_millis(ctx.rng.random_range(3_000..10_000));
    let down = Duration::from_millis(ctx.rng.random_range(500..6_000));
    let silent = ctx.rng.random_bool(0.5);
    setup.faults.during(
        at,
        down,
        Action::Crash {
            host: "init-1".into(),
            silent,
        },
        Action::Restart {
            host: "init-1".into(),
        },
    );
    let params = IoParams {
        hot: 128,
        ..IoParams::default()
    };
    let p = params.clone();
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let params = p.clone();
            async move {
                let io = Io::new(ctx.clone(), params, session_config(&ctx));
                if ctx.restarts > 0 {
                    io.session().await?;
                    ctx.trace("rebooted: logged in again with the same ISID");
                    // The old session must be gone once the new one is up.
                    let sessions = ctx.world.server().map_or(0, |t| t.session_count());
                    if sessions > 2 {
                        return Err(format!(
                            "{sessions} sessions at the target after the reboot's login: the old one was not reinstated"
                        ));
                    }
                }
                run_io(io).await
            }
        }),
    );
    setup.initiator(
        "init-2",
        software(move |ctx| {
            let params = params.clone();
            async move { run_io(Io::new(ctx.clone(), params, session_config(&ctx))).await }
        }),
    );
    setup
}
