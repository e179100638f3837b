//! `soak`: the long run. Two initiators run the full I/O mix (reads,
//! writes, FUA writes, SYNCHRONIZE CACHE, occasional large transfers) for
//! a minute of simulated time while the swarm's faults strike — any kind:
//! partitions with and without "No route to host", one-way cuts, held
//! links, slow links and disks, target and initiator crashes, bad
//! sectors. Then the faults heal and both must finish their work and a
//! full read-back within the liveness bound. The oracle checks every read.

use std::time::Duration;

use super::{Ctx, Scenario, io_world};
use crate::faults::FaultKind;
use crate::workload::IoParams;
use crate::world::WorldSetup;

pub const SCENARIO: Scenario = Scenario {
    name: "soak",
    summary: "two initiators, full I/O mix, a minute of random faults of every kind",
    faults: FaultKind::ALL,
    build,
};

fn build(_: &mut Ctx<'_>) -> WorldSetup {
    let params = IoParams {
        think: Duration::from_millis(40),
        ..IoParams::default()
    };
    io_world(2, params, Duration::from_secs(60), |_| {})
}
