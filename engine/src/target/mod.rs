//! The target side of iSCSI as a sans-IO state machine.
//!
//! An [`Endpoint`] serves every target node behind one network portal: it
//! owns the connections (login and full-feature phase) and the sessions,
//! and it is driven the way quinn-proto's connections are:
//!
//! - input: [`Endpoint::accept`] a connection, [`Endpoint::handle_input`]
//!   its bytes, [`Endpoint::handle_closed`] when the socket ends,
//!   [`Endpoint::handle_timeout`] at the deadline, [`Endpoint::complete`]
//!   when the SCSI layer has executed a command;
//! - output: [`Endpoint::poll_transmit`] for PDUs to write,
//!   [`Endpoint::poll_event`] for commands to execute and task management
//!   to apply, [`Endpoint::poll_timeout`] for the next deadline.
//!
//! It never reads a clock or the OS's randomness: `now` is an argument and
//! the RNG (StatSN starts, TTTs, CHAP challenges) is seeded by the caller.

mod command;
mod config;
mod connection;
mod endpoint;
mod login_phase;
mod requests;
mod session;
mod task;
mod text;
mod tmf;

pub use config::{Acl, EndpointConfig, IpNet, TargetConfig, default_preferences};
pub use endpoint::Endpoint;

use std::sync::Arc;

use bytes::Bytes;

use crate::pdu::{Cdb, Digests, Itt, Lun, Pdu, TaskAttr};
use crate::scsi::{self, Nexus};

/// Identifies one accepted connection for the lifetime of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Names one task for [`Endpoint::complete`]. The generation makes a late
/// completion of an aborted task harmless even if its ITT is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRef {
    pub conn: ConnId,
    pub tsih: u16,
    pub itt: Itt,
    pub generation: u64,
}

/// A SCSI command whose Data-Out is complete and whose turn has come in
/// CmdSN order: execute it on `target`'s device and hand the result to
/// [`Endpoint::complete`].
#[derive(Debug, Clone)]
pub struct Execute {
    pub task: TaskRef,
    pub target: Arc<str>,
    pub lun: Lun,
    pub nexus: Nexus,
    pub cdb: Cdb,
    pub data_out: Bytes,
    pub expected_in_len: u32,
    pub attr: TaskAttr,
}

impl Execute {
    /// Runs `f` on this command as the SCSI layer takes it; the CDB is
    /// borrowed from the BHS unless an Extended CDB AHS made it longer.
    pub fn with_request<R>(&self, f: impl FnOnce(scsi::CommandRequest<'_>) -> R) -> R {
        let extended;
        let cdb: &[u8] = if self.cdb.extended.is_empty() {
            &self.cdb.base
        } else {
            extended = self.cdb.to_vec();
            &extended
        };
        f(scsi::CommandRequest {
            nexus: &self.nexus,
            cdb,
            data_out: self.data_out.clone(),
            expected_in_len: self.expected_in_len,
            attr: self.attr,
        })
    }
}

/// What the endpoint asks of its driver.
#[derive(Debug, Clone)]
pub enum Event {
    Execute(Execute),
    /// Apply a task management function at the SCSI level.
    TaskManagement {
        target: Arc<str>,
        nexus: Nexus,
        lun: Lun,
        function: scsi::TaskManagement,
    },
    /// An I_T nexus ended (logout, connection loss, reinstatement).
    NexusLost {
        target: Arc<str>,
        nexus: Nexus,
    },
    /// PDUs are waiting to be written on this connection.
    Transmit(ConnId),
    /// Close this connection once its queued PDUs are written.
    Close(ConnId),
}

/// One PDU to write, and the digests it is to be written with.
#[derive(Debug, Clone)]
#[must_use]
pub struct Transmit {
    pub pdu: Pdu,
    pub digests: Digests,
}

#[cfg(test)]
mod tests;
