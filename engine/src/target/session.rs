//! A session: its identity (ISID, TSIH, initiator, target), the CmdSN
//! window (RFC 7143 §4.2.2.1), the PDUs waiting for their CmdSN turn, and
//! the task table.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ConnId;
use super::task::Task;
use crate::pdu::{Isid, Itt, Pdu};
use crate::scsi::Nexus;
use crate::serial;
use crate::text::{SessionParams, SessionType};

/// A non-immediate PDU that arrived ahead of its CmdSN turn.
pub(crate) enum Deferred {
    /// A SCSI command whose task already exists (so Data-Out can arrive).
    Command(Itt),
    /// Any other non-immediate request (NOP-Out, Text, TMF, Logout).
    Request(ConnId, Pdu),
    /// A CmdSN an ABORT TASK consumed before the command arrived (§11.5.1).
    Skipped,
}

/// Where a PDU's CmdSN puts it (§4.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Its turn: process now.
    Now,
    /// Within the window but ahead of ExpCmdSN: hold it.
    Later,
    /// Outside the window or a duplicate: silently ignore it.
    Ignore,
}

pub(crate) struct Session {
    pub tsih: u16,
    pub isid: Isid,
    pub initiator_name: Arc<str>,
    /// The target node; `None` for discovery sessions.
    pub target: Option<Arc<str>>,
    pub kind: SessionType,
    pub params: SessionParams,
    /// The I_T nexus of a normal session.
    pub nexus: Option<Nexus>,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub queue_depth: u32,
    pub deferred: BTreeMap<u32, Deferred>,
    pub tasks: BTreeMap<Itt, Task>,
    pub conns: Vec<ConnId>,
}

impl Session {
    /// Classifies a request by its CmdSN. A non-immediate request whose
    /// turn it is advances ExpCmdSN.
    pub fn admit(&mut self, cmd_sn: u32, immediate: bool) -> Admission {
        if immediate {
            return Admission::Now;
        }
        if cmd_sn == self.exp_cmd_sn {
            self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
            return Admission::Now;
        }
        if serial::in_window(cmd_sn, self.exp_cmd_sn, self.max_cmd_sn)
            && !self.deferred.contains_key(&cmd_sn)
        {
            Admission::Later
        } else {
            Admission::Ignore
        }
    }

    /// Takes the deferred request whose turn has come, advancing ExpCmdSN.
    pub fn next_deferred(&mut self) -> Option<Deferred> {
        let next = self.deferred.remove(&self.exp_cmd_sn)?;
        self.exp_cmd_sn = self.exp_cmd_sn.wrapping_add(1);
        Some(next)
    }

    /// Recomputes MaxCmdSN from the tasks outstanding. It never decreases
    /// (initiators ignore a smaller value), so the window closes by
    /// ExpCmdSN catching up with it.
    pub fn update_window(&mut self) {
        let outstanding = self.tasks.len() as u32 + self.deferred.len() as u32;
        let room = self.queue_depth.saturating_sub(outstanding);
        let candidate = self.exp_cmd_sn.wrapping_add(room).wrapping_sub(1);
        if serial::gt(candidate, self.max_cmd_sn) {
            self.max_cmd_sn = candidate;
        }
        debug_assert!(serial::ge(self.max_cmd_sn.wrapping_add(1), self.exp_cmd_sn));
    }

    /// Whether a new task fits (immediate commands are bounded too).
    pub fn has_room(&self) -> bool {
        (self.tasks.len() as u32) < self.queue_depth.saturating_mul(2)
    }
}
