//! The initiator side of iSCSI as a sans-IO state machine: one session
//! (RFC 7143 §4, §6, §7, §11) with its single connection.
//!
//! A [`Session`] logs in (through [`crate::login::InitiatorLogin`]), runs
//! the full-feature phase, and recovers at ErrorRecoveryLevel 0 by
//! reinstating itself on a new connection and retrying every command that
//! had not completed. It is driven the way quinn-proto's connections are:
//!
//! - input: [`Session::handle_connected`] / [`Session::handle_connect_failed`]
//!   after an [`Event::Connect`], [`Session::handle_input`] with received
//!   bytes, [`Session::handle_closed`] when the socket ends,
//!   [`Session::handle_timeout`] at the deadline;
//! - mutators: [`Session::command`], [`Session::task_management`],
//!   [`Session::send_targets`], [`Session::logout`];
//! - output: [`Session::poll_transmit`] for PDUs to write,
//!   [`Session::poll_event`] for connections to open or close and results
//!   to hand out, [`Session::poll_timeout`] for the next deadline.
//!
//! It never reads a clock or the OS's randomness: `now` is an argument and
//! every random choice (ISID, CHAP challenges, reconnection jitter) comes
//! from the seed the caller passes to [`Session::new`].

mod config;
mod error;
mod inbound;
mod outbound;
mod recovery;
pub mod sense;
mod session;
mod task;
#[cfg(test)]
mod tests;

pub use config::{SessionConfig, initiator_preferences};
pub use error::{InitiatorError, connect_error_message};
pub use sense::SenseInfo;
pub use session::{Session, State};

use std::net::SocketAddr;

use bytes::Bytes;

use crate::pdu::{Cdb, Digests, Pdu, TaskAttr};
use crate::text::TargetRecord;

/// Names one request for its whole life, across reinstatements: it is the
/// Initiator Task Tag the request is sent with (ITTs are per session, so a
/// retried command keeps its tag on the new session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u32);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t{:#x}", self.0)
    }
}

/// Identifies one TCP connection the session asked for; input for a
/// connection that is no longer current is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// A SCSI command to send (RFC 7143 §11.3).
#[derive(Debug, Clone)]
pub struct Command {
    pub lun: u16,
    pub cdb: Cdb,
    /// The data to write; its length is the Expected Data Transfer Length
    /// of a write.
    pub data_out: Bytes,
    /// The Expected Data Transfer Length of a read.
    pub expected_in: u32,
    pub attr: TaskAttr,
}

impl Command {
    pub fn new(lun: u16, cdb: &[u8], data_out: Bytes, expected_in: u32) -> Command {
        Command {
            lun,
            cdb: Cdb::new(cdb),
            data_out,
            expected_in,
            attr: TaskAttr::Simple,
        }
    }
}

/// Residual information of a SCSI Response (§11.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Residual {
    #[default]
    None,
    /// The target transferred this many bytes fewer than expected.
    Underflow(u32),
    /// The command wanted this many bytes more than expected.
    Overflow(u32),
}

/// What a SCSI command came back with: any status the target delivered,
/// CHECK CONDITION included ([`ScsiOutcome::check`] turns non-GOOD into
/// an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiOutcome {
    pub status: u8,
    /// The Data-In, reassembled in buffer-offset order.
    pub data: Bytes,
    pub sense: Option<SenseInfo>,
    pub residual: Residual,
}

impl ScsiOutcome {
    /// `Ok(self)` for GOOD and CONDITION MET, else the typed error.
    pub fn check(self) -> Result<ScsiOutcome, InitiatorError> {
        use crate::scsi::status;
        match self.status {
            status::GOOD | status::CONDITION_MET => Ok(self),
            status::CHECK_CONDITION => Err(match self.sense {
                Some(s) => InitiatorError::CheckCondition {
                    key: s.key,
                    asc: s.asc,
                    ascq: s.ascq,
                    sense: s.raw,
                },
                None => InitiatorError::CheckCondition {
                    key: 0,
                    asc: 0,
                    ascq: 0,
                    sense: Bytes::new(),
                },
            }),
            status => Err(InitiatorError::Status { status }),
        }
    }
}

/// What a finished request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    Scsi(ScsiOutcome),
    /// The TMF response code (§11.6.1; 0 is "function complete").
    TaskManagement(u8),
    /// The records of a SendTargets answer.
    SendTargets(Vec<TargetRecord>),
    /// The session logged out.
    Logout,
}

/// What the session asks of its driver, or tells its user.
#[derive(Debug, Clone)]
#[must_use]
pub enum Event {
    /// Open a TCP connection to `addr`; report the outcome with
    /// [`Session::handle_connected`] or [`Session::handle_connect_failed`].
    Connect {
        conn: ConnectionId,
        addr: SocketAddr,
    },
    /// Close this connection now (its queued output is void).
    Close(ConnectionId),
    /// The session reached the full-feature phase: first login, or
    /// reinstatement after a lost connection.
    LoggedIn { reinstated: bool },
    /// A request finished.
    Completed {
        task: TaskId,
        result: Result<Completion, InitiatorError>,
    },
    /// The target reported a SCSI asynchronous event (§11.9.1 code 0):
    /// the sense data it carried.
    ScsiEvent { lun: u16, sense: Bytes },
    /// The session is over for good; every request has been completed.
    Closed(Result<(), InitiatorError>),
}

/// One PDU to write and the digests it is to be written with.
#[derive(Debug, Clone)]
#[must_use]
pub struct Transmit {
    pub pdu: Pdu,
    pub digests: Digests,
}
