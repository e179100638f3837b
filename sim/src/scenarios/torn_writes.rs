//! `torn-writes`: large multi-block writes without flushes, then a power
//! cut of the target. The disk keeps a random subset of the cached
//! sectors, so a write can survive in part (SBC-4 makes no atomicity
//! promise for an ordinary WRITE). Every block read afterwards must be, as
//! a whole, either the old or the new contents of one write — never
//! garbage, never a block of another LBA — and anything flushed before the
//! cut must still be there.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario, io_world};
use crate::faults::{Action, FaultKind};
use crate::workload::IoParams;
use crate::world::{TARGET, WorldSetup};

pub const SCENARIO: Scenario = Scenario {
    name: "torn-writes",
    summary: "power cut during large unflushed writes: blocks are old or new, never torn inside",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let params = IoParams {
        max_blocks: 64,
        large_one_in: 4,
        large_blocks: 512,
        hot: 512,
        region: 2048,
        flush_percent: 3,
        fua_percent: 0,
        read_percent: 30,
        ..IoParams::default()
    };
    let mut setup = io_world(1, params, Duration::from_secs(20), |c| {
        c.replacement_timeout = Duration::from_secs(60)
    });
    setup.disruptive = true;
    let at = Duration::from_millis(ctx.rng.random_range(4_000..12_000));
    let down = Duration::from_millis(ctx.rng.random_range(500..3_000));
    setup.faults.during(
        at,
        down,
        Action::Crash {
            host: TARGET.into(),
            silent: true,
        },
        Action::Restart {
            host: TARGET.into(),
        },
    );
    setup
}
