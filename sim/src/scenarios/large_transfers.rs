//! `large-transfers`: reads and writes of one to eight megabytes (the
//! logical unit's MAXIMUM TRANSFER LENGTH, SBC-4 §6.6.4) with small data
//! segments on both sides, so that one command is hundreds of Data-In or
//! Data-Out PDUs and many R2T bursts: offsets, DataSN and R2TSN sequences
//! and residuals are exercised at scale, and every byte is checked.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "large-transfers",
    summary: "1-8 MiB reads and writes in small PDUs and many R2T bursts",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    const SEGMENTS: &[u32] = &[4096, 8192, 32768, 65536];
    const BURSTS: &[u32] = &[65536, 262_144, 1 << 20];
    let target_mrdsl = SEGMENTS[ctx.rng.random_range(0..SEGMENTS.len())];
    let initiator_mrdsl = SEGMENTS[ctx.rng.random_range(0..SEGMENTS.len())];
    let burst = BURSTS[ctx.rng.random_range(0..BURSTS.len())];
    let mut target = TargetSetup::standard(Default::default(), 64 << 20);
    target.config.preferences.max_recv_data_segment_length = target_mrdsl;
    target.config.preferences.max_burst_length = burst;
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(8);
    setup.initiator(
        "init-1",
        software(move |ctx| async move {
            ctx.trace(format_args!(
                "MRDSL target={target_mrdsl} initiator={initiator_mrdsl} MaxBurstLength={burst}"
            ));
            let mut config = session_config(&ctx);
            config.preferences.max_recv_data_segment_length = initiator_mrdsl;
            let params = IoParams {
                hot: 1024,
                region: 65536,
                max_blocks: 2048,
                large_one_in: 2,
                large_blocks: 16384,
                workers: 2,
                final_ops: 2,
                read_percent: 50,
                flush_percent: 2,
                think: Duration::from_millis(400),
                ..IoParams::default()
            };
            run_io(Io::new(ctx.clone(), params, config)).await
        }),
    );
    setup
}
