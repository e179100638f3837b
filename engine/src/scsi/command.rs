//! What a command handler sees, and how it fails.

use bytes::Bytes;

use super::cdb::Cdb;
use super::sense::Sense;
use super::{Nexus, TaskAttr};

/// A command as handlers see it.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub nexus: &'a Nexus,
    pub cdb: Cdb<'a>,
    pub data_out: &'a Bytes,
    pub expected_in_len: u32,
    pub attr: TaskAttr,
}

/// How a command fails: CHECK CONDITION with sense, or another status
/// (RESERVATION CONFLICT, BUSY, TASK SET FULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Check(Sense),
    Status(u8),
}

impl From<Sense> for Failure {
    fn from(sense: Sense) -> Failure {
        Failure::Check(sense)
    }
}

/// A handler's result: the Data-In (possibly empty) or a failure.
pub type Outcome = Result<Bytes, Failure>;

/// Command properties the dispatcher and REPORT SUPPORTED OPERATION CODES
/// use (bit flags).
pub mod flags {
    /// Accesses the medium: fails while it is stopped, absent or being
    /// sanitized.
    pub const MEDIUM_ACCESS: u16 = 1 << 0;
    /// Modifies the medium: fails on a write-protected unit.
    pub const WRITES: u16 = 1 << 1;
    /// Runs even with a unit attention pending (INQUIRY, REPORT LUNS,
    /// REQUEST SENSE; SPC-5 §5.14).
    pub const IGNORES_UNIT_ATTENTION: u16 = 1 << 2;
    /// Allowed for every I_T nexus whatever the reservation (SPC-5 §5.13.1
    /// tables: INQUIRY, REPORT LUNS, PERSISTENT RESERVE IN/OUT, ...).
    pub const RESERVATION_EXEMPT: u16 = 1 << 3;
    /// Reads the medium: allowed to registrants under Write Exclusive.
    pub const READS: u16 = 1 << 4;
}
