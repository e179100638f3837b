//! The logical units of one target node, and command dispatch.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::cdb::Cdb;
use super::command::{Command, Failure, Outcome, flags};
use super::sense::{Asc, Sense};
use super::{CommandRequest, CommandResult, LuConfig, Nexus, TaskManagement, sbc, spc, status};
use crate::pdu::Lun;
use crate::store::BlockStore;

/// A command handler working on one logical unit.
pub type LuHandler = fn(&mut LogicalUnit, &Command<'_>) -> Outcome;
/// A command handler that needs the whole device (REPORT LUNS, EXTENDED
/// COPY between logical units).
pub type DeviceHandler = fn(&mut Device, u16, &Command<'_>) -> Outcome;

#[derive(Clone, Copy)]
pub enum Handler {
    Lu(LuHandler),
    Device(DeviceHandler),
}

/// One supported command: the single table that dispatch, the gating
/// checks and REPORT SUPPORTED OPERATION CODES all read.
#[derive(Clone, Copy)]
pub struct CommandInfo {
    pub opcode: u8,
    /// The service action, for opcodes that have them.
    pub service_action: Option<u16>,
    pub name: &'static str,
    /// CDB usage data (SPC-5 §6.34.3): the CDB length is its length; bit
    /// set where the field is supported. Byte 0 is the opcode.
    pub usage: &'static [u8],
    pub flags: u16,
    pub handler: Handler,
}

impl CommandInfo {
    pub fn cdb_len(&self) -> usize {
        self.usage.len()
    }
}

/// Every command a logical unit supports.
pub fn commands() -> &'static [CommandInfo] {
    COMMANDS
}

use flags::{
    IGNORES_UNIT_ATTENTION as NO_UA, MEDIUM_ACCESS as MEDIUM, READS, RESERVATION_EXEMPT as EXEMPT,
    WRITES,
};

macro_rules! cmd {
    ($op:expr, $sa:expr, $name:expr, $usage:expr, $flags:expr, $h:expr) => {
        CommandInfo {
            opcode: $op,
            service_action: $sa,
            name: $name,
            usage: $usage,
            flags: $flags,
            handler: $h,
        }
    };
}

static COMMANDS: &[CommandInfo] = &[
    // SPC-5 (spc module)
    cmd!(
        0x00,
        None,
        "TEST UNIT READY",
        &[0x00, 0, 0, 0, 0, 0x07],
        MEDIUM | EXEMPT,
        Handler::Lu(spc::test_unit_ready)
    ),
    cmd!(
        0x03,
        None,
        "REQUEST SENSE",
        &[0x03, 0x01, 0, 0, 0xff, 0x07],
        NO_UA | EXEMPT,
        Handler::Lu(spc::request_sense)
    ),
    cmd!(
        0x12,
        None,
        "INQUIRY",
        &[0x12, 0x01, 0xff, 0xff, 0xff, 0x07],
        NO_UA | EXEMPT,
        Handler::Lu(spc::inquiry)
    ),
    cmd!(
        0x15,
        None,
        "MODE SELECT(6)",
        &[0x15, 0x11, 0, 0, 0xff, 0x07],
        0,
        Handler::Lu(spc::mode_select)
    ),
    cmd!(
        0x55,
        None,
        "MODE SELECT(10)",
        &[0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        0,
        Handler::Lu(spc::mode_select)
    ),
    cmd!(
        0x1a,
        None,
        "MODE SENSE(6)",
        &[0x1a, 0x08, 0xff, 0xff, 0xff, 0x07],
        0,
        Handler::Lu(spc::mode_sense)
    ),
    cmd!(
        0x5a,
        None,
        "MODE SENSE(10)",
        &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x07],
        0,
        Handler::Lu(spc::mode_sense)
    ),
    cmd!(
        0x16,
        None,
        "RESERVE(6)",
        &[0x16, 0, 0, 0, 0, 0x07],
        0,
        Handler::Lu(spc::reserve)
    ),
    cmd!(
        0x56,
        None,
        "RESERVE(10)",
        &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0x07],
        0,
        Handler::Lu(spc::reserve)
    ),
    cmd!(
        0x17,
        None,
        "RELEASE(6)",
        &[0x17, 0, 0, 0, 0, 0x07],
        0,
        Handler::Lu(spc::release)
    ),
    cmd!(
        0x57,
        None,
        "RELEASE(10)",
        &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0x07],
        0,
        Handler::Lu(spc::release)
    ),
    cmd!(
        0x5e,
        Some(0x00),
        "PERSISTENT RESERVE IN",
        &[0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_in)
    ),
    cmd!(
        0x5e,
        Some(0x01),
        "PERSISTENT RESERVE IN",
        &[0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_in)
    ),
    cmd!(
        0x5e,
        Some(0x02),
        "PERSISTENT RESERVE IN",
        &[0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_in)
    ),
    cmd!(
        0x5e,
        Some(0x03),
        "PERSISTENT RESERVE IN",
        &[0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_in)
    ),
    cmd!(
        0x5f,
        Some(0x00),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x01),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x02),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x03),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x04),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x05),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x06),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0x5f,
        Some(0x07),
        "PERSISTENT RESERVE OUT",
        &[0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07],
        EXEMPT,
        Handler::Lu(spc::persistent_reserve_out)
    ),
    cmd!(
        0xa3,
        Some(0x0c),
        "REPORT SUPPORTED OPERATION CODES",
        &[
            0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        EXEMPT,
        Handler::Lu(spc::report_supported_opcodes)
    ),
    cmd!(
        0xa3,
        Some(0x0d),
        "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
        &[0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07],
        EXEMPT,
        Handler::Lu(spc::report_supported_tmfs)
    ),
    cmd!(
        0x1b,
        None,
        "START STOP UNIT",
        &[0x1b, 0x01, 0, 0x0f, 0xf7, 0x07],
        0,
        Handler::Lu(spc::start_stop_unit)
    ),
    cmd!(
        0x1e,
        None,
        "PREVENT ALLOW MEDIUM REMOVAL",
        &[0x1e, 0, 0, 0, 0x03, 0x07],
        0,
        Handler::Lu(spc::prevent_allow_medium_removal)
    ),
    cmd!(
        0xa0,
        None,
        "REPORT LUNS",
        &[0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07],
        NO_UA | EXEMPT,
        Handler::Device(spc::report_luns)
    ),
    cmd!(
        0x83,
        Some(0x00),
        "EXTENDED COPY",
        &[
            0x83, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Device(spc::extended_copy)
    ),
    cmd!(
        0x84,
        Some(0x00),
        "RECEIVE COPY RESULTS",
        &[
            0x84, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        0,
        Handler::Device(spc::receive_copy_results)
    ),
    cmd!(
        0x84,
        Some(0x03),
        "RECEIVE COPY RESULTS",
        &[
            0x84, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        0,
        Handler::Device(spc::receive_copy_results)
    ),
    // SBC-4 (sbc module)
    cmd!(
        0x25,
        None,
        "READ CAPACITY(10)",
        &[0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0x07],
        MEDIUM | READS | EXEMPT,
        Handler::Lu(sbc::read_capacity10)
    ),
    cmd!(
        0x9e,
        Some(0x10),
        "READ CAPACITY(16)",
        &[
            0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        MEDIUM | READS | EXEMPT,
        Handler::Lu(sbc::read_capacity16)
    ),
    cmd!(
        0x9e,
        Some(0x12),
        "GET LBA STATUS",
        &[
            0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
            0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::get_lba_status)
    ),
    cmd!(
        0x08,
        None,
        "READ(6)",
        &[0x08, 0x1f, 0xff, 0xff, 0xff, 0x07],
        MEDIUM | READS,
        Handler::Lu(sbc::read)
    ),
    cmd!(
        0x28,
        None,
        "READ(10)",
        &[0x28, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | READS,
        Handler::Lu(sbc::read)
    ),
    cmd!(
        0xa8,
        None,
        "READ(12)",
        &[
            0xa8, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::read)
    ),
    cmd!(
        0x88,
        None,
        "READ(16)",
        &[
            0x88, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::read)
    ),
    cmd!(
        0x0a,
        None,
        "WRITE(6)",
        &[0x0a, 0x1f, 0xff, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write)
    ),
    cmd!(
        0x2a,
        None,
        "WRITE(10)",
        &[0x2a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write)
    ),
    cmd!(
        0xaa,
        None,
        "WRITE(12)",
        &[
            0xaa, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write)
    ),
    cmd!(
        0x8a,
        None,
        "WRITE(16)",
        &[
            0x8a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write)
    ),
    cmd!(
        0x2e,
        None,
        "WRITE AND VERIFY(10)",
        &[0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_and_verify)
    ),
    cmd!(
        0xae,
        None,
        "WRITE AND VERIFY(12)",
        &[
            0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_and_verify)
    ),
    cmd!(
        0x8e,
        None,
        "WRITE AND VERIFY(16)",
        &[
            0x8e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_and_verify)
    ),
    cmd!(
        0x2f,
        None,
        "VERIFY(10)",
        &[0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | READS,
        Handler::Lu(sbc::verify)
    ),
    cmd!(
        0xaf,
        None,
        "VERIFY(12)",
        &[
            0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::verify)
    ),
    cmd!(
        0x8f,
        None,
        "VERIFY(16)",
        &[
            0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::verify)
    ),
    cmd!(
        0x41,
        None,
        "WRITE SAME(10)",
        &[0x41, 0xe8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_same)
    ),
    cmd!(
        0x93,
        None,
        "WRITE SAME(16)",
        &[
            0x93, 0xe9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_same)
    ),
    cmd!(
        0x42,
        None,
        "UNMAP",
        &[0x42, 0x00, 0, 0, 0, 0, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::unmap)
    ),
    cmd!(
        0x89,
        None,
        "COMPARE AND WRITE",
        &[
            0x89, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::compare_and_write)
    ),
    cmd!(
        0x8b,
        None,
        "ORWRITE(16)",
        &[
            0x8b, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::orwrite)
    ),
    cmd!(
        0x9c,
        None,
        "WRITE ATOMIC(16)",
        &[
            0x9c, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0x3f,
            0x07
        ],
        MEDIUM | WRITES,
        Handler::Lu(sbc::write_atomic16)
    ),
    cmd!(
        0x34,
        None,
        "PRE-FETCH(10)",
        &[0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM | READS,
        Handler::Lu(sbc::pre_fetch)
    ),
    cmd!(
        0x90,
        None,
        "PRE-FETCH(16)",
        &[
            0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM | READS,
        Handler::Lu(sbc::pre_fetch)
    ),
    cmd!(
        0x35,
        None,
        "SYNCHRONIZE CACHE(10)",
        &[0x35, 0x06, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x07],
        MEDIUM,
        Handler::Lu(sbc::synchronize_cache)
    ),
    cmd!(
        0x91,
        None,
        "SYNCHRONIZE CACHE(16)",
        &[
            0x91, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3f, 0x07
        ],
        MEDIUM,
        Handler::Lu(sbc::synchronize_cache)
    ),
    cmd!(
        0x48,
        Some(0x01),
        "SANITIZE",
        &[0x48, 0xa1, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::sanitize)
    ),
    cmd!(
        0x48,
        Some(0x02),
        "SANITIZE",
        &[0x48, 0xa2, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::sanitize)
    ),
    cmd!(
        0x48,
        Some(0x03),
        "SANITIZE",
        &[0x48, 0xa3, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::sanitize)
    ),
    cmd!(
        0x48,
        Some(0x1f),
        "SANITIZE",
        &[0x48, 0xbf, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::sanitize)
    ),
    cmd!(
        0x04,
        None,
        "FORMAT UNIT",
        &[0x04, 0x3f, 0, 0, 0, 0x07],
        MEDIUM | WRITES,
        Handler::Lu(sbc::format_unit)
    ),
    cmd!(
        0x37,
        None,
        "READ DEFECT DATA(10)",
        &[0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0x07],
        MEDIUM,
        Handler::Lu(sbc::read_defect_data)
    ),
    cmd!(
        0xb7,
        None,
        "READ DEFECT DATA(12)",
        &[
            0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07
        ],
        MEDIUM,
        Handler::Lu(sbc::read_defect_data)
    ),
];

/// Looks a CDB up in the table: `Err` with the right sense for an unknown
/// opcode or service action.
pub fn lookup(cdb: &Cdb<'_>) -> Result<&'static CommandInfo, Sense> {
    let op = cdb.opcode();
    let mut with_sa = COMMANDS.iter().filter(|c| c.opcode == op).peekable();
    let first = with_sa
        .peek()
        .copied()
        .ok_or(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE))?;
    if first.service_action.is_none() {
        return Ok(first);
    }
    let sa = cdb.service_action() as u16;
    with_sa
        .find(|c| c.service_action == Some(sa))
        .ok_or(Cdb::invalid_field(1, Some(4)))
}

/// One logical unit: SPC-5/SBC-4 state over a block store.
pub struct LogicalUnit {
    pub(crate) config: LuConfig,
    pub(crate) store: Box<dyn BlockStore>,
    /// SPC state: mode pages, unit attentions, reservations, medium.
    pub(crate) spc: spc::State,
    /// SBC state.
    pub(crate) sbc: sbc::State,
    /// A planted bug to switch on (simulation only).
    pub(crate) planted: Option<crate::planted::PlantedBug>,
}

impl LogicalUnit {
    pub fn new(config: LuConfig, store: Box<dyn BlockStore>) -> LogicalUnit {
        let spc = spc::State::new(&config);
        let sbc = sbc::State::new(&config);
        LogicalUnit {
            config,
            store,
            spc,
            sbc,
            planted: None,
        }
    }

    pub fn config(&self) -> &LuConfig {
        &self.config
    }

    pub fn store(&self) -> &dyn BlockStore {
        self.store.as_ref()
    }

    /// Capacity in logical blocks.
    pub fn block_count(&self) -> u64 {
        self.store.len() / self.config.block_size as u64
    }

    /// Turns a handler's outcome into status, sense and data.
    fn finish(&self, outcome: Outcome) -> CommandResult {
        match outcome {
            Ok(data_in) => CommandResult::good(data_in),
            Err(Failure::Check(sense)) => CommandResult {
                status: status::CHECK_CONDITION,
                sense: Some(sense.encode(self.spc.descriptor_sense())),
                data_in: Bytes::new(),
                data_out_wanted: None,
            },
            Err(Failure::Status(s)) => CommandResult {
                status: s,
                sense: None,
                data_in: Bytes::new(),
                data_out_wanted: None,
            },
        }
    }
}

/// The logical units of one iSCSI target node, keyed by LUN number.
/// Commands to a LUN that does not exist are answered here (INQUIRY with
/// peripheral qualifier 011b, REPORT LUNS, or LOGICAL UNIT NOT SUPPORTED).
pub struct Device {
    pub(crate) luns: BTreeMap<u16, LogicalUnit>,
}

impl Device {
    pub fn new(luns: BTreeMap<u16, LogicalUnit>) -> Device {
        Device { luns }
    }

    pub fn luns(&self) -> &BTreeMap<u16, LogicalUnit> {
        &self.luns
    }

    pub fn lun_mut(&mut self, lun: u16) -> Option<&mut LogicalUnit> {
        self.luns.get_mut(&lun)
    }

    /// Executes one command addressed to `lun`.
    pub fn execute(&mut self, lun: Lun, req: CommandRequest<'_>) -> CommandResult {
        let cmd = Command {
            nexus: req.nexus,
            cdb: Cdb(req.cdb),
            data_out: &req.data_out,
            expected_in_len: req.expected_in_len,
            attr: req.attr,
        };
        let Some(index) = lun.index().filter(|i| self.luns.contains_key(i)) else {
            return spc::absent_lun(self, lun, &cmd);
        };
        let info = match lookup(&cmd.cdb) {
            Ok(info) => info,
            Err(sense) => {
                let lu = &self.luns[&index];
                return lu.finish(Err(Failure::Check(sense)));
            }
        };
        let lu = self.luns.get_mut(&index).expect("checked above");
        if let Err(failure) = spc::gate(lu, info, &cmd) {
            return lu.finish(Err(failure));
        }
        let outcome = match info.handler {
            Handler::Lu(h) => h(lu, &cmd),
            Handler::Device(h) => h(self, index, &cmd),
        };
        let lu = &self.luns[&index];
        let mut result = lu.finish(outcome);
        result.data_out_wanted = super::data_out_length(req.cdb, lu.config.block_size);
        result
    }

    /// Switches a planted bug on in every logical unit (simulation only;
    /// without the `planted-bugs` feature this does nothing).
    pub fn set_planted(&mut self, bug: Option<crate::planted::PlantedBug>) {
        for lu in self.luns.values_mut() {
            lu.planted = bug;
        }
    }

    /// Makes SANITIZE run in the background: the logical unit reports
    /// SANITIZE IN PROGRESS until [`Device::complete_sanitize`] is called
    /// (by the driver's timer). Off, SANITIZE completes at once.
    pub fn set_background_sanitize(&mut self, on: bool) {
        for lu in self.luns.values_mut() {
            lu.sbc.defer_sanitize = on;
        }
    }

    /// Whether a background SANITIZE is running on `lun`.
    pub fn sanitize_in_progress(&self, lun: u16) -> bool {
        self.luns
            .get(&lun)
            .is_some_and(|lu| lu.sbc.sanitize_in_progress())
    }

    /// Ends the background SANITIZE on `lun`.
    pub fn complete_sanitize(&mut self, lun: u16) {
        if let Some(lu) = self.luns.get_mut(&lun) {
            lu.sbc.complete_sanitize();
        }
    }

    /// Applies a task management function issued by `nexus` to `lun` (or
    /// to every LU, for target resets).
    pub fn task_management(&mut self, nexus: &Nexus, lun: Lun, tmf: TaskManagement) {
        spc::task_management(self, nexus, lun, tmf)
    }

    /// The I_T nexus is gone (session closed or reinstated): release what
    /// it held (RESERVE(6) reservations) and note the loss (SPC-5 §6.19).
    pub fn nexus_lost(&mut self, nexus: &Nexus) {
        spc::nexus_lost(self, nexus)
    }
}
