//! The logical units of one target node.

use std::collections::BTreeMap;

use super::{CommandRequest, CommandResult, LuConfig, Nexus, TaskManagement};
use crate::pdu::Lun;
use crate::store::BlockStore;

/// One logical unit: SPC-5/SBC-4 state over a block store.
pub struct LogicalUnit {
    config: LuConfig,
    store: Box<dyn BlockStore>,
}

impl LogicalUnit {
    pub fn new(config: LuConfig, store: Box<dyn BlockStore>) -> LogicalUnit {
        LogicalUnit { config, store }
    }

    pub fn config(&self) -> &LuConfig {
        &self.config
    }

    /// Capacity in logical blocks.
    pub fn block_count(&self) -> u64 {
        self.store.len() / self.config.block_size as u64
    }
}

/// The logical units of one iSCSI target node, keyed by LUN number.
/// Commands to a LUN that does not exist are answered here (INQUIRY with
/// peripheral qualifier 011b, REPORT LUNS, or LOGICAL UNIT NOT SUPPORTED).
pub struct Device {
    luns: BTreeMap<u16, LogicalUnit>,
}

impl Device {
    pub fn new(luns: BTreeMap<u16, LogicalUnit>) -> Device {
        Device { luns }
    }

    pub fn luns(&self) -> &BTreeMap<u16, LogicalUnit> {
        &self.luns
    }

    /// Executes one command addressed to `lun`.
    pub fn execute(&mut self, lun: Lun, req: CommandRequest<'_>) -> CommandResult {
        let _ = (lun, req);
        todo!("scsi")
    }

    /// Applies a task management function issued by `nexus` to `lun` (or
    /// to every LU, for target resets).
    pub fn task_management(&mut self, nexus: &Nexus, lun: Lun, tmf: TaskManagement) {
        let _ = (nexus, lun, tmf);
        todo!("scsi")
    }

    /// The I_T nexus is gone (session closed or reinstated): release what
    /// it held (RESERVE(6) reservations) and note the loss (SPC-5 §6.19).
    pub fn nexus_lost(&mut self, nexus: &Nexus) {
        let _ = nexus;
        todo!("scsi")
    }
}
