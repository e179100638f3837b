//! The SCSI side of the target: logical units that execute CDBs (SPC-5,
//! SBC-4) against a [`BlockStore`], and the [`Device`] that holds the
//! logical units of one iSCSI target node.
//!
//! This layer knows nothing of iSCSI PDUs. The iSCSI session gathers a
//! command's Data-Out, hands the CDB and data here, and turns the
//! [`CommandResult`] into Data-In and SCSI Response PDUs (computing
//! residuals against the Expected Data Transfer Length itself).
//!
//! Execution is synchronous and atomic per command: the caller holds the
//! device exclusively while a command runs, so COMPARE AND WRITE and
//! reservations are atomic against every other I_T nexus.

use std::sync::Arc;

use bytes::Bytes;

use crate::pdu::{Isid, TaskAttr};

/// SCSI status codes (SAM-5 §5.3).
pub mod status {
    pub const GOOD: u8 = 0x00;
    pub const CHECK_CONDITION: u8 = 0x02;
    pub const CONDITION_MET: u8 = 0x04;
    pub const BUSY: u8 = 0x08;
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    pub const TASK_SET_FULL: u8 = 0x28;
    pub const ACA_ACTIVE: u8 = 0x30;
    pub const TASK_ABORTED: u8 = 0x40;
}

/// An I_T nexus: the SCSI initiator port (iSCSI initiator name and ISID)
/// and the SCSI target port (target name and portal group tag),
/// RFC 7143 §4.4.2 ("iqn...,i,0x<ISID>" and "iqn...,t,0x<TPGT>").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nexus {
    pub initiator_name: Arc<str>,
    pub isid: Isid,
    pub target_name: Arc<str>,
    pub target_portal_group_tag: u16,
}

impl Nexus {
    /// The SCSI initiator port name, `<name>,i,0x<ISID>`.
    pub fn initiator_port_name(&self) -> String {
        format!("{},i,{}", self.initiator_name, self.isid)
    }

    /// The SCSI target port name, `<name>,t,0x<TPGT>`.
    pub fn target_port_name(&self) -> String {
        format!(
            "{},t,0x{:04x}",
            self.target_name, self.target_portal_group_tag
        )
    }
}

/// One SCSI command, with all of its Data-Out gathered.
#[derive(Debug, Clone)]
pub struct CommandRequest<'a> {
    pub nexus: &'a Nexus,
    pub cdb: &'a [u8],
    /// The Data-Out the initiator sent (may be shorter or longer than the
    /// CDB asks for; the logical unit decides what that means).
    pub data_out: Bytes,
    /// The initiator's Expected Data Transfer Length for reads (or the
    /// bidirectional read length).
    pub expected_in_len: u32,
    pub attr: TaskAttr,
}

/// The outcome of a command: status, sense data and Data-In.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub status: u8,
    /// Sense data (fixed or descriptor format, as the control mode page's
    /// D_SENSE selects), present with CHECK CONDITION.
    pub sense: Option<Bytes>,
    /// The data the command produced, not yet truncated to the initiator's
    /// Expected Data Transfer Length.
    pub data_in: Bytes,
    /// The Data-Out length the CDB asked for, when the command takes
    /// Data-Out: the iSCSI layer reports write residuals against it.
    pub data_out_wanted: Option<u32>,
}

impl CommandResult {
    pub fn good(data_in: Bytes) -> CommandResult {
        CommandResult {
            status: status::GOOD,
            sense: None,
            data_in,
            data_out_wanted: None,
        }
    }
}

/// Task management functions the logical units take part in. Aborting the
/// tasks themselves is the iSCSI session's work; these change LU state
/// (reservations, unit attentions, mode pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskManagement {
    /// ABORT TASK SET issued by `nexus`.
    AbortTaskSet,
    /// CLEAR TASK SET issued by `nexus`: other nexuses see a unit attention.
    ClearTaskSet,
    ClearAca,
    LogicalUnitReset,
    TargetWarmReset,
    TargetColdReset,
}

/// Per-logical-unit settings, as `--lun N=mem:SIZE,removable,readonly`
/// or the TOML configuration gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuConfig {
    /// Logical block size in bytes (512 or 4096).
    pub block_size: u32,
    pub vendor: String,
    pub product: String,
    pub revision: String,
    /// Unit serial number (VPD 0x80) and the basis of the NAA designator
    /// (VPD 0x83); unique per LU and stable across restarts.
    pub serial: String,
    /// Removable medium (START STOP UNIT LOEJ, PREVENT ALLOW MEDIUM REMOVAL).
    pub removable: bool,
    /// Write protected (data modifying commands fail with DATA PROTECT).
    pub readonly: bool,
}

pub mod cdb;
pub mod command;
mod device;
mod sbc;
pub mod sense;
mod spc;
mod transfer;

pub use device::{CommandInfo, Device, LogicalUnit, commands};
pub use transfer::data_out_length;
