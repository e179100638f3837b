//! `persistent-reservations`: two initiators and PERSISTENT RESERVE OUT /
//! IN (SPC-5 §6.16-§6.17). Both register a key; the first reserves the
//! logical unit with a type the seed picks (Write Exclusive, Exclusive
//! Access, or their Registrants Only forms); the second must then meet
//! RESERVATION CONFLICT exactly where the type forbids it (writes, and
//! for Exclusive Access reads, unless registrants are allowed), see the
//! holder and type in READ RESERVATION, and regain access once the holder
//! releases. Every write that was allowed is checked by the oracle.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::scsi::{
    command, parse_reservation, pr_action, pr_in_read_reservation, pr_out, pr_type, rw10,
};
use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, session_config};
use crate::world::{HostCtx, TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "persistent-reservations",
    summary: "two initiators: register, reserve (WE/EA/WERO/EARO), conflicts, release",
    faults: FaultKind::TIMING,
    build,
};

const KEY_1: u64 = 0x1111_0000_0000_0001;
const KEY_2: u64 = 0x2222_0000_0000_0002;
const TYPES: &[u8] = &[
    pr_type::WRITE_EXCLUSIVE,
    pr_type::EXCLUSIVE_ACCESS,
    pr_type::WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
    pr_type::EXCLUSIVE_ACCESS_REGISTRANTS_ONLY,
];
const RESERVATION_CONFLICT: u8 = 0x18;

/// Where the two hosts are in the script.
type Step = Rc<Cell<u32>>;

async fn wait_for(step: &Step, n: u32) {
    while step.get() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn io(ctx: &HostCtx) -> Rc<Io> {
    let params = IoParams {
        hot: 64,
        ..IoParams::default()
    };
    Io::new(ctx.clone(), params, session_config(ctx))
}

/// A PERSISTENT RESERVE OUT that must succeed.
async fn pr(io: &Io, action: u8, kind: u8, key: u64, sa_key: u64) -> Result<(), String> {
    let (_, s) = io.session().await?;
    let (cdb, data) = pr_out(action, kind, key, sa_key);
    let o = command(&s, 1, &cdb, data, 0)
        .await
        .map_err(|e| format!("PERSISTENT RESERVE OUT {action:#x}: {e}"))?;
    if o.status != 0 {
        return Err(format!(
            "PERSISTENT RESERVE OUT {action:#x} type {kind}: status {:#04x}",
            o.status
        ));
    }
    Ok(())
}

/// A raw WRITE(10) of one block; returns its status.
async fn write(io: &Io, lba: u64) -> Result<u8, String> {
    let (_, s) = io.session().await?;
    while !io.ctx.world.try_lock_blocks(&io.ctx.name, 1, lba, 1) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (id, data) = io.ctx.world.oracle().begin_write(1, lba, 1, false);
    let result = command(&s, 1, &rw10(true, lba, 1, false), data, 0).await;
    let good = matches!(&result, Ok(o) if o.status == 0);
    io.ctx.world.oracle().end_write(id, good);
    io.ctx.world.unlock_blocks(1, lba, 1);
    result.map(|o| o.status).map_err(|e| format!("WRITE: {e}"))
}

/// A raw READ(10) of one block, checked when GOOD; returns its status.
async fn read(io: &Io, lba: u64) -> Result<u8, String> {
    let (_, s) = io.session().await?;
    let id = io.ctx.world.oracle().begin_read(1, lba, 1);
    let o = command(&s, 1, &rw10(false, lba, 1, false), Bytes::new(), 512)
        .await
        .map_err(|e| format!("READ: {e}"))?;
    if o.status == 0 {
        io.ctx.world.oracle().end_read(id, &o.data)?;
    } else {
        io.ctx.world.oracle().abandon_read(id);
    }
    Ok(o.status)
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let kind = TYPES[ctx.rng.random_range(0..TYPES.len())];
    let lbas: Vec<u64> = (0..4).map(|_| ctx.rng.random_range(0..64)).collect();
    let mut setup = WorldSetup::new(TargetSetup::standard(Default::default(), 16 << 20));
    setup.heal_at = Duration::from_secs(6);
    let step: Step = Rc::new(Cell::new(0));
    let s1 = step.clone();
    let l1 = lbas.clone();
    setup.initiator(
        "init-1",
        software(move |ctx| {
            let (step, lbas) = (s1.clone(), l1.clone());
            async move {
                let io = io(&ctx);
                pr(&io, pr_action::REGISTER, 0, 0, KEY_1).await?;
                step.set(1);
                wait_for(&step, 2).await;
                pr(&io, pr_action::RESERVE, kind, KEY_1, 0).await?;
                ctx.trace(format_args!("reserved with type {kind}"));
                step.set(3);
                wait_for(&step, 4).await;
                for &lba in &lbas {
                    if write(&io, lba).await? != 0 {
                        return Err("the reservation holder cannot write".into());
                    }
                }
                pr(&io, pr_action::RELEASE, kind, KEY_1, 0).await?;
                step.set(5);
                wait_for(&step, 6).await;
                pr(&io, pr_action::REGISTER, 0, KEY_1, 0).await?;
                io.verify().await?;
                io.logout().await
            }
        }),
    );
    setup.initiator(
        "init-2",
        software(move |ctx| {
            let (step, lbas) = (step.clone(), lbas.clone());
            async move {
                let io = io(&ctx);
                wait_for(&step, 1).await;
                pr(&io, pr_action::REGISTER, 0, 0, KEY_2).await?;
                step.set(2);
                wait_for(&step, 3).await;
                let registrants_only = matches!(
                    kind,
                    pr_type::WRITE_EXCLUSIVE_REGISTRANTS_ONLY
                        | pr_type::EXCLUSIVE_ACCESS_REGISTRANTS_ONLY
                );
                let exclusive_access = kind == pr_type::EXCLUSIVE_ACCESS;
                for &lba in &lbas {
                    let w = write(&io, lba).await?;
                    let want = if registrants_only { 0 } else { RESERVATION_CONFLICT };
                    if w != want {
                        return Err(format!(
                            "a registered non-holder's WRITE under type {kind} got status {w:#04x}, expected {want:#04x}"
                        ));
                    }
                    let r = read(&io, lba).await?;
                    let want = if exclusive_access { RESERVATION_CONFLICT } else { 0 };
                    if r != want {
                        return Err(format!(
                            "a registered non-holder's READ under type {kind} got status {r:#04x}, expected {want:#04x}"
                        ));
                    }
                }
                let (_, s) = io.session().await?;
                let o = command(&s, 1, &pr_in_read_reservation(), Bytes::new(), 64)
                    .await
                    .map_err(|e| format!("READ RESERVATION: {e}"))?;
                let holder = parse_reservation(&o.data);
                let want_key = KEY_1;
                if holder != Some((want_key, kind)) {
                    return Err(format!(
                        "READ RESERVATION says {holder:?}, expected key {want_key:#x} type {kind}"
                    ));
                }
                step.set(4);
                wait_for(&step, 5).await;
                for &lba in &lbas {
                    let w = write(&io, lba).await?;
                    if w != 0 {
                        return Err(format!("WRITE after the release got status {w:#04x}"));
                    }
                }
                pr(&io, pr_action::REGISTER, 0, KEY_2, 0).await?;
                step.set(6);
                io.verify().await?;
                io.logout().await
            }
        }),
    );
    setup
}
