//! What task management and I_T nexus loss do to logical unit state, and
//! how commands to absent logical units are answered.
//!
//! - LOGICAL UNIT RESET (SAM-5, "Logical unit reset"), and TARGET WARM/COLD RESET, which
//!   reset every logical unit: RESERVE(6) reservations are released, medium
//!   removal is allowed again, mode parameters return to their defaults and
//!   every known I_T nexus gets POWER ON, RESET, OR BUS DEVICE RESET
//!   OCCURRED. Persistent reservations survive (SPC-5, "Persistent
//!   reservations overview").
//! - CLEAR TASK SET establishes COMMANDS CLEARED BY ANOTHER INITIATOR for
//!   the other known I_T nexuses (SAM-5, "CLEAR TASK SET"; which of them had
//!   tasks is the session's knowledge, so all are told). ABORT TASK SET and
//!   CLEAR ACA change no logical unit state: aborting tasks is the
//!   session's work, and commands here run to completion one at a time.
//! - I_T nexus loss (SAM-5, "I_T nexus loss"; SBC-4, PREVENT ALLOW MEDIUM
//!   REMOVAL): the nexus's
//!   RESERVE(6) reservation and medium removal prevention end, its unit
//!   attentions and held copy results go; persistent reservations stay.

use bytes::Bytes;

use super::super::cdb::Cdb;
use super::super::command::{Command, Failure};
use super::super::device::{Device, LogicalUnit};
use super::super::sense::{Asc, Sense};
use super::super::{CommandResult, LuConfig, Nexus, TaskManagement, status};
use super::{inquiry, report, truncate, ua};
use crate::pdu::Lun;

/// Peripheral qualifier 011b, device type 1Fh: no logical unit here
/// (SPC-5, "Standard INQUIRY data").
const NO_LU: u8 = 0x7f;

/// Applies a task management function issued by `nexus` to `lun`.
pub fn task_management(device: &mut Device, nexus: &Nexus, lun: Lun, tmf: TaskManagement) {
    match tmf {
        TaskManagement::LogicalUnitReset => {
            if let Some(lu) = lun.index().and_then(|i| device.lun_mut(i)) {
                #[cfg(feature = "planted-bugs")]
                if crate::planted::active(
                    lu.planted,
                    crate::planted::PlantedBug::LunResetNoUnitAttention,
                ) {
                    lu.spc.reservation = None;
                    return;
                }
                reset(lu);
            }
        }
        TaskManagement::TargetWarmReset | TaskManagement::TargetColdReset => {
            for lu in device.luns.values_mut() {
                reset(lu);
            }
        }
        TaskManagement::ClearTaskSet => {
            if let Some(lu) = lun.index().and_then(|i| device.lun_mut(i)) {
                lu.spc
                    .ua
                    .establish_others(Some(nexus), Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
            }
        }
        TaskManagement::AbortTaskSet | TaskManagement::ClearAca => {}
    }
}

/// A logical unit reset (SAM-5, "Logical unit reset").
fn reset(lu: &mut LogicalUnit) {
    let spc = &mut lu.spc;
    spc.reservation = None;
    spc.medium.prevent.clear();
    spc.mode.reset();
    spc.ua
        .establish_all(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
}

/// The I_T nexus is gone: release what it held.
pub fn nexus_lost(device: &mut Device, nexus: &Nexus) {
    for lu in device.luns.values_mut() {
        let spc = &mut lu.spc;
        if spc.reservation.as_ref() == Some(nexus) {
            spc.reservation = None;
        }
        spc.medium.prevent.remove(nexus);
        spc.ua.nexus_lost(nexus);
        spc.copies.nexus_lost(nexus);
    }
}

/// A command to a LUN the device does not have (SPC-5, "Incorrect logical
/// unit selection"): INQUIRY
/// reports peripheral qualifier 011b, REPORT LUNS works, REQUEST SENSE
/// returns LOGICAL UNIT NOT SUPPORTED as its data, anything else fails with
/// it. Sense data is in fixed format (there is no control mode page).
pub fn absent_lun(device: &mut Device, lun: Lun, cmd: &Command<'_>) -> CommandResult {
    let _ = lun;
    let cdb = cmd.cdb;
    let outcome = match cdb.opcode() {
        0x12 => absent_inquiry(device, cmd),
        0xa0 => report::report_luns_data(device, cmd),
        0x03 => {
            let sense = Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
            Ok(ua::sense_data(&sense, cdb.bit(1, 0), cdb.u8(4) as usize))
        }
        _ => Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED).into()),
    };
    match outcome {
        Ok(data_in) => CommandResult::good(data_in),
        Err(failure) => {
            let mut result = CommandResult::good(Bytes::new());
            match failure {
                Failure::Check(sense) => {
                    result.status = status::CHECK_CONDITION;
                    result.sense = Some(sense.to_fixed());
                }
                Failure::Status(s) => result.status = s,
            }
            result
        }
    }
}

/// INQUIRY on an absent LUN: standard data naming the target's first
/// logical unit's vendor and product, or the Supported VPD Pages page
/// listing itself.
fn absent_inquiry(device: &Device, cmd: &Command<'_>) -> Result<Bytes, Failure> {
    let cdb = cmd.cdb;
    if cdb.u8(1) & 0xfe != 0 {
        return Err(Cdb::invalid_field(1, None).into());
    }
    let allocation_length = cdb.be16(3) as usize;
    let page = cdb.u8(2);
    if !cdb.bit(1, 0) {
        if page != 0 {
            return Err(Cdb::invalid_field(2, None).into());
        }
        let config = device
            .luns()
            .values()
            .next()
            .map(|lu| lu.config().clone())
            .unwrap_or_else(blank_config);
        let mut data = inquiry::standard(&config, NO_LU);
        data[1] = 0;
        // No copy manager and no command queuing on a missing LU.
        data[5] = 0;
        data[7] = 0;
        return Ok(truncate(data, allocation_length));
    }
    if page != 0 {
        return Err(Cdb::invalid_field(2, None).into());
    }
    Ok(truncate(
        inquiry::vpd_page(NO_LU, 0, &[0]),
        allocation_length,
    ))
}

fn blank_config() -> LuConfig {
    LuConfig {
        block_size: 512,
        vendor: String::new(),
        product: String::new(),
        revision: String::new(),
        serial: String::new(),
        removable: false,
        readonly: false,
    }
}
