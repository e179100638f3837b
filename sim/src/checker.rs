//! Protocol invariants checked on every PDU the simulated hosts send,
//! independently of the engines: a second opinion, built from RFC 7143,
//! on the bytes that actually crossed the wire.
//!
//! Per connection, in the direction target → initiator:
//! - StatSN (§4.2.2.2): every status-bearing PDU carries the next StatSN
//!   and advances it by one; R2T and NOP-In pings carry it unadvanced.
//! - ExpCmdSN never decreases and MaxCmdSN ≥ ExpCmdSN − 1 (§4.2.2.1).
//! - Data-In (§11.7.5): DataSN counts from 0 without gaps, offsets follow
//!   the data, nothing beyond the expected length, only for live tasks.
//! - R2T (§11.8): only for live writes, R2TSN counts from 0, the requested
//!   range lies inside the Expected Data Transfer Length.
//! - Responses name an outstanding task (none after its abort).
//! - After another session's LOGICAL UNIT RESET or TARGET RESET completes,
//!   the first command sent to that logical unit (other than INQUIRY,
//!   REPORT LUNS, REQUEST SENSE) meets CHECK CONDITION, UNIT ATTENTION
//!   (SAM-5, "Logical unit reset"; SPC-5, "Unit attention conditions") —
//!   unless an earlier command met it after the reset was asked for. A
//!   command sent after the TMF response was sent can only reach the
//!   logical unit after the reset, whatever the timing.
//!
//! In the direction initiator → target:
//! - CmdSN (§4.2.2.1): non-immediate requests advance it by one, within
//!   the window the target granted; immediate ones carry it unadvanced.
//! - ITT (§4.2.1): unique among the connection's outstanding tasks.
//! - Data-Out (§11.7): DataSN counts from 0 per R2T (or unsolicited
//!   burst), offsets inside the Expected Data Transfer Length.

use std::collections::{BTreeMap, BTreeSet};

use iscsi_engine::pdu::{Header, Itt, Lun, RESERVED_TAG, TmfFunction, Ttt, tmf_response};
use iscsi_engine::serial;

/// What an outstanding request is.
#[derive(Debug, Clone)]
enum Kind {
    Scsi {
        lun: Lun,
        opcode: u8,
        expected_in: u32,
        edtl: u32,
        write: bool,
    },
    Nop,
    Tmf {
        function: u8,
        referenced: Itt,
        lun: Lun,
    },
    Text,
    Logout,
}

#[derive(Debug, Clone)]
struct Outstanding {
    kind: Kind,
    /// When the request was sent (the wire's PDU counter).
    sent: u64,
    /// A task management function may have ended it silently: it may get
    /// a response, or never, and its ITT may be reused.
    maybe_aborted: bool,
    data_in_sn: u32,
    data_in_offset: u32,
    r2t_sn: u32,
    /// Next DataSN per Data-Out sequence (TTT; the reserved tag for
    /// unsolicited data).
    data_out_sn: BTreeMap<Ttt, u32>,
}

/// A TMF whose success ends tasks on other connections too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearing {
    /// Every task on this LUN of this target.
    Lun(Lun),
    /// Every task of this target.
    All,
}

/// The invariants of one connection.
#[derive(Debug, Default)]
pub struct ConnChecker {
    next_stat_sn: Option<u32>,
    exp_cmd_sn: Option<u32>,
    max_cmd_sn: Option<u32>,
    next_cmd_sn: Option<u32>,
    tasks: BTreeMap<Itt, Outstanding>,
    /// Resets by other sessions whose unit attention is still to be seen.
    unit_attention_due: Vec<Due>,
    /// When (the wire's PDU counter) a unit attention last answered a
    /// command on each logical unit.
    last_unit_attention: BTreeMap<Lun, u64>,
    /// When each outstanding TMF request was sent.
    tmf_sent: BTreeMap<Itt, u64>,
}

/// A unit attention another session's reset owes this connection.
#[derive(Debug, Clone)]
struct Due {
    /// The logical unit reset, or every one.
    lun: Option<Lun>,
    /// When the reset was asked for.
    since: u64,
    /// The first command sent after the reset completed.
    witness: Option<(Itt, Lun)>,
    /// The witness was answered without a unit attention: the earlier
    /// commands still unanswered, one of which may have met it.
    pending: Option<BTreeSet<Itt>>,
}

fn stat_sn_of(h: &Header) -> Option<u32> {
    Some(match h {
        Header::ScsiResponse(x) => x.stat_sn,
        Header::TaskMgmtResponse(x) => x.stat_sn,
        Header::LoginResponse(x) => x.stat_sn,
        Header::TextResponse(x) => x.stat_sn,
        Header::LogoutResponse(x) => x.stat_sn,
        Header::AsyncMessage(x) => x.stat_sn,
        Header::Reject(x) => x.stat_sn,
        Header::DataIn(x) if x.status_present => x.stat_sn,
        Header::NopIn(x) => x.stat_sn,
        Header::R2t(x) => x.stat_sn,
        _ => return None,
    })
}

fn window_of(h: &Header) -> Option<(u32, u32)> {
    Some(match h {
        Header::ScsiResponse(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::TaskMgmtResponse(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::LoginResponse(x) if x.status_class == 0 => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::TextResponse(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::LogoutResponse(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::AsyncMessage(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::Reject(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::DataIn(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::NopIn(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        Header::R2t(x) => (x.exp_cmd_sn, x.max_cmd_sn),
        _ => return None,
    })
}

impl ConnChecker {
    pub fn new() -> ConnChecker {
        ConnChecker::default()
    }

    /// A PDU the initiator sent. Returns the broken rule, if any.
    pub fn initiator_pdu(&mut self, h: &Header, data_len: u32, seq: u64) -> Result<(), String> {
        let (cmd_sn, immediate, itt, kind) = match h {
            Header::LoginRequest(x) => {
                self.next_cmd_sn = Some(x.cmd_sn);
                return Ok(());
            }
            Header::DataOut(x) => return self.data_out(x, data_len),
            Header::SnackRequest(_) => return Ok(()),
            Header::ScsiCommand(x) => (
                x.cmd_sn,
                x.immediate,
                x.itt,
                Some(Kind::Scsi {
                    lun: x.lun,
                    opcode: x.cdb.opcode(),
                    expected_in: x.bidi_read_length.unwrap_or(if x.read {
                        x.expected_data_transfer_length
                    } else {
                        0
                    }),
                    edtl: x.expected_data_transfer_length,
                    write: x.write,
                }),
            ),
            Header::NopOut(x) => (
                x.cmd_sn,
                x.immediate,
                x.itt,
                (x.itt != RESERVED_TAG).then_some(Kind::Nop),
            ),
            Header::TaskMgmtRequest(x) => (
                x.cmd_sn,
                x.immediate,
                x.itt,
                Some(Kind::Tmf {
                    function: x.function & 0x7f,
                    referenced: x.referenced_task_tag,
                    lun: x.lun,
                }),
            ),
            Header::TextRequest(x) => (x.cmd_sn, x.immediate, x.itt, Some(Kind::Text)),
            Header::LogoutRequest(x) => (x.cmd_sn, x.immediate, x.itt, Some(Kind::Logout)),
            _ => return Err(format!("initiator sent {}", h.opcode().name())),
        };
        if let Some(expected) = self.next_cmd_sn {
            if cmd_sn != expected {
                return Err(format!(
                    "{} CmdSN {cmd_sn} but the next CmdSN is {expected} (RFC 7143 §4.2.2.1)",
                    h.opcode().name()
                ));
            }
            if !immediate {
                if let Some(max) = self.max_cmd_sn {
                    if serial::gt(cmd_sn, max) {
                        return Err(format!(
                            "{} CmdSN {cmd_sn} beyond MaxCmdSN {max} (RFC 7143 §4.2.2.1)",
                            h.opcode().name()
                        ));
                    }
                }
                self.next_cmd_sn = Some(expected.wrapping_add(1));
            }
        }
        let Some(kind) = kind else {
            return Ok(());
        };
        match &kind {
            Kind::Tmf { .. } => {
                self.tmf_sent.insert(itt, seq);
            }
            Kind::Scsi { lun, opcode, .. } => self.note_command(itt, *lun, *opcode),
            _ => {}
        }
        if let Some(old) = self.tasks.get(&itt) {
            let continuation = matches!((&old.kind, &kind), (Kind::Text, Kind::Text));
            if !continuation && !old.maybe_aborted {
                return Err(format!(
                    "{} reuses ITT {itt:#x} of an outstanding task (RFC 7143 §4.2.1)",
                    h.opcode().name()
                ));
            }
            if continuation {
                return Ok(());
            }
        }
        self.tasks.insert(
            itt,
            Outstanding {
                kind,
                sent: seq,
                maybe_aborted: false,
                data_in_sn: 0,
                data_in_offset: 0,
                r2t_sn: 0,
                data_out_sn: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn data_out(&mut self, x: &iscsi_engine::pdu::DataOut, len: u32) -> Result<(), String> {
        // Data-Out for a task the target already ended (an abort raced
        // with it) is harmless: the target drops it.
        let Some(task) = self.tasks.get_mut(&x.itt) else {
            return Ok(());
        };
        let Kind::Scsi { edtl, write, .. } = task.kind else {
            return Err(format!("Data-Out for non-SCSI task {:#x}", x.itt));
        };
        if !write {
            return Err(format!("Data-Out for task {:#x} without the W bit", x.itt));
        }
        let next = task.data_out_sn.entry(x.ttt).or_insert(0);
        if x.data_sn != *next {
            return Err(format!(
                "Data-Out DataSN {} for ITT {:#x} TTT {:#x}, expected {} (RFC 7143 §11.7.5)",
                x.data_sn, x.itt, x.ttt, next
            ));
        }
        *next += 1;
        if x.final_ {
            task.data_out_sn.remove(&x.ttt);
        }
        if u64::from(x.buffer_offset) + u64::from(len) > u64::from(edtl) {
            return Err(format!(
                "Data-Out {}+{} beyond the Expected Data Transfer Length {edtl}",
                x.buffer_offset, len
            ));
        }
        Ok(())
    }

    /// A PDU the target sent. `Ok(Some((what, reset)))` asks the caller to
    /// end tasks on the target's other connections, and when `reset`, to
    /// expect a unit attention there.
    pub fn target_pdu(
        &mut self,
        h: &Header,
        data: &[u8],
        seq: u64,
    ) -> Result<Option<(Clearing, bool, u64)>, String> {
        let name = h.opcode().name();
        if let Some(stat_sn) = stat_sn_of(h) {
            let bearing = h.advances_stat_sn();
            match (self.next_stat_sn, h) {
                (None, Header::LoginResponse(_)) => {}
                (None, _) => {}
                (Some(expected), _) if stat_sn != expected => {
                    return Err(format!(
                        "{name} StatSN {stat_sn}, expected {expected} (RFC 7143 §4.2.2.2)"
                    ));
                }
                _ => {}
            }
            self.next_stat_sn = Some(if bearing {
                stat_sn.wrapping_add(1)
            } else {
                stat_sn
            });
        }
        if let Some((exp, max)) = window_of(h) {
            if let Some(old) = self.exp_cmd_sn {
                if serial::lt(exp, old) {
                    return Err(format!(
                        "{name} ExpCmdSN went back from {old} to {exp} (RFC 7143 §4.2.2.1)"
                    ));
                }
            }
            if serial::lt(max, exp.wrapping_sub(1)) {
                return Err(format!(
                    "{name} MaxCmdSN {max} below ExpCmdSN {exp} - 1 (RFC 7143 §4.2.2.1)"
                ));
            }
            self.exp_cmd_sn = Some(exp);
            if self.max_cmd_sn.is_none_or(|m| serial::gt(max, m)) {
                self.max_cmd_sn = Some(max);
            }
        }
        self.check_unit_attention(h, data, seq)?;
        match h {
            Header::DataIn(x) => {
                let Some(task) = self.tasks.get_mut(&x.itt) else {
                    return Err(format!("Data-In for ITT {:#x}, no such task", x.itt));
                };
                let Kind::Scsi { expected_in, .. } = task.kind else {
                    return Err(format!("Data-In for non-SCSI task {:#x}", x.itt));
                };
                if x.data_sn != task.data_in_sn {
                    return Err(format!(
                        "Data-In DataSN {} for ITT {:#x}, expected {} (RFC 7143 §11.7.5)",
                        x.data_sn, x.itt, task.data_in_sn
                    ));
                }
                if x.buffer_offset != task.data_in_offset {
                    return Err(format!(
                        "Data-In offset {} for ITT {:#x}, expected {}",
                        x.buffer_offset, x.itt, task.data_in_offset
                    ));
                }
                let len = data.len() as u32;
                if u64::from(x.buffer_offset) + u64::from(len) > u64::from(expected_in) {
                    return Err(format!(
                        "Data-In {}+{len} beyond the expected length {expected_in}",
                        x.buffer_offset
                    ));
                }
                task.data_in_sn += 1;
                task.data_in_offset += len;
                if x.status_present {
                    self.tasks.remove(&x.itt);
                }
            }
            Header::R2t(x) => {
                let Some(task) = self.tasks.get_mut(&x.itt) else {
                    return Err(format!("R2T for ITT {:#x}, no such task", x.itt));
                };
                let Kind::Scsi { edtl, write, .. } = task.kind else {
                    return Err(format!("R2T for non-SCSI task {:#x}", x.itt));
                };
                if !write {
                    return Err(format!("R2T for read task {:#x}", x.itt));
                }
                if x.r2t_sn != task.r2t_sn {
                    return Err(format!(
                        "R2TSN {} for ITT {:#x}, expected {} (RFC 7143 §11.8.2)",
                        x.r2t_sn, x.itt, task.r2t_sn
                    ));
                }
                task.r2t_sn += 1;
                let end = u64::from(x.buffer_offset) + u64::from(x.desired_data_transfer_length);
                if end > u64::from(edtl) || x.desired_data_transfer_length == 0 {
                    return Err(format!(
                        "R2T asks for {}+{} of a {edtl}-byte transfer",
                        x.buffer_offset, x.desired_data_transfer_length
                    ));
                }
            }
            Header::ScsiResponse(x)
                if self.tasks.remove(&x.itt).is_none() => {
                    return Err(format!("SCSI Response for ITT {:#x}, no such task", x.itt));
                }
            Header::NopIn(x) if x.itt != RESERVED_TAG
                && self.tasks.remove(&x.itt).is_none() => {
                    return Err(format!("NOP-In for ITT {:#x}, no such ping", x.itt));
                }
            Header::TextResponse(x) => {
                if !self.tasks.contains_key(&x.itt) {
                    return Err(format!("Text Response for ITT {:#x}, no such task", x.itt));
                }
                if x.final_ {
                    self.tasks.remove(&x.itt);
                }
            }
            Header::LogoutResponse(x)
                if self.tasks.remove(&x.itt).is_none() => {
                    return Err(format!(
                        "Logout Response for ITT {:#x}, no such task",
                        x.itt
                    ));
                }
            Header::Reject(_)
                // The rejected PDU's BHS is the data segment (§11.17.1);
                // a rejected request ends.
                if data.len() >= 20 && data[0] & 0x3f != 0x05 => {
                    let itt = u32::from_be_bytes([data[16], data[17], data[18], data[19]]);
                    self.tasks.remove(&itt);
                }
            Header::TaskMgmtResponse(x) => {
                let Some(task) = self.tasks.remove(&x.itt) else {
                    return Err(format!("TMF Response for ITT {:#x}, no such task", x.itt));
                };
                let Kind::Tmf {
                    function,
                    referenced,
                    lun,
                } = task.kind
                else {
                    return Err(format!("TMF Response for non-TMF task {:#x}", x.itt));
                };
                let complete = x.response == tmf_response::FUNCTION_COMPLETE;
                let sent = self.tmf_sent.remove(&x.itt).unwrap_or(0);
                match TmfFunction::from_u8(function) {
                    Some(TmfFunction::AbortTask)
                        if complete || x.response == tmf_response::TASK_DOES_NOT_EXIST =>
                    {
                        self.tasks.remove(&referenced);
                    }
                    Some(TmfFunction::AbortTaskSet) if complete => {
                        self.clear(Clearing::Lun(lun), Some(sent))
                    }
                    Some(TmfFunction::ClearTaskSet) if complete => {
                        self.clear(Clearing::Lun(lun), Some(sent));
                        return Ok(Some((Clearing::Lun(lun), false, sent)));
                    }
                    Some(TmfFunction::LogicalUnitReset) if complete => {
                        self.clear(Clearing::Lun(lun), Some(sent));
                        return Ok(Some((Clearing::Lun(lun), true, sent)));
                    }
                    Some(TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset)
                        if complete =>
                    {
                        self.clear(Clearing::All, Some(sent));
                        return Ok(Some((Clearing::All, true, sent)));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// Another session's reset of `what`, asked for at `since` (the wire's
    /// PDU counter), completed: the first command sent here from now on
    /// to such a logical unit must meet a unit attention, unless an
    /// earlier command already met one after the reset was asked for.
    pub fn expect_unit_attention(&mut self, what: Clearing, since: u64) {
        self.unit_attention_due.push(Due {
            lun: match what {
                Clearing::Lun(l) => Some(l),
                Clearing::All => None,
            },
            since,
            witness: None,
            pending: None,
        });
    }

    fn note_command(&mut self, itt: Itt, lun: Lun, opcode: u8) {
        if matches!(opcode, 0x12 | 0xa0 | 0x03) {
            return;
        }
        for due in &mut self.unit_attention_due {
            if due.witness.is_none() && due.lun.is_none_or(|l| l == lun) {
                due.witness = Some((itt, lun));
            }
        }
    }

    fn check_unit_attention(&mut self, h: &Header, data: &[u8], seq: u64) -> Result<(), String> {
        let (itt, status) = match h {
            Header::ScsiResponse(x) => (x.itt, x.status),
            Header::DataIn(x) if x.status_present => (x.itt, x.status),
            _ => return Ok(()),
        };
        let Some(Kind::Scsi { lun, .. }) = self.tasks.get(&itt).map(|t| &t.kind) else {
            return Ok(());
        };
        let lun = *lun;
        let key = (data.len() > 2)
            .then(|| {
                let sense = &data[2..];
                match sense.first().map(|c| c & 0x7f) {
                    Some(0x70 | 0x71) => sense.get(2).map(|k| k & 0x0f),
                    Some(0x72 | 0x73) => sense.get(1).map(|k| k & 0x0f),
                    _ => None,
                }
            })
            .flatten();
        let unit_attention = status == 0x02 && key == Some(0x06);
        if unit_attention {
            self.last_unit_attention.insert(lun, seq);
        }
        let last = self.last_unit_attention.get(&lun).copied();
        // Commands sent before the witness on the same logical unit, still
        // unanswered: one of them may have met the unit attention and be
        // answered later (disk latency holds responses, not execution).
        let earlier = |tasks: &BTreeMap<Itt, Outstanding>, witness: u64| -> BTreeSet<Itt> {
            tasks
                .iter()
                .filter(|(i, t)| {
                    **i != itt
                        && t.sent < witness
                        && matches!(&t.kind, Kind::Scsi { lun: l, opcode, .. }
                            if *l == lun && !matches!(opcode, 0x12 | 0xa0 | 0x03))
                })
                .map(|(i, _)| *i)
                .collect()
        };
        let witness_sent = self.tasks.get(&itt).map_or(0, |t| t.sent);
        let mut broken = None;
        let mut due = std::mem::take(&mut self.unit_attention_due);
        due.retain_mut(|d| {
            let is_witness = d.witness.map(|(w, _)| w) == Some(itt);
            let waits_on_this = d.pending.as_ref().is_some_and(|p| p.contains(&itt));
            if !is_witness && !waits_on_this {
                return true;
            }
            if unit_attention || last.is_some_and(|l| l >= d.since) {
                return false;
            }
            let pending = match d.pending.take() {
                Some(mut p) => {
                    p.remove(&itt);
                    p
                }
                None => earlier(&self.tasks, witness_sent),
            };
            if pending.is_empty() {
                broken = Some(status);
                return false;
            }
            d.pending = Some(pending);
            true
        });
        self.unit_attention_due = due;
        match broken {
            Some(status) => Err(format!(
                "the first command on LUN {} after another session's reset got status {status:#04x}, and no earlier one met a UNIT ATTENTION (SAM-5)",
                lun.index().map_or(-1, i32::from)
            )),
            None => Ok(()),
        }
    }

    /// A task management function ended the SCSI tasks of `what`. On the
    /// connection that asked (`asked` is when), the tasks sent before the
    /// request were surely aborted and must get no response; every other
    /// task in its scope (on this connection after the request, or on
    /// another session's connection) may or may not have been.
    pub fn clear(&mut self, what: Clearing, asked: Option<u64>) {
        self.tasks.retain(|_, t| {
            let hit = match (&t.kind, what) {
                (Kind::Scsi { .. }, Clearing::All) => true,
                (Kind::Scsi { lun, .. }, Clearing::Lun(l)) => *lun == l,
                _ => false,
            };
            if !hit {
                return true;
            }
            if asked.is_some_and(|a| t.sent < a) {
                return false;
            }
            t.maybe_aborted = true;
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_engine::pdu::{DataIn, LoginResponse, ScsiCommand, ScsiResponse, Stage};

    fn login(stat_sn: u32) -> Header {
        Header::LoginResponse(LoginResponse {
            transit: true,
            nsg: Stage::FullFeaturePhase,
            stat_sn,
            exp_cmd_sn: 1,
            max_cmd_sn: 8,
            ..LoginResponse::default()
        })
    }

    fn read(itt: u32, cmd_sn: u32) -> Header {
        Header::ScsiCommand(ScsiCommand {
            final_: true,
            read: true,
            itt,
            cmd_sn,
            expected_data_transfer_length: 1024,
            ..ScsiCommand::default()
        })
    }

    #[test]
    fn a_repeated_stat_sn_is_caught() {
        let mut c = ConnChecker::new();
        c.target_pdu(&login(10), &[], 0).unwrap();
        c.initiator_pdu(&read(1, 1), 0, 0).unwrap();
        let data_in = Header::DataIn(DataIn {
            itt: 1,
            status_present: true,
            final_: true,
            stat_sn: 11,
            exp_cmd_sn: 2,
            max_cmd_sn: 9,
            ..DataIn::default()
        });
        c.target_pdu(&data_in, &[0u8; 1024], 0).unwrap();
        c.initiator_pdu(&read(2, 2), 0, 0).unwrap();
        let rsp = Header::ScsiResponse(ScsiResponse {
            itt: 2,
            stat_sn: 11,
            exp_cmd_sn: 3,
            max_cmd_sn: 10,
            ..ScsiResponse::default()
        });
        let err = c.target_pdu(&rsp, &[], 0).unwrap_err();
        assert!(err.contains("StatSN 11, expected 12"), "{err}");
    }

    #[test]
    fn itt_reuse_and_cmd_sn_gaps_are_caught() {
        let mut c = ConnChecker::new();
        c.target_pdu(&login(1), &[], 0).unwrap();
        c.initiator_pdu(
            &Header::LoginRequest(iscsi_engine::pdu::LoginRequest {
                cmd_sn: 1,
                ..Default::default()
            }),
            0,
            0,
        )
        .unwrap();
        c.initiator_pdu(&read(5, 1), 0, 0).unwrap();
        assert!(
            c.initiator_pdu(&read(5, 2), 0, 0)
                .unwrap_err()
                .contains("reuses")
        );
        let mut c = ConnChecker::new();
        c.initiator_pdu(
            &Header::LoginRequest(iscsi_engine::pdu::LoginRequest {
                cmd_sn: 1,
                ..Default::default()
            }),
            0,
            0,
        )
        .unwrap();
        c.initiator_pdu(&read(1, 1), 0, 0).unwrap();
        assert!(
            c.initiator_pdu(&read(2, 3), 0, 0)
                .unwrap_err()
                .contains("CmdSN 3")
        );
    }

    #[test]
    fn a_data_sn_gap_is_caught() {
        let mut c = ConnChecker::new();
        c.initiator_pdu(&read(1, 1), 0, 0).unwrap();
        let d = |sn, off| {
            Header::DataIn(DataIn {
                itt: 1,
                data_sn: sn,
                buffer_offset: off,
                ..DataIn::default()
            })
        };
        c.target_pdu(&d(0, 0), &[0u8; 256], 0).unwrap();
        let err = c.target_pdu(&d(2, 256), &[0u8; 256], 0).unwrap_err();
        assert!(err.contains("DataSN 2"), "{err}");
    }
}
