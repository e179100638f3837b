//! `logout-during-io`: the initiator logs out (reason 0, close the
//! session: RFC 7143 §11.14) while its workers still have commands in
//! flight. Commands already sent must complete normally — the logout
//! waits for them — and the Logout Response must come; commands started
//! after the logout began may find the session closed. The workload then
//! logs in again and its data is all there.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "logout-during-io",
    summary: "logout with commands in flight: they complete, then a clean logout",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = Duration::from_secs(12);
    let logouts: Vec<Duration> = (0..ctx.rng.random_range(1..=3))
        .map(|i| Duration::from_millis(2_000 + i * 3_000 + ctx.rng.random_range(0..2_500)))
        .collect();
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let logouts = logouts.clone();
            async move {
                let params = IoParams {
                    hot: 128,
                    think: Duration::from_millis(5),
                    ..IoParams::default()
                };
                let io = Io::new(ctx.clone(), params, session_config(&ctx));
                let closer = {
                    let io = io.clone();
                    tokio::task::spawn_local(async move {
                        for at in logouts {
                            let now = turmoil::sim_elapsed().unwrap_or_default();
                            tokio::time::sleep(at.saturating_sub(now)).await;
                            io.session().await?;
                            io.logout_now()
                                .await
                                .map_err(|e| format!("logout during I/O: {e}"))?;
                            io.ctx.trace("logged out with I/O in flight");
                        }
                        Ok::<(), String>(())
                    })
                };
                run_io(io).await?;
                closer.await.map_err(|e| e.to_string())?
            }
        }),
    );
    setup
}
