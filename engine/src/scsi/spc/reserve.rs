//! RESERVE(6)/(10) and RELEASE(6)/(10) (SPC-2): a whole-unit
//! reservation held by one I_T nexus. Third-party and extent reservations
//! are not supported.
//!
//! While a persistent reservation exists, compatible reservation handling
//! applies (SPC-5, "Exceptions to SPC-2 RESERVE and RELEASE behavior",
//! CRH = 1): the persistent reservation holder's
//! RESERVE and a registrant's RELEASE succeed without effect; anything else
//! conflicts.

use super::super::cdb::Cdb;
use super::super::command::{Command, Failure, Outcome};
use super::super::device::LogicalUnit;
use super::super::status;

/// Validates the CDB: byte 1 holds the obsolete third-party and extent
/// fields (and, in the (10) variants, 3RDPTY and LONGID), none supported.
fn check_cdb(cdb: &Cdb<'_>) -> Result<(), Failure> {
    if cdb.u8(1) != 0 {
        return Err(Cdb::invalid_field(1, None).into());
    }
    Ok(())
}

/// RESERVE(6) and RESERVE(10).
pub fn reserve(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    check_cdb(&cmd.cdb)?;
    let spc = &mut lu.spc;
    if spc.pr.has_reservation() {
        return if spc.pr.is_holder(cmd.nexus) {
            Ok(Default::default())
        } else {
            Err(Failure::Status(status::RESERVATION_CONFLICT))
        };
    }
    match &spc.reservation {
        Some(holder) if holder != cmd.nexus => Err(Failure::Status(status::RESERVATION_CONFLICT)),
        _ => {
            spc.reservation = Some(cmd.nexus.clone());
            Ok(Default::default())
        }
    }
}

/// RELEASE(6) and RELEASE(10): releases this nexus's reservation; from any
/// other nexus it does nothing.
pub fn release(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    check_cdb(&cmd.cdb)?;
    let spc = &mut lu.spc;
    if spc.pr.has_reservation() {
        return if spc.pr.is_registered(cmd.nexus) {
            Ok(Default::default())
        } else {
            Err(Failure::Status(status::RESERVATION_CONFLICT))
        };
    }
    if spc.reservation.as_ref() == Some(cmd.nexus) {
        spc.reservation = None;
    }
    Ok(Default::default())
}
