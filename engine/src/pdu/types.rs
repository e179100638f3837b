//! Typed views of every iSCSI PDU header of RFC 7143 §11.
//!
//! Each struct holds the fields of one opcode's Basic Header Segment in the
//! RFC's own names; reserved fields are not represented (zero on the wire
//! when sent, ignored when received). The data segment travels beside the
//! header in [`super::Pdu::data`].

/// An 8-byte SCSI Logical Unit Number as carried in the BHS (SAM-5 §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct Lun(pub u64);

impl Lun {
    /// Encodes a LUN number the way SAM-5 single-level addressing does:
    /// peripheral device addressing below 256, flat space addressing above.
    pub fn from_index(index: u16) -> Lun {
        assert!(index < 0x4000, "LUN index {index} needs more than 14 bits");
        if index < 256 {
            Lun((index as u64) << 48)
        } else {
            Lun(((0x4000 | index as u64) & 0x7fff) << 48)
        }
    }

    /// The LUN number of a single-level LUN in peripheral or flat space
    /// addressing; `None` for other address methods or multi-level LUNs.
    pub fn index(self) -> Option<u16> {
        let first = (self.0 >> 48) as u16;
        if self.0 & 0x0000_ffff_ffff_ffff != 0 {
            return None;
        }
        match first >> 14 {
            0b00 if first >> 8 == 0 => Some(first & 0xff),
            0b01 => Some(first & 0x3fff),
            _ => None,
        }
    }
}

/// The Initiator Task Tag (RFC 7143 §11.1.3). `0xffffffff` is reserved.
pub type Itt = u32;
/// The Target Transfer Tag. `0xffffffff` means "none".
pub type Ttt = u32;
/// The reserved tag value: no ITT / no TTT.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// The 6-byte Initiator Session ID (RFC 7143 §11.12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct Isid(pub [u8; 6]);

impl std::fmt::Display for Isid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Opcodes of RFC 7143 §11.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Opcode {
    NopOut = 0x00,
    ScsiCommand = 0x01,
    TaskMgmtRequest = 0x02,
    LoginRequest = 0x03,
    TextRequest = 0x04,
    DataOut = 0x05,
    LogoutRequest = 0x06,
    SnackRequest = 0x10,
    NopIn = 0x20,
    ScsiResponse = 0x21,
    TaskMgmtResponse = 0x22,
    LoginResponse = 0x23,
    TextResponse = 0x24,
    DataIn = 0x25,
    LogoutResponse = 0x26,
    R2t = 0x31,
    AsyncMessage = 0x32,
    Reject = 0x3f,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match v & 0x3f {
            0x00 => NopOut,
            0x01 => ScsiCommand,
            0x02 => TaskMgmtRequest,
            0x03 => LoginRequest,
            0x04 => TextRequest,
            0x05 => DataOut,
            0x06 => LogoutRequest,
            0x10 => SnackRequest,
            0x20 => NopIn,
            0x21 => ScsiResponse,
            0x22 => TaskMgmtResponse,
            0x23 => LoginResponse,
            0x24 => TextResponse,
            0x25 => DataIn,
            0x26 => LogoutResponse,
            0x31 => R2t,
            0x32 => AsyncMessage,
            0x3f => Reject,
            _ => return None,
        })
    }

    /// The RFC's name, as traces and errors print it.
    pub fn name(self) -> &'static str {
        use Opcode::*;
        match self {
            NopOut => "NOP-Out",
            ScsiCommand => "SCSI-Command",
            TaskMgmtRequest => "TMF-Request",
            LoginRequest => "Login-Request",
            TextRequest => "Text-Request",
            DataOut => "Data-Out",
            LogoutRequest => "Logout-Request",
            SnackRequest => "SNACK",
            NopIn => "NOP-In",
            ScsiResponse => "SCSI-Response",
            TaskMgmtResponse => "TMF-Response",
            LoginResponse => "Login-Response",
            TextResponse => "Text-Response",
            DataIn => "Data-In",
            LogoutResponse => "Logout-Response",
            R2t => "R2T",
            AsyncMessage => "Async-Message",
            Reject => "Reject",
        }
    }

    /// Whether the initiator sends this opcode (as opposed to the target).
    pub fn is_initiator(self) -> bool {
        (self as u8) < 0x20
    }
}

/// SCSI task attributes of the SCSI Command PDU (RFC 7143 §11.3.1, SAM-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum TaskAttr {
    Untagged = 0,
    #[default]
    Simple = 1,
    Ordered = 2,
    HeadOfQueue = 3,
    Aca = 4,
}

impl TaskAttr {
    /// Values 5..=7 are reserved; they decode as `Simple`'s neighbour
    /// `Untagged`, which SAM-5 treats as simple.
    pub fn from_bits(v: u8) -> TaskAttr {
        match v & 7 {
            1 => TaskAttr::Simple,
            2 => TaskAttr::Ordered,
            3 => TaskAttr::HeadOfQueue,
            4 => TaskAttr::Aca,
            _ => TaskAttr::Untagged,
        }
    }
}

/// NOP-Out (RFC 7143 §11.18).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct NopOut {
    pub immediate: bool,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
}

/// The CDB of a SCSI Command: 16 bytes in the BHS plus the Extended CDB AHS
/// (RFC 7143 §11.3.5, §11.2.2.3) when longer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct Cdb {
    /// The first 16 bytes (zero-padded when the CDB is shorter).
    pub base: [u8; 16],
    /// Bytes 16.. of a CDB longer than 16 bytes (Extended CDB AHS).
    pub extended: Vec<u8>,
}

impl Cdb {
    pub fn new(cdb: &[u8]) -> Cdb {
        let mut base = [0u8; 16];
        let n = cdb.len().min(16);
        base[..n].copy_from_slice(&cdb[..n]);
        let extended = if cdb.len() > 16 {
            cdb[16..].to_vec()
        } else {
            Vec::new()
        };
        Cdb { base, extended }
    }

    /// The operation code (first byte).
    pub fn opcode(&self) -> u8 {
        self.base[0]
    }

    /// The CDB bytes: the BHS part followed by the extension, if any.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = self.base.to_vec();
        v.extend_from_slice(&self.extended);
        v
    }
}

/// SCSI Command (RFC 7143 §11.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct ScsiCommand {
    pub immediate: bool,
    /// F: no unsolicited Data-Out follows this PDU.
    pub final_: bool,
    /// R: data is expected from the target.
    pub read: bool,
    /// W: data is expected from the initiator.
    pub write: bool,
    pub attr: TaskAttr,
    pub lun: Lun,
    pub itt: Itt,
    pub expected_data_transfer_length: u32,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub cdb: Cdb,
    /// Expected Bidirectional Read-Data Length AHS (§11.2.2.4).
    pub bidi_read_length: Option<u32>,
}

/// Task management function codes (RFC 7143 §11.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum TmfFunction {
    #[default]
    AbortTask = 1,
    AbortTaskSet = 2,
    ClearAca = 3,
    ClearTaskSet = 4,
    LogicalUnitReset = 5,
    TargetWarmReset = 6,
    TargetColdReset = 7,
    TaskReassign = 8,
}

impl TmfFunction {
    pub fn from_u8(v: u8) -> Option<TmfFunction> {
        use TmfFunction::*;
        Some(match v & 0x7f {
            1 => AbortTask,
            2 => AbortTaskSet,
            3 => ClearAca,
            4 => ClearTaskSet,
            5 => LogicalUnitReset,
            6 => TargetWarmReset,
            7 => TargetColdReset,
            8 => TaskReassign,
            _ => return None,
        })
    }
}

/// Task Management Function Request (RFC 7143 §11.5). `function` keeps the
/// raw 7-bit code so that an unknown function can be answered with
/// "Task management function not supported" rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct TaskMgmtRequest {
    pub immediate: bool,
    pub function: u8,
    pub lun: Lun,
    pub itt: Itt,
    pub referenced_task_tag: Itt,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub ref_cmd_sn: u32,
    pub exp_data_sn: u32,
}

/// Login stages (RFC 7143 §11.12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum Stage {
    #[default]
    SecurityNegotiation = 0,
    LoginOperationalNegotiation = 1,
    /// The value 2 is reserved.
    Reserved = 2,
    FullFeaturePhase = 3,
}

impl Stage {
    pub fn from_bits(v: u8) -> Stage {
        match v & 3 {
            0 => Stage::SecurityNegotiation,
            1 => Stage::LoginOperationalNegotiation,
            2 => Stage::Reserved,
            _ => Stage::FullFeaturePhase,
        }
    }
}

/// Login Request (RFC 7143 §11.12). The I bit is always set on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct LoginRequest {
    /// T: the initiator is ready to transit to `nsg`.
    pub transit: bool,
    /// C: the text is continued in the next PDU.
    pub continue_: bool,
    pub csg: Stage,
    pub nsg: Stage,
    pub version_max: u8,
    pub version_min: u8,
    pub isid: Isid,
    pub tsih: u16,
    pub itt: Itt,
    pub cid: u16,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
}

/// Text Request (RFC 7143 §11.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct TextRequest {
    pub immediate: bool,
    pub final_: bool,
    pub continue_: bool,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
}

/// SCSI Data-Out (RFC 7143 §11.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct DataOut {
    pub final_: bool,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub exp_stat_sn: u32,
    pub data_sn: u32,
    pub buffer_offset: u32,
}

/// Logout reason codes (RFC 7143 §11.14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum LogoutReason {
    #[default]
    CloseSession = 0,
    CloseConnection = 1,
    RemoveConnectionForRecovery = 2,
}

impl LogoutReason {
    pub fn from_u8(v: u8) -> Option<LogoutReason> {
        Some(match v & 0x7f {
            0 => LogoutReason::CloseSession,
            1 => LogoutReason::CloseConnection,
            2 => LogoutReason::RemoveConnectionForRecovery,
            _ => return None,
        })
    }
}

/// Logout Request (RFC 7143 §11.14). `reason` keeps the raw 7-bit code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct LogoutRequest {
    pub immediate: bool,
    pub reason: u8,
    pub itt: Itt,
    pub cid: u16,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
}

/// SNACK types (RFC 7143 §11.16.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum SnackType {
    #[default]
    DataR2t = 0,
    Status = 1,
    DataAck = 2,
    RDataSnack = 3,
}

impl SnackType {
    pub fn from_u8(v: u8) -> Option<SnackType> {
        Some(match v & 0x0f {
            0 => SnackType::DataR2t,
            1 => SnackType::Status,
            2 => SnackType::DataAck,
            3 => SnackType::RDataSnack,
            _ => return None,
        })
    }
}

/// SNACK Request (RFC 7143 §11.16). `snack_type` keeps the raw 4-bit code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct SnackRequest {
    pub snack_type: u8,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub exp_stat_sn: u32,
    pub beg_run: u32,
    pub run_length: u32,
}

/// NOP-In (RFC 7143 §11.19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct NopIn {
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
}

/// SCSI Response (RFC 7143 §11.4). The data segment carries SenseLength,
/// the sense data and any response data (§11.4.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct ScsiResponse {
    /// o: Bidirectional Read Residual Overflow.
    pub bidi_overflow: bool,
    /// u: Bidirectional Read Residual Underflow.
    pub bidi_underflow: bool,
    /// O: Residual Overflow.
    pub overflow: bool,
    /// U: Residual Underflow.
    pub underflow: bool,
    /// 0x00 Command Completed at Target, 0x01 Target Failure.
    pub response: u8,
    pub status: u8,
    pub itt: Itt,
    pub snack_tag: u32,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub exp_data_sn: u32,
    pub bidi_read_residual_count: u32,
    pub residual_count: u32,
}

/// Task Management Function Response (RFC 7143 §11.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct TaskMgmtResponse {
    pub response: u8,
    pub itt: Itt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
}

/// TMF response codes (RFC 7143 §11.6.1).
pub mod tmf_response {
    pub const FUNCTION_COMPLETE: u8 = 0;
    pub const TASK_DOES_NOT_EXIST: u8 = 1;
    pub const LUN_DOES_NOT_EXIST: u8 = 2;
    pub const TASK_STILL_ALLEGIANT: u8 = 3;
    pub const TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED: u8 = 4;
    pub const FUNCTION_NOT_SUPPORTED: u8 = 5;
    pub const AUTHORIZATION_FAILED: u8 = 6;
    pub const FUNCTION_REJECTED: u8 = 255;
}

/// Login Response (RFC 7143 §11.13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct LoginResponse {
    pub transit: bool,
    pub continue_: bool,
    pub csg: Stage,
    pub nsg: Stage,
    pub version_max: u8,
    pub version_active: u8,
    pub isid: Isid,
    pub tsih: u16,
    pub itt: Itt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub status_class: u8,
    pub status_detail: u8,
}

/// Text Response (RFC 7143 §11.11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct TextResponse {
    pub final_: bool,
    pub continue_: bool,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
}

/// SCSI Data-In (RFC 7143 §11.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct DataIn {
    pub final_: bool,
    /// A: the target requests a DataACK SNACK (ERL > 0).
    pub ack: bool,
    pub overflow: bool,
    pub underflow: bool,
    /// S: the PDU carries the command's status (phase collapse).
    pub status_present: bool,
    pub status: u8,
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub data_sn: u32,
    pub buffer_offset: u32,
    pub residual_count: u32,
}

/// Logout Response (RFC 7143 §11.15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct LogoutResponse {
    /// 0 closed successfully, 1 CID not found, 2 recovery not supported,
    /// 3 cleanup failed.
    pub response: u8,
    pub itt: Itt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub time2wait: u16,
    pub time2retain: u16,
}

/// Ready To Transfer (RFC 7143 §11.8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct R2t {
    pub lun: Lun,
    pub itt: Itt,
    pub ttt: Ttt,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub r2t_sn: u32,
    pub buffer_offset: u32,
    pub desired_data_transfer_length: u32,
}

/// Asynchronous Message (RFC 7143 §11.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct AsyncMessage {
    pub lun: Lun,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub async_event: u8,
    pub async_vcode: u8,
    pub parameter1: u16,
    pub parameter2: u16,
    pub parameter3: u16,
}

/// AsyncEvent codes (RFC 7143 §11.9.1).
pub mod async_event {
    pub const SCSI_ASYNC_EVENT: u8 = 0;
    pub const LOGOUT_REQUEST: u8 = 1;
    pub const CONNECTION_DROP: u8 = 2;
    pub const SESSION_DROP: u8 = 3;
    pub const NEGOTIATION_REQUEST: u8 = 4;
    pub const TASK_TERMINATION: u8 = 5;
    pub const VENDOR_SPECIFIC: u8 = 255;
}

/// Reject (RFC 7143 §11.17). The data segment holds the rejected PDU's BHS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub struct Reject {
    pub reason: u8,
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub data_sn_r2t_sn: u32,
}

/// Reject reasons (RFC 7143 §11.17.1).
pub mod reject_reason {
    pub const DATA_DIGEST_ERROR: u8 = 0x02;
    pub const SNACK_REJECT: u8 = 0x03;
    pub const PROTOCOL_ERROR: u8 = 0x04;
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x05;
    pub const IMMEDIATE_COMMAND_REJECT: u8 = 0x06;
    pub const TASK_IN_PROGRESS: u8 = 0x07;
    pub const INVALID_DATA_ACK: u8 = 0x08;
    pub const INVALID_PDU_FIELD: u8 = 0x09;
    pub const LONG_OPERATION_REJECT: u8 = 0x0a;
    pub const DEPRECATED_NEGOTIATION_RESET: u8 = 0x0b;
    pub const WAITING_FOR_LOGOUT: u8 = 0x0c;
}

/// The header of a PDU, one variant per opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Header {
    NopOut(NopOut),
    ScsiCommand(ScsiCommand),
    TaskMgmtRequest(TaskMgmtRequest),
    LoginRequest(LoginRequest),
    TextRequest(TextRequest),
    DataOut(DataOut),
    LogoutRequest(LogoutRequest),
    SnackRequest(SnackRequest),
    NopIn(NopIn),
    ScsiResponse(ScsiResponse),
    TaskMgmtResponse(TaskMgmtResponse),
    LoginResponse(LoginResponse),
    TextResponse(TextResponse),
    DataIn(DataIn),
    LogoutResponse(LogoutResponse),
    R2t(R2t),
    AsyncMessage(AsyncMessage),
    Reject(Reject),
}

impl Header {
    pub fn opcode(&self) -> Opcode {
        match self {
            Header::NopOut(_) => Opcode::NopOut,
            Header::ScsiCommand(_) => Opcode::ScsiCommand,
            Header::TaskMgmtRequest(_) => Opcode::TaskMgmtRequest,
            Header::LoginRequest(_) => Opcode::LoginRequest,
            Header::TextRequest(_) => Opcode::TextRequest,
            Header::DataOut(_) => Opcode::DataOut,
            Header::LogoutRequest(_) => Opcode::LogoutRequest,
            Header::SnackRequest(_) => Opcode::SnackRequest,
            Header::NopIn(_) => Opcode::NopIn,
            Header::ScsiResponse(_) => Opcode::ScsiResponse,
            Header::TaskMgmtResponse(_) => Opcode::TaskMgmtResponse,
            Header::LoginResponse(_) => Opcode::LoginResponse,
            Header::TextResponse(_) => Opcode::TextResponse,
            Header::DataIn(_) => Opcode::DataIn,
            Header::LogoutResponse(_) => Opcode::LogoutResponse,
            Header::R2t(_) => Opcode::R2t,
            Header::AsyncMessage(_) => Opcode::AsyncMessage,
            Header::Reject(_) => Opcode::Reject,
        }
    }

    /// Whether this target PDU carries status and so takes a StatSN of its
    /// own (RFC 7143 §4.2.2.2); R2T, pings (NOP-In with the reserved ITT)
    /// and Data-In without the S bit only report the next one.
    pub fn advances_stat_sn(&self) -> bool {
        match self {
            Header::ScsiResponse(_)
            | Header::TaskMgmtResponse(_)
            | Header::LoginResponse(_)
            | Header::TextResponse(_)
            | Header::LogoutResponse(_)
            | Header::AsyncMessage(_)
            | Header::Reject(_) => true,
            Header::DataIn(h) => h.status_present,
            Header::NopIn(h) => h.itt != RESERVED_TAG,
            _ => false,
        }
    }

    /// The Initiator Task Tag, for the opcodes that carry one
    /// (Async Message carries the reserved tag).
    pub fn itt(&self) -> Itt {
        match self {
            Header::NopOut(h) => h.itt,
            Header::ScsiCommand(h) => h.itt,
            Header::TaskMgmtRequest(h) => h.itt,
            Header::LoginRequest(h) => h.itt,
            Header::TextRequest(h) => h.itt,
            Header::DataOut(h) => h.itt,
            Header::LogoutRequest(h) => h.itt,
            Header::SnackRequest(h) => h.itt,
            Header::NopIn(h) => h.itt,
            Header::ScsiResponse(h) => h.itt,
            Header::TaskMgmtResponse(h) => h.itt,
            Header::LoginResponse(h) => h.itt,
            Header::TextResponse(h) => h.itt,
            Header::DataIn(h) => h.itt,
            Header::LogoutResponse(h) => h.itt,
            Header::R2t(h) => h.itt,
            Header::AsyncMessage(_) | Header::Reject(_) => RESERVED_TAG,
        }
    }
}
