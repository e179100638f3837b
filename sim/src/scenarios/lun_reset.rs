//! `lun-reset`: LOGICAL UNIT RESET under load (RFC 7143 §11.5.1, SAM-5).
//! Two initiators run I/O; one of them resets the logical unit a few
//! times. The reset must answer FUNCTION COMPLETE, abort every task in the
//! task set (the other initiator's commands are ended silently and
//! recovered by its command timeout and ABORT TASK), and give the other
//! initiator a UNIT ATTENTION on its first command afterwards — the wire
//! checker enforces that on every connection. Data stays consistent.

use std::time::Duration;

use iscsi_engine::net::initiator::TmfFunction;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{Phase, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "lun-reset",
    summary: "LUN RESET under load from one of two initiators; the other meets UNIT ATTENTION",
    faults: FaultKind::TIMING,
    build,
};

fn params() -> IoParams {
    IoParams {
        hot: 128,
        ..IoParams::default()
    }
}

fn build(_: &mut Ctx<'_>) -> WorldSetup {
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = Duration::from_secs(20);
    setup.disruptive = true;
    let quick = |ctx: &crate::world::HostCtx| {
        let mut c = session_config(ctx);
        c.command_timeout = Some(Duration::from_secs(4));
        c
    };
    setup.initiator(
        "init-1",
        software(move |ctx| async move {
            let io = Io::new(ctx.clone(), params(), quick(&ctx));
            let resetter = {
                let io = io.clone();
                let ctx = ctx.clone();
                tokio::task::spawn_local(async move {
                    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed("resets"));
                    let mut resets = 0;
                    while ctx.world.phase() == Phase::Safety {
                        tokio::time::sleep(Duration::from_millis(rng.random_range(2_000..7_000)))
                            .await;
                        let (g, s) = io.session().await?;
                        match s
                            .task_management(1, TmfFunction::LogicalUnitReset, None)
                            .await
                        {
                            Ok(0) => resets += 1,
                            Ok(r) => return Err(format!("LUN RESET answered {r}")),
                            Err(e) => {
                                let _ = g;
                                io.tolerate("LUN RESET", &e)?;
                            }
                        }
                    }
                    ctx.trace(format_args!("{resets} LUN resets"));
                    Ok::<(), String>(())
                })
            };
            run_io(io).await?;
            resetter.await.map_err(|e| e.to_string())?
        }),
    );
    setup.initiator(
        "init-2",
        software(
            move |ctx| async move { run_io(Io::new(ctx.clone(), params(), quick(&ctx))).await },
        ),
    );
    setup
}
