//! `no-route`: connection loss with "No route to host" during I/O. The
//! route between the initiator and the target goes away for longer than
//! the session's replacement timeout: the established connection stalls,
//! the pings notice, and every reconnect attempt fails with
//! `EHOSTUNREACH` — the error a firewall's reject or a missing route gives
//! a real initiator. The session must give up after its replacement
//! timeout and say why ("No route to host"), the workload logs in again
//! once the route is back (the same ISID: session reinstatement, RFC 7143
//! §6.3.5), and no acknowledged write is lost.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::net::RouteFault;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TARGET, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "no-route",
    summary: "route lost during I/O: reconnects fail with No route to host, then recover",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let cut = Duration::from_millis(ctx.rng.random_range(2_000..6_000));
    let len = Duration::from_millis(ctx.rng.random_range(22_000..30_000));
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = cut + len + Duration::from_secs(1);
    setup.disruptive = true;
    setup
        .faults
        .cut(cut, len, "init-1", TARGET, RouteFault::Unreachable);
    setup.initiator(
        "init-1",
        software(|ctx| async move {
            let mut config = session_config(&ctx);
            config.replacement_timeout = Duration::from_secs(8);
            let params = IoParams {
                hot: 128,
                ..IoParams::default()
            };
            let io = Io::new(ctx.clone(), params, config);
            run_io(io.clone()).await?;
            let errors = io.errors.borrow();
            if !errors.iter().any(|e| e.contains("No route to host")) {
                return Err(format!(
                    "no error said \"No route to host\"; the errors were {errors:?}"
                ));
            }
            ctx.trace(format_args!(
                "{} tolerated errors, \"No route to host\" among them",
                errors.len()
            ));
            Ok(())
        }),
    );
    setup
}
