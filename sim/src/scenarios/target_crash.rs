//! `target-crash`: the target host crashes in the middle of I/O, one to
//! three times — sometimes a power cut (its peers see nothing, the write
//! cache is lost), sometimes a process crash (sockets close) — and comes
//! back on the same disk. The initiator must notice (NOP-Out timeout or a
//! closed connection), reconnect with its ISID (the new target has no
//! session to reinstate, RFC 7143 §6.3.5), and retry what was not
//! acknowledged. The oracle holds the target to SBC-4's durability rules:
//! whatever was acknowledged before a successful SYNCHRONIZE CACHE began,
//! or with FUA, survives; the rest may vanish.

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario, io_world};
use crate::faults::{Action, FaultKind};
use crate::workload::IoParams;
use crate::world::{TARGET, WorldSetup};

pub const SCENARIO: Scenario = Scenario {
    name: "target-crash",
    summary: "target crashes and restarts during I/O; flushed and FUA data must survive",
    faults: FaultKind::ALL,
    build,
};

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let params = IoParams {
        flush_percent: 12,
        fua_percent: 25,
        hot: 128,
        ..IoParams::default()
    };
    let mut setup = io_world(1, params, Duration::from_secs(30), |c| {
        c.replacement_timeout = Duration::from_secs(60)
    });
    setup.disruptive = true;
    let crashes = ctx.rng.random_range(1..=3);
    let mut t = Duration::from_secs(3);
    for _ in 0..crashes {
        t += Duration::from_millis(ctx.rng.random_range(500..6_000));
        let down = Duration::from_millis(ctx.rng.random_range(200..5_000));
        let silent = ctx.rng.random_bool(0.5);
        setup.faults.during(
            t,
            down,
            Action::Crash {
                host: TARGET.into(),
                silent,
            },
            Action::Restart {
                host: TARGET.into(),
            },
        );
        t += down;
    }
    setup
}
