//! The login phase (RFC 7143 §6.3, §11.12-§11.13, §12): security
//! negotiation with CHAP (RFC 1994, §12.1.3) or none, operational
//! negotiation, stage transitions (CSG/NSG/T/C), ISID and TSIH rules.
//!
//! [`target::TargetLogin`] and [`initiator::InitiatorLogin`] are pure state
//! machines fed one Login PDU at a time; the endpoint that owns them stamps
//! sequence numbers and decides session membership.

pub mod chap;
pub mod initiator;
pub mod status;
pub mod target;

pub use initiator::{
    InitiatorConfig, InitiatorLogin, InitiatorLoginStep, InitiatorOutcome, LoginError,
};
pub use status::LoginStatus;
pub use target::{
    AuthPolicy, Credentials, LoginDirectory, LoginOutcome, TargetLogin, TargetLoginStep, TargetNode,
};

/// The only iSCSI version there is (RFC 7143 §11.12.4: Version-max and
/// Version-min; RFC 7143 is version 0x00).
pub const ISCSI_VERSION: u8 = 0x00;

/// The largest data segment either side sends during login: the default
/// MaxRecvDataSegmentLength, in force until the login ends (§13.12).
pub const MAX_LOGIN_SEGMENT: usize = 8192;

/// The largest text one side may send as a continued (C bit) sequence
/// before the other refuses it.
pub const MAX_LOGIN_TEXT: usize = 65_536;

/// The most Login PDUs one login may take before it is refused.
pub const MAX_LOGIN_PDUS: usize = 256;

/// A text to send, cut into PDUs of at most [`MAX_LOGIN_SEGMENT`] bytes
/// (the C bit marks all but the last, §11.12.2, §11.13.2).
#[derive(Debug, Clone)]
struct Outgoing {
    text: bytes::Bytes,
    offset: usize,
}

impl Outgoing {
    fn new(text: bytes::Bytes) -> Outgoing {
        Outgoing { text, offset: 0 }
    }

    /// The next piece and whether more follow.
    fn next_chunk(&mut self) -> (bytes::Bytes, bool) {
        let end = (self.offset + MAX_LOGIN_SEGMENT).min(self.text.len());
        let chunk = self.text.slice(self.offset..end);
        self.offset = end;
        (chunk, self.offset < self.text.len())
    }
}

#[cfg(test)]
mod tests;
