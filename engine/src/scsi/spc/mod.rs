//! SPC-5 commands and the state every logical unit keeps: mode pages,
//! unit attentions, reservations (RESERVE/RELEASE and PERSISTENT
//! RESERVE), medium state, copy results.

use super::command::{Command, Failure, Outcome};
use super::device::{CommandInfo, Device, LogicalUnit};
use super::{CommandResult, LuConfig, Nexus, TaskManagement};
use crate::pdu::Lun;

/// SPC state of one logical unit.
#[derive(Debug, Default)]
pub struct State {}

impl State {
    pub fn new(config: &LuConfig) -> State {
        let _ = config;
        State {}
    }

    /// D_SENSE of the control mode page: descriptor format sense data.
    pub fn descriptor_sense(&self) -> bool {
        false
    }
}

/// Checks that run before every command: unit attentions, reservation
/// conflicts, medium state, write protection.
pub fn gate(lu: &mut LogicalUnit, info: &CommandInfo, cmd: &Command<'_>) -> Result<(), Failure> {
    let _ = (lu, info, cmd);
    Ok(())
}

/// A command to a LUN the device does not have.
pub fn absent_lun(device: &mut Device, lun: Lun, cmd: &Command<'_>) -> CommandResult {
    let _ = (device, lun, cmd);
    todo!("absent_lun")
}

pub fn task_management(device: &mut Device, nexus: &Nexus, lun: Lun, tmf: TaskManagement) {
    let _ = (device, nexus, lun, tmf);
    todo!("task_management")
}

pub fn nexus_lost(device: &mut Device, nexus: &Nexus) {
    let _ = (device, nexus);
    todo!("nexus_lost")
}

macro_rules! todo_handlers {
    ($($name:ident),*) => {$(
        pub fn $name(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
            let _ = (lu, cmd);
            todo!(stringify!($name))
        }
    )*};
}

macro_rules! todo_device_handlers {
    ($($name:ident),*) => {$(
        pub fn $name(device: &mut Device, lun: u16, cmd: &Command<'_>) -> Outcome {
            let _ = (device, lun, cmd);
            todo!(stringify!($name))
        }
    )*};
}

todo_handlers!(
    test_unit_ready,
    request_sense,
    inquiry,
    mode_select,
    mode_sense,
    reserve,
    release,
    persistent_reserve_in,
    persistent_reserve_out,
    report_supported_opcodes,
    report_supported_tmfs,
    start_stop_unit,
    prevent_allow_medium_removal
);
todo_device_handlers!(report_luns, extended_copy, receive_copy_results);
