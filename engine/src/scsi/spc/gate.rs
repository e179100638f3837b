//! The checks every command to an existing logical unit passes before its
//! handler runs, in order of precedence:
//! 1. unit attention (SPC-5, "Unit attention conditions"), except INQUIRY,
//!    REPORT LUNS, REQUEST SENSE; a START STOP UNIT load or eject while
//!    medium removal is prevented fails ahead of it, leaving the unit
//!    attention pending (libiscsi's PreventAllow.2ITNexuses ejects from a
//!    second session that still holds the unit attention of the previous
//!    test's LUN reset);
//! 2. reservation conflict: RESERVE(6)/(10) (SPC-2, "Reservations") and
//!    persistent reservations (SPC-5, "Reservations": the table of SPC
//!    commands allowed in the presence of reservations; SBC-4 likewise);
//! 3. medium not present, for commands that access the medium (SBC-4,
//!    removable medium);
//! 4. write protection, for commands that modify the medium (SBC-4, write
//!    protection; SPC-5, "Control mode page", SWP).

use super::super::command::{Command, Failure, flags};
use super::super::device::{CommandInfo, LogicalUnit};
use super::super::sense::{Asc, Sense, key};
use super::super::status;
use super::medium;
use super::pr::Access;

/// SOFTWARE WRITE PROTECTED (SPC-5, ASC and ASCQ assignments), for SWP.
const SOFTWARE_WRITE_PROTECTED: Asc = Asc(0x27, 0x02);

/// Checks that run before every command: unit attentions, reservation
/// conflicts, medium state, write protection.
pub fn gate(lu: &mut LogicalUnit, info: &CommandInfo, cmd: &Command<'_>) -> Result<(), Failure> {
    let spc = &mut lu.spc;
    spc.ua.contact(cmd.nexus);
    if medium::prevented_load_eject(lu.config.removable, &spc.medium, cmd) {
        return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED).into());
    }
    if info.flags & flags::IGNORES_UNIT_ATTENTION == 0 {
        if let Some(asc) = spc.ua.pop(cmd.nexus) {
            return Err(Sense::new(key::UNIT_ATTENTION, asc).into());
        }
    }
    if let Some(holder) = &spc.reservation {
        if holder != cmd.nexus && !allowed_under_reserve(info, cmd) {
            return Err(Failure::Status(status::RESERVATION_CONFLICT));
        }
    }
    #[cfg(feature = "planted-bugs")]
    let ignored = crate::planted::active(
        lu.planted,
        crate::planted::PlantedBug::ReservationConflictIgnored,
    ) && access(info, cmd) == Access::Write;
    #[cfg(not(feature = "planted-bugs"))]
    let ignored = false;
    if !ignored && !spc.pr.allows(cmd.nexus, access(info, cmd)) {
        return Err(Failure::Status(status::RESERVATION_CONFLICT));
    }
    // A sanitize in progress (SBC-4, "Sanitize operations"): NOT READY,
    // SANITIZE IN PROGRESS, except INQUIRY, REPORT LUNS, REQUEST SENSE.
    if lu.sbc.sanitize_in_progress() && !matches!(info.opcode, 0x12 | 0xa0 | 0x03) {
        return Err(Sense::new(key::NOT_READY, Asc::NOT_READY_SANITIZE_IN_PROGRESS).into());
    }
    if info.flags & flags::MEDIUM_ACCESS != 0 && !spc.medium.present {
        return Err(Sense::new(key::NOT_READY, Asc::MEDIUM_NOT_PRESENT).into());
    }
    if info.flags & flags::WRITES != 0 {
        if lu.config.readonly {
            return Err(Sense::new(key::DATA_PROTECT, Asc::WRITE_PROTECTED).into());
        }
        if spc.software_write_protect() {
            return Err(Sense::new(key::DATA_PROTECT, SOFTWARE_WRITE_PROTECTED).into());
        }
    }
    Ok(())
}

/// Commands another I_T nexus may send while one holds a RESERVE(6)/(10)
/// reservation (SPC-2, "Reservations"): INQUIRY, REQUEST SENSE, REPORT LUNS,
/// RELEASE (which then does nothing), LOG SENSE, PREVENT ALLOW MEDIUM
/// REMOVAL with PREVENT 0, the MAINTENANCE IN reports and PERSISTENT
/// RESERVE IN.
fn allowed_under_reserve(info: &CommandInfo, cmd: &Command<'_>) -> bool {
    match info.opcode {
        0x12 | 0x03 | 0xa0 | 0x17 | 0x57 | 0x4d | 0xa3 | 0x5e => true,
        0x1e => cmd.cdb.u8(4) & 0x03 == 0,
        _ => false,
    }
}

/// How a command touches the logical unit, for the persistent reservation
/// tables of SPC-5 and SBC-4.
fn access(info: &CommandInfo, cmd: &Command<'_>) -> Access {
    match info.opcode {
        // RESERVE/RELEASE follow the compatible reservation handling rules
        // in their handlers (SPC-5, "Exceptions to SPC-2 RESERVE and
        // RELEASE behavior").
        0x16 | 0x56 | 0x17 | 0x57 => Access::Any,
        0x1e if cmd.cdb.u8(4) & 0x03 == 0 => Access::Any,
        _ if info.flags & flags::RESERVATION_EXEMPT != 0 => Access::Any,
        _ if info.flags & flags::WRITES != 0 => Access::Write,
        _ if info.flags & flags::READS != 0 => Access::Read,
        _ => Access::Other,
    }
}
