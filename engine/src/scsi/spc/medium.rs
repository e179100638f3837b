//! Medium state: TEST UNIT READY (SPC-5), START STOP UNIT and PREVENT ALLOW
//! MEDIUM REMOVAL (SBC-4, "START STOP UNIT command", "PREVENT ALLOW MEDIUM
//! REMOVAL command").
//!
//! Only loading and ejecting a removable medium is modelled. Stopping the
//! unit and power conditions are accepted and change nothing: the unit
//! stays ready (libiscsi's StartStopUnit tests expect TEST UNIT READY to
//! succeed after a stop without LOEJ).

use std::collections::BTreeSet;

use super::super::Nexus;
use super::super::cdb::Cdb;
use super::super::command::{Command, Outcome};
use super::super::device::LogicalUnit;
use super::super::sense::{Asc, Sense};

#[derive(Debug)]
pub(super) struct Medium {
    /// Loaded (always, unless a removable medium was ejected).
    pub(super) present: bool,
    /// I_T nexuses that prevent medium removal (SBC-4: removal is
    /// prevented while any of them does).
    pub(super) prevent: BTreeSet<Nexus>,
}

impl Medium {
    pub(super) fn new() -> Medium {
        Medium {
            present: true,
            prevent: BTreeSet::new(),
        }
    }
}

/// TEST UNIT READY: the gate has already reported any unit attention,
/// reservation conflict or missing medium.
pub fn test_unit_ready(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let _ = (lu, cmd);
    Ok(Default::default())
}

/// START STOP UNIT (SBC-4). A POWER CONDITION other than 0h makes
/// START and LOEJ ignored. LOEJ ejects (START 0) or loads (START 1) a
/// removable medium; both fail while removal is prevented.
pub fn start_stop_unit(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    if cdb.u8(1) & 0xfe != 0 {
        return Err(Cdb::invalid_field(1, None).into());
    }
    if cdb.u8(3) & 0xf0 != 0 {
        return Err(Cdb::invalid_field(3, None).into());
    }
    if cdb.u8(4) & 0x08 != 0 {
        return Err(Cdb::invalid_field(4, Some(3)).into());
    }
    let power_condition = cdb.u8(4) >> 4;
    let loej = cdb.bit(4, 1);
    let start = cdb.bit(4, 0);
    if power_condition != 0 || !loej {
        return Ok(Default::default());
    }
    if !lu.config.removable {
        return Err(Cdb::invalid_field(4, Some(1)).into());
    }
    let medium = &mut lu.spc.medium;
    if prevented_load_eject(true, medium, cmd) {
        return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED).into());
    }
    medium.present = start;
    Ok(Default::default())
}

/// Whether `cmd` is a START STOP UNIT that would load or eject a removable
/// medium whose removal is prevented (SBC-4: MEDIUM REMOVAL PREVENTED for
/// either while prevention is in effect).
pub(super) fn prevented_load_eject(removable: bool, medium: &Medium, cmd: &Command<'_>) -> bool {
    let cdb = cmd.cdb;
    // POWER CONDITION 0h, LOEJ 1.
    removable && cdb.opcode() == 0x1b && cdb.u8(4) & 0xf2 == 0x02 && !medium.prevent.is_empty()
}

/// PREVENT ALLOW MEDIUM REMOVAL (SBC-4): PREVENT 01b prevents
/// removal for this I_T nexus, 00b allows it; 1xb is obsolete.
pub fn prevent_allow_medium_removal(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let prevent = cdb.u8(4);
    if prevent & 0xfe != 0 {
        return Err(Cdb::invalid_field(4, None).into());
    }
    let set = &mut lu.spc.medium.prevent;
    if prevent & 1 != 0 {
        set.insert(cmd.nexus.clone());
    } else {
        set.remove(cmd.nexus);
    }
    Ok(Default::default())
}
