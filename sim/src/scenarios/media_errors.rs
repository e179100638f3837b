//! `media-errors`: sectors go bad under the workload. A read that touches
//! one must fail with MEDIUM ERROR, UNRECOVERED READ ERROR (SBC-4 §4.14,
//! sense key 3h, ASC 11h) — never return data — and a write repairs the
//! sector, as a drive reallocates it. At the end a scripted check plants a
//! bad sector on a known block and reads it with a raw READ(10): the sense
//! data must name that LBA in its INFORMATION field (SPC-5 §4.4).

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::scsi::{rw10, sense_information};
use super::{Ctx, Scenario};
use crate::faults::{Action, FaultKind};
use crate::workload::{Done, Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "media-errors",
    summary: "bad sectors: reads fail with MEDIUM ERROR naming the LBA, writes repair",
    faults: FaultKind::TIMING,
    build,
};

/// The block of the final scripted check (outside the hot region).
const CHECK_LBA: u64 = 3000;

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let params = IoParams {
        hot: 128,
        read_percent: 60,
        ..IoParams::default()
    };
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 64 << 20));
    setup.heal_at = Duration::from_secs(20);
    let mut t = Duration::from_secs(2);
    for _ in 0..ctx.rng.random_range(3..=8) {
        t += Duration::from_millis(ctx.rng.random_range(200..2_000));
        let lba = ctx.rng.random_range(0..params.hot);
        setup.faults.at(
            t,
            Action::BadSector {
                lun: 1,
                offset: lba * 512,
            },
        );
    }
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let params = params.clone();
            async move {
                let io = Io::new(ctx.clone(), params, session_config(&ctx));
                run_io(io.clone()).await?;
                scripted_check(&io).await
            }
        }),
    );
    setup
}

async fn scripted_check(io: &Io) -> Result<(), String> {
    if io.write(CHECK_LBA, 1, true).await? != Done::Ok {
        return Err("the write before the media check failed".into());
    }
    let disk = io.ctx.world.disk(1).ok_or("no disk")?.clone();
    disk.add_bad_sector(CHECK_LBA * 512);
    let (_, s) = io.session().await?;
    let read = s
        .command(1, &rw10(false, CHECK_LBA, 1, false), Bytes::new(), 512)
        .await
        .map_err(|e| format!("READ of the bad sector: {e}"))?;
    let sense = read.sense.ok_or("READ of a bad sector returned no sense")?;
    if read.status != 0x02 || sense.key != 0x03 || sense.asc != 0x11 {
        return Err(format!(
            "READ of a bad sector: status {:#x} sense {:x}/{:02x}/{:02x}, expected MEDIUM ERROR 11/00",
            read.status, sense.key, sense.asc, sense.ascq
        ));
    }
    if sense_information(&sense.raw) != Some(CHECK_LBA) {
        return Err(format!(
            "MEDIUM ERROR INFORMATION {:?}, expected LBA {CHECK_LBA}",
            sense_information(&sense.raw)
        ));
    }
    if io.write(CHECK_LBA, 1, false).await? != Done::Ok || io.read(CHECK_LBA, 1).await? != Done::Ok
    {
        return Err("a rewritten bad sector does not read back".into());
    }
    io.ctx
        .trace("media check: MEDIUM ERROR named the LBA; the rewrite repaired it");
    io.logout().await
}
