//! Negotiation of operational keys (RFC 7143 §6.2, §13): the responder's
//! answer to each offer and the originator's handling of answers.

use super::params::{ConnectionParams, SessionParams, SessionType};

/// Which side of the negotiation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Target,
}

/// What this side offers and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Acceptable header digests in order of preference ("CRC32C", "None").
    pub header_digest: Vec<String>,
    /// Acceptable data digests in order of preference.
    pub data_digest: Vec<String>,
    pub max_connections: u16,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_recv_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub default_time2wait: u16,
    pub default_time2retain: u16,
    pub max_outstanding_r2t: u16,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u8,
    pub iscsi_protocol_level: u8,
}

/// A negotiation failure that ends the login (or the Text exchange).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    #[error("key {0} negotiated more than once")]
    Duplicate(String),
    #[error("peer answered {key}={value}, which breaks the negotiation rules")]
    BadAnswer { key: String, value: String },
    #[error("peer rejected {0}, which this side requires")]
    Required(String),
}

/// The negotiation state of one login (or one Text exchange).
#[derive(Debug, Clone)]
pub struct Negotiator {
    role: Role,
    prefs: Preferences,
    session_type: SessionType,
}

impl Negotiator {
    pub fn new(role: Role, prefs: Preferences, session_type: SessionType) -> Negotiator {
        Negotiator {
            role,
            prefs,
            session_type,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn session_type(&self) -> SessionType {
        self.session_type
    }

    pub fn preferences(&self) -> &Preferences {
        &self.prefs
    }

    /// Processes the operational keys of one complete request or response
    /// and returns the pairs to send back (answers to the peer's offers).
    pub fn handle(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, NegotiationError> {
        let _ = pairs;
        todo!("text negotiation")
    }

    /// Keys this side still has to offer.
    pub fn take_offers(&mut self) -> Vec<(String, String)> {
        todo!("text negotiation")
    }

    /// Whether no offer of ours awaits an answer.
    pub fn is_settled(&self) -> bool {
        todo!("text negotiation")
    }

    pub fn session_params(&self) -> SessionParams {
        todo!("text negotiation")
    }

    pub fn connection_params(&self) -> ConnectionParams {
        todo!("text negotiation")
    }
}
