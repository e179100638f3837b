//! `nop-keepalive`: a link that dies silently. After some I/O the network
//! between the initiator and the target turns into a black hole: no
//! segment gets through, no error comes back, and TCP itself would stay
//! quiet for minutes. Both sides must notice through their own pings
//! (RFC 7143 §11.18-§11.19, NOP-Out and NOP-In): the initiator leaves the
//! full-feature phase, and the target drops the connection, each within
//! its ping interval plus ping timeout (5 s + 5 s). When the link comes
//! back, the session recovers and finishes its work.

use std::time::Duration;

use iscsi_engine::net::initiator::State;
use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::net::RouteFault;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TARGET, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "nop-keepalive",
    summary: "a black-holed link: NOP-Out and NOP-In pings detect it within 10 s on each side",
    faults: &[FaultKind::SlowDisk],
    build,
};

/// Ping interval plus ping timeout on both sides, and slack for ticks and
/// latency.
const DETECT_WITHIN: Duration = Duration::from_millis(11_500);

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let cut = Duration::from_millis(ctx.rng.random_range(3_000..6_000));
    let len = Duration::from_millis(ctx.rng.random_range(14_000..20_000));
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = cut + len + Duration::from_secs(1);
    setup.disruptive = true;
    setup
        .faults
        .cut(cut, len, "init-1", TARGET, RouteFault::Blackhole);
    setup.initiator(
        "init-1",
        software(move |ctx| async move {
            let params = IoParams {
                hot: 64,
                final_ops: 10,
                ..IoParams::default()
            };
            let io = Io::new(ctx.clone(), params, session_config(&ctx));
            let (_, s) = io.session().await?;
            // Busy until just before the cut, so that the last input on
            // each side is recent when the link dies.
            let mut i = 0u64;
            while now() + Duration::from_millis(50) < cut {
                io.write(i % 64, 1, false).await?;
                i += 1;
            }
            while now() < cut {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let (mut initiator_saw, mut target_saw) = (None, None);
            while now() < cut + DETECT_WITHIN + Duration::from_secs(1) {
                if initiator_saw.is_none() && s.state() != State::FullFeature {
                    initiator_saw = Some(now() - cut);
                }
                let target_conns = ctx.world.server().map_or(0, |t| t.connection_count());
                if target_saw.is_none() && target_conns == 0 {
                    target_saw = Some(now() - cut);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ctx.trace(format_args!(
                "dead link seen by the initiator after {initiator_saw:?}, by the target after {target_saw:?}"
            ));
            for (who, saw) in [("initiator", initiator_saw), ("target", target_saw)] {
                match saw {
                    Some(t) if t <= DETECT_WITHIN => {}
                    other => {
                        return Err(format!(
                            "the {who} did not notice the dead link within {DETECT_WITHIN:?} ({other:?})"
                        ));
                    }
                }
            }
            run_io(io).await
        }),
    );
    setup
}
