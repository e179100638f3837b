//! The values a session and a connection run with after negotiation.

/// SessionType (RFC 7143 §13.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionType {
    Discovery,
    #[default]
    Normal,
}

impl SessionType {
    /// The key value, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionType::Discovery => "Discovery",
            SessionType::Normal => "Normal",
        }
    }

    pub fn from_value(value: &str) -> Option<SessionType> {
        match value {
            "Discovery" => Some(SessionType::Discovery),
            "Normal" => Some(SessionType::Normal),
            _ => None,
        }
    }
}

/// TaskReporting (RFC 7143 §13.23): how the target reports tasks that a
/// task management function terminates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskReporting {
    /// The semantics of RFC 3720.
    #[default]
    Rfc3720,
    /// Response fence semantics (§4.2.2.3.3).
    ResponseFence,
    /// Fast multi-task abort semantics (§4.2.3.4), with response fence.
    FastAbort,
}

impl TaskReporting {
    /// The key value, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskReporting::Rfc3720 => "RFC3720",
            TaskReporting::ResponseFence => "ResponseFence",
            TaskReporting::FastAbort => "FastAbort",
        }
    }

    pub fn from_value(value: &str) -> Option<TaskReporting> {
        match value {
            "RFC3720" => Some(TaskReporting::Rfc3720),
            "ResponseFence" => Some(TaskReporting::ResponseFence),
            "FastAbort" => Some(TaskReporting::FastAbort),
            _ => None,
        }
    }
}

/// Session-wide operational parameters (RFC 7143 §13), with the RFC's
/// defaults until negotiation changes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    pub session_type: SessionType,
    pub max_connections: u16,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub default_time2wait: u16,
    pub default_time2retain: u16,
    pub max_outstanding_r2t: u16,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u8,
    /// iSCSIProtocolLevel (RFC 7144 §2.1): 0 unless both sides offer more.
    pub iscsi_protocol_level: u8,
    pub task_reporting: TaskReporting,
    pub initiator_name: String,
    pub initiator_alias: Option<String>,
    pub target_name: Option<String>,
    pub target_alias: Option<String>,
    pub target_portal_group_tag: u16,
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams {
            session_type: SessionType::Normal,
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
            iscsi_protocol_level: 0,
            task_reporting: TaskReporting::Rfc3720,
            initiator_name: String::new(),
            initiator_alias: None,
            target_name: None,
            target_alias: None,
            target_portal_group_tag: 1,
        }
    }
}

/// Connection-only parameters (RFC 7143 §13.1, §13.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionParams {
    pub header_digest: bool,
    pub data_digest: bool,
    /// What this side declared it can receive in one data segment.
    pub max_recv_data_segment_length: u32,
    /// What the peer declared it can receive: bounds every data segment
    /// this side sends.
    pub max_xmit_data_segment_length: u32,
}

impl Default for ConnectionParams {
    fn default() -> Self {
        ConnectionParams {
            header_digest: false,
            data_digest: false,
            max_recv_data_segment_length: 8192,
            max_xmit_data_segment_length: 8192,
        }
    }
}
