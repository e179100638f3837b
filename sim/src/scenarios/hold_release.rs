//! `hold-release`: latency spikes. The link between the initiator and the
//! target holds every message for a while (0.2 to 12 seconds), then
//! delivers them all at once, several times during I/O. Short holds only
//! slow things down; long ones outlast the NOP timeouts of either side, so
//! connections are dropped and recovered while old segments are still in
//! flight. Data must stay correct throughout.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario, io_world};
use crate::faults::{Action, FaultKind};
use crate::workload::IoParams;
use crate::world::{TARGET, WorldSetup};

pub const SCENARIO: Scenario = Scenario {
    name: "hold-release",
    summary: "links hold messages for up to 12 s, then release them at once",
    faults: FaultKind::TIMING,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let mut setup = io_world(1, IoParams::default(), Duration::from_secs(30), |_| {});
    setup.disruptive = true;
    let mut t = Duration::from_secs(2);
    for _ in 0..ctx.rng.random_range(2..=5) {
        t += Duration::from_millis(ctx.rng.random_range(300..4_000));
        let len = Duration::from_millis(ctx.rng.random_range(200..12_000));
        if t + len > setup.heal_at {
            break;
        }
        setup.faults.during(
            t,
            len,
            Action::Hold {
                a: "init-1".into(),
                b: TARGET.into(),
            },
            Action::Release {
                a: "init-1".into(),
                b: TARGET.into(),
            },
        );
        t += len;
    }
    setup
}
