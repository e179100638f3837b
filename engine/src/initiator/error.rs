//! Why a request or a session failed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::login::{LoginError, LoginStatus};

/// A failure of the initiator: connecting, logging in, a SCSI status, or
/// the session's recovery giving up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InitiatorError {
    /// The TCP connection could not be opened; `kind` is what the network
    /// said (ConnectionRefused, HostUnreachable for "No route to host"...).
    #[error("cannot connect to {addr}: {}", connect_error_message(*kind))]
    Connect {
        addr: SocketAddr,
        kind: io::ErrorKind,
    },
    /// The target refused the login or broke its rules.
    #[error("login to {addr} failed: {error}")]
    Login { addr: SocketAddr, error: LoginError },
    /// Connect plus login took longer than the login timeout.
    #[error("login to {addr} timed out after {timeout:?}")]
    LoginTimeout { addr: SocketAddr, timeout: Duration },
    /// The command ended with CHECK CONDITION (SAM-5 §5.3); `sense` is the
    /// raw sense data, `key`/`asc`/`ascq` its decoded fields.
    #[error(
        "CHECK CONDITION: sense key {key:#x} ({}), ASC/ASCQ {asc:#04x}/{ascq:#04x}",
        crate::initiator::sense::key_name(*key)
    )]
    CheckCondition {
        key: u8,
        asc: u8,
        ascq: u8,
        sense: Bytes,
    },
    /// Another non-GOOD SCSI status (BUSY, RESERVATION CONFLICT, TASK SET
    /// FULL, ...).
    #[error("SCSI status {status:#04x} ({})", crate::initiator::sense::status_name(*status))]
    Status { status: u8 },
    /// The SCSI Response said "target failure" (§11.4.3).
    #[error("target failure (iSCSI response {response:#04x})")]
    TargetFailure { response: u8 },
    /// The target rejected the request (§11.17).
    #[error("rejected by the target (reason {reason:#04x})")]
    Rejected { reason: u8 },
    /// The task was aborted by a task management function.
    #[error("task aborted")]
    Aborted,
    /// The target did not answer the command within the command timeout;
    /// it was aborted, and whether it took effect is unknown.
    #[error("command timed out after {0:?}")]
    CommandTimeout(Duration),
    /// A task management request failed (§11.6.1 response code).
    #[error("task management function failed: response {response}")]
    TaskManagement { response: u8 },
    /// The connection was lost while this request (a TMF or ping, which
    /// are not retried) was in flight.
    #[error("connection lost")]
    ConnectionLost,
    /// The command was retried after too many lost connections.
    #[error("command retried {0} times after lost connections")]
    RetriesExhausted(u32),
    /// No connection could be re-established within the replacement
    /// timeout; `last` says what the last attempt ran into.
    #[error("no connection to the target within the replacement timeout of {timeout:?}{}", last.as_ref().map(|l| format!(" (last: {l})")).unwrap_or_default())]
    ReplacementTimeout {
        timeout: Duration,
        last: Option<String>,
    },
    /// The target broke the protocol in a way recovery cannot mend.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Less data came back than the request needed.
    #[error("short transfer: expected {expected} bytes, got {got}")]
    ShortTransfer { expected: u32, got: u32 },
    /// The request itself is invalid (e.g. data not a multiple of the
    /// block size).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The session has logged out or ended.
    #[error("session closed")]
    Closed,
}

impl InitiatorError {
    /// The login status the target sent, for login failures it reported.
    pub fn login_status(&self) -> Option<LoginStatus> {
        match self {
            InitiatorError::Login { error, .. } => error.status(),
            _ => None,
        }
    }

    /// The network's error kind, for connect failures.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            InitiatorError::Connect { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// The words a C program would print for a connect error (strerror), so
/// that "No route to host" reads as users know it.
pub fn connect_error_message(kind: io::ErrorKind) -> String {
    use io::ErrorKind::*;
    match kind {
        ConnectionRefused => "Connection refused".into(),
        HostUnreachable => "No route to host".into(),
        NetworkUnreachable => "Network is unreachable".into(),
        TimedOut => "Connection timed out".into(),
        ConnectionReset => "Connection reset by peer".into(),
        AddrNotAvailable => "Cannot assign requested address".into(),
        PermissionDenied => "Permission denied".into(),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}
