//! `abort-task`: ABORT TASK under load (RFC 7143 §11.5.1). Batches of
//! writes and reads are in flight when the initiator aborts some of them
//! by tag. The TMF must answer FUNCTION COMPLETE (the task was aborted) or
//! TASK DOES NOT EXIST (it had already completed, §11.6.1); an aborted
//! command must end as aborted, never with a late GOOD; after the dust
//! settles every block holds either its old data or the aborted write's
//! (an aborted write's outcome is unknown), and the oracle and the wire
//! checker (no Data-In or response for an aborted task after the TMF
//! response) agree.

use std::time::Duration;

use iscsi_engine::net::initiator::{InitiatorError, TmfFunction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::scsi::rw10;
use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "abort-task",
    summary: "ABORT TASK of commands in flight: complete or does-not-exist, never a late GOOD",
    faults: FaultKind::TIMING,
    build,
};

fn build(_: &mut Ctx<'_>) -> WorldSetup {
    let mut target = TargetSetup::standard(Default::default(), 16 << 20);
    // A slower disk keeps commands in flight long enough to abort.
    target.latency.min = Duration::from_millis(2);
    target.latency.max = Duration::from_millis(20);
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(8);
    setup.initiator(
        "init-1",
        software(|ctx| async move {
            let params = IoParams {
                hot: 128,
                ..IoParams::default()
            };
            let io = Io::new(ctx.clone(), params, session_config(&ctx));
            let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed("aborts"));
            let (mut aborted, mut too_late) = (0, 0);
            for round in 0..12 {
                let (_, s) = io.session().await?;
                let mut pending = Vec::new();
                for _ in 0..rng.random_range(2..8) {
                    let n = rng.random_range(1..=8u16);
                    let lba = rng.random_range(0..128 - u64::from(n));
                    let write = rng.random_bool(0.6)
                        && ctx.world.try_lock_blocks(&ctx.name, 1, lba, u64::from(n));
                    if write {
                        let (id, data) =
                            ctx.world.oracle().begin_write(1, lba, u32::from(n), false);
                        let p = s.start_command(1, &rw10(true, lba, n, false), data, 0);
                        pending.push((p, Some(id), lba, n));
                    } else {
                        let id = ctx.world.oracle().begin_read(1, lba, u32::from(n));
                        let cdb = rw10(false, lba, n, false);
                        let p = s.start_command(1, &cdb, Default::default(), u32::from(n) * 512);
                        pending.push((p, Some(id | READ), lba, n));
                    }
                }
                tokio::time::sleep(Duration::from_micros(rng.random_range(0..15_000))).await;
                let victim = rng.random_range(0..pending.len());
                let tag = pending[victim].0.tag();
                let response = s
                    .task_management(1, TmfFunction::AbortTask, Some(tag))
                    .await
                    .map_err(|e| format!("ABORT TASK: {e}"))?;
                match response {
                    0 => aborted += 1,
                    1 => too_late += 1,
                    r => return Err(format!("ABORT TASK answered {r}, expected 0 or 1")),
                }
                for (i, (p, id, lba, n)) in pending.into_iter().enumerate() {
                    let result = p.wait().await;
                    let id = id.expect("recorded");
                    let is_read = id & READ != 0;
                    let id = id & !READ;
                    match (&result, is_read) {
                        (Ok(o), false) if o.status == 0 => {
                            if i == victim && response == 0 {
                                return Err(format!(
                                    "round {round}: the aborted write lba={lba}+{n} completed GOOD"
                                ));
                            }
                            ctx.world.oracle().end_write(id, true);
                        }
                        (Ok(o), true) if o.status == 0 => {
                            if i == victim && response == 0 {
                                return Err(format!(
                                    "round {round}: the aborted read lba={lba}+{n} completed GOOD"
                                ));
                            }
                            let checked = ctx.world.oracle().end_read(id, &o.data);
                            checked.map_err(|e| format!("read lba={lba}+{n}: {e}"))?;
                        }
                        (Err(InitiatorError::Aborted), _) if i == victim => {
                            if is_read {
                                ctx.world.oracle().abandon_read(id);
                            } else {
                                ctx.world.oracle().end_write(id, false);
                            }
                        }
                        (other, _) => {
                            return Err(format!(
                                "round {round}: command lba={lba}+{n} (victim: {}) ended {other:?}",
                                i == victim
                            ));
                        }
                    }
                    if !is_read {
                        ctx.world.unlock_blocks(1, lba, u64::from(n));
                    }
                }
            }
            ctx.trace(format_args!(
                "aborted {aborted}, already complete {too_late}"
            ));
            io.verify().await?;
            io.logout().await
        }),
    );
    setup
}

/// Marks an oracle id as a read's in the pending list.
const READ: u64 = 1 << 63;
