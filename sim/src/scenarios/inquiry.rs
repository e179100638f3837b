//! `inquiry`: the smallest world. A scripted client (no initiator engine)
//! logs in to the production target over turmoil and reads INQUIRY, REPORT
//! LUNS and READ CAPACITY(16), checking each answer byte by byte against
//! what the logical unit is configured with (SPC-5 §6.7, §6.33; SBC-4
//! §5.21). The base every other scenario builds on (issue 3, item 4).

use iscsi_engine::login::AuthPolicy;
use iscsi_engine::text::Preferences;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::scripted::Scripted;
use crate::workload::{host_isid, initiator_name};
use crate::world::{TARGET_IQN, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "inquiry",
    summary: "scripted client: login, INQUIRY, REPORT LUNS, READ CAPACITY",
    faults: FaultKind::TIMING,
    build,
};

const CAPACITY: u64 = 16 << 20;

fn build(_: &mut Ctx<'_>) -> WorldSetup {
    let mut setup = WorldSetup::new(TargetSetup::standard(AuthPolicy::default(), CAPACITY));
    setup.heal_at = std::time::Duration::from_secs(5);
    setup.initiator(
        "init-1",
        software(|ctx| async move {
            let mut c = Scripted::connect(&ctx.net, ctx.portal).await?;
            c.login(
                &initiator_name(&ctx.name),
                TARGET_IQN,
                host_isid(&ctx.name),
                Preferences::default(),
                ctx.seed("login"),
            )
            .await?;
            let inquiry = c.inquiry(1).await?;
            if inquiry[0] != 0 || &inquiry[8..16] != b"HARNESS " || &inquiry[16..24] != b"SIM-DISK"
            {
                return Err(format!("INQUIRY data {:02x?}", &inquiry[..32]));
            }
            let luns = c
                .read_command(0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], 256)
                .await?;
            if luns.status != 0 || luns.data.len() < 16 || luns.data[3] != 8 || luns.data[9] != 1 {
                return Err(format!("REPORT LUNS {:?}", luns));
            }
            let mut rc16 = [0u8; 16];
            rc16[0] = 0x9e;
            rc16[1] = 0x10;
            rc16[13] = 32;
            // The first medium-access command of a nexus meets the
            // power-on unit attention; the second must succeed.
            let first = c.read_command(1, &rc16, 32).await?;
            let cap = if first.status == 0 {
                first
            } else {
                c.read_command(1, &rc16, 32).await?
            };
            let last_lba = u64::from_be_bytes(cap.data[0..8].try_into().map_err(|_| "short")?);
            let block = u32::from_be_bytes(cap.data[8..12].try_into().map_err(|_| "short")?);
            if cap.status != 0 || last_lba + 1 != CAPACITY / 512 || block != 512 {
                return Err(format!("READ CAPACITY(16) {:?}", cap));
            }
            ctx.trace("inquiry, report luns, read capacity: ok");
            Ok(())
        }),
    );
    setup
}
