//! What the initiator receives (RFC 7143 §4.2.2, §11): StatSN, ExpCmdSN
//! and MaxCmdSN bookkeeping, then each response PDU — Data-In, SCSI
//! Response, R2T, NOP-In, TMF, Text, Logout, Async Message and Reject.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::error::InitiatorError;
use super::sense::{SenseInfo, sense_of_response};
use super::session::{AsyncLogout, Phase, Session};
use super::task::{Kind, MAX_TEXT_RESPONSE, ScsiTask, Task, TmfTask};
use super::{Completion, Event};
use crate::pdu::{
    AsyncMessage, BHS_LEN, DataIn, Header, Itt, LogoutResponse, Lun, NopIn, NopOut, Opcode, Pdu,
    R2t, RESERVED_TAG, Reject, ScsiResponse, TaskMgmtResponse, TextRequest, TextResponse,
    TmfFunction, async_event, reject_reason, tmf_response,
};
use crate::serial;
use crate::text::decode_pairs;
use crate::text::discovery::parse_send_targets;

impl Session {
    pub(super) fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
        if let Phase::Login { .. } = self.phase {
            self.handle_login_pdu(pdu, now);
            return;
        }
        if let Err(reason) = self.update_sequence_numbers(&pdu.header) {
            self.connection_lost(now, reason.into());
            return;
        }
        let Pdu { header, data } = pdu;
        match header {
            Header::DataIn(h) => self.on_data_in(h, data, now),
            Header::ScsiResponse(h) => self.on_scsi_response(h, data, now),
            Header::R2t(h) => self.on_r2t(h, now),
            Header::NopIn(h) => self.on_nop_in(h, data),
            Header::TaskMgmtResponse(h) => self.on_tmf_response(h),
            Header::TextResponse(h) => self.on_text_response(h, data, now),
            Header::LogoutResponse(h) => self.on_logout_response(h, now),
            Header::AsyncMessage(h) => self.on_async_message(h, data, now),
            Header::Reject(h) => self.on_reject(h, data),
            other => self.connection_lost(
                now,
                format!("unexpected {} from the target", other.opcode().name()),
            ),
        }
    }

    /// StatSN, ExpCmdSN and MaxCmdSN of a target PDU (§4.2.2). A status
    /// out of StatSN order means a status was lost: at ErrorRecoveryLevel
    /// 0 the connection is recovered.
    fn update_sequence_numbers(&mut self, header: &Header) -> Result<(), &'static str> {
        let (stat_sn, exp, max, kind) = match header {
            Header::ScsiResponse(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict),
            Header::TaskMgmtResponse(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict),
            Header::TextResponse(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict),
            Header::LogoutResponse(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict),
            Header::DataIn(h) if h.status_present => {
                (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict)
            }
            Header::DataIn(h) => (0, h.exp_cmd_sn, h.max_cmd_sn, Stat::None),
            Header::NopIn(h) if h.itt != RESERVED_TAG => {
                (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Strict)
            }
            Header::NopIn(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Current),
            Header::R2t(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Current),
            Header::AsyncMessage(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Resync),
            Header::Reject(h) => (h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn, Stat::Resync),
            _ => return Ok(()),
        };
        match kind {
            Stat::Strict => {
                if stat_sn != self.exp_stat_sn {
                    warn!(stat_sn, expected = self.exp_stat_sn, "StatSN out of order");
                    return Err("StatSN out of order: a status was lost");
                }
                self.exp_stat_sn = stat_sn.wrapping_add(1);
            }
            Stat::Resync => {
                if serial::ge(stat_sn, self.exp_stat_sn) {
                    self.exp_stat_sn = stat_sn.wrapping_add(1);
                }
            }
            Stat::Current | Stat::None => {}
        }
        // §4.2.2.1: MaxCmdSN < ExpCmdSN - 1 makes both invalid.
        if serial::lt(max, exp.wrapping_sub(1)) {
            return Ok(());
        }
        if serial::gt(exp, self.exp_cmd_sn) && serial::le(exp, self.cmd_sn) {
            self.exp_cmd_sn = exp;
        }
        if serial::gt(max, self.max_cmd_sn) {
            self.max_cmd_sn = max;
        }
        Ok(())
    }

    fn scsi_task(&mut self, itt: Itt) -> Option<&mut ScsiTask> {
        match self.tasks.get_mut(&itt) {
            Some(Task {
                kind: Kind::Scsi(s),
                sent: true,
                ..
            }) => Some(s),
            _ => None,
        }
    }

    fn on_data_in(&mut self, h: DataIn, data: Bytes, now: Instant) {
        let itt = h.itt;
        let Some(task) = self.scsi_task(itt) else {
            debug!(itt, "Data-In for no task in flight dropped");
            return;
        };
        if let Err(reason) = task.accept_data_in(&h, data) {
            self.connection_lost(now, reason.into());
            return;
        }
        if h.status_present {
            if !h.final_ {
                self.connection_lost(now, "Data-In with status but without F".into());
                return;
            }
            let result = task.finish(h.status, None, h.overflow, h.underflow, h.residual_count);
            self.completed(itt, result.map(Completion::Scsi));
        }
    }

    fn on_scsi_response(&mut self, h: ScsiResponse, data: Bytes, _now: Instant) {
        let itt = h.itt;
        let Some(task) = self.scsi_task(itt) else {
            debug!(itt, "SCSI Response for no task in flight dropped");
            return;
        };
        let result = if h.response != 0 {
            Err(InitiatorError::TargetFailure {
                response: h.response,
            })
        } else {
            let sense = sense_of_response(&data).and_then(SenseInfo::parse);
            task.finish(h.status, sense, h.overflow, h.underflow, h.residual_count)
        };
        self.completed(itt, result.map(Completion::Scsi));
    }

    fn on_r2t(&mut self, h: R2t, now: Instant) {
        let params = self.params.clone();
        let max_xmit = self.max_xmit;
        let Some(task) = (match self.tasks.get_mut(&h.itt) {
            Some(Task {
                kind: Kind::Scsi(s),
                sent: true,
                ..
            }) => Some(s),
            _ => None,
        }) else {
            debug!(itt = h.itt, "R2T for no task in flight dropped");
            return;
        };
        if let Err(reason) = task.answer_r2t(&h, &params, max_xmit, &mut self.outbox) {
            self.connection_lost(now, reason.into());
        }
    }

    /// NOP-In (§11.19): the answer to our ping, or the target's own ping,
    /// answered with a NOP-Out echoing its TTT, LUN and data.
    fn on_nop_in(&mut self, h: NopIn, data: Bytes) {
        if h.itt != RESERVED_TAG {
            if self.ping_itt == Some(h.itt) {
                self.ping_itt = None;
                self.ping_deadline = None;
            }
            return;
        }
        if h.ttt == RESERVED_TAG {
            return;
        }
        let echo = data.slice(..data.len().min(self.max_xmit as usize));
        self.outbox.push_back(Pdu::new(
            Header::NopOut(NopOut {
                immediate: true,
                lun: h.lun,
                itt: RESERVED_TAG,
                ttt: h.ttt,
                cmd_sn: self.cmd_sn,
                exp_stat_sn: 0,
            }),
            echo,
        ));
    }

    /// Task Management Function Response (§11.6). When the function
    /// completed, the tasks it covered that are still outstanding are over:
    /// the target sends nothing more for them (§4.2.3.4, RFC 3720
    /// semantics), so they complete as aborted rather than hang.
    fn on_tmf_response(&mut self, h: TaskMgmtResponse) {
        let Some(Task {
            kind: Kind::Tmf(tmf),
            sent: true,
            ..
        }) = self.tasks.get(&h.itt)
        else {
            debug!(itt = h.itt, "TMF response for no TMF in flight dropped");
            return;
        };
        let done = h.response == tmf_response::FUNCTION_COMPLETE
            || (tmf.function == TmfFunction::AbortTask
                && h.response == tmf_response::TASK_DOES_NOT_EXIST);
        let affected = tmf.affected.clone();
        let timeout = self.config.command_timeout.unwrap_or_default();
        for itt in affected {
            let Some(task) = self.tasks.get(&itt).filter(|t| t.sent) else {
                continue;
            };
            if task.timed_out {
                self.completed(itt, Err(InitiatorError::CommandTimeout(timeout)));
            } else if done {
                self.completed(itt, Err(InitiatorError::Aborted));
            }
        }
        self.completed(h.itt, Ok(Completion::TaskManagement(h.response)));
    }

    /// A command's timeout fired: ABORT TASK it (§11.5.1); it fails with
    /// [`InitiatorError::CommandTimeout`] when the TMF is answered.
    pub(super) fn command_timed_out(&mut self, itt: Itt, now: Instant) {
        let Some(task) = self.tasks.get_mut(&itt).filter(|t| t.sent && !t.timed_out) else {
            return;
        };
        let Kind::Scsi(scsi) = &task.kind else {
            return;
        };
        warn!(itt, "command timed out: aborting it");
        task.timed_out = true;
        task.deadline = None;
        let lun = scsi.lun;
        let tmf = self.alloc_itt();
        self.enqueue(
            tmf,
            Kind::Tmf(TmfTask {
                lun,
                function: TmfFunction::AbortTask,
                referenced: Some(itt),
                affected: Vec::new(),
                internal: true,
            }),
            true,
        );
        self.flush(now);
    }

    /// Text Response (§11.11): a long answer comes in pieces, each fetched
    /// with an empty Text Request echoing the TTT (§11.10.2).
    fn on_text_response(&mut self, h: TextResponse, data: Bytes, now: Instant) {
        let itt = h.itt;
        let Some(Task {
            kind: Kind::Text(text),
            sent: true,
            ..
        }) = self.tasks.get_mut(&itt)
        else {
            debug!(itt, "Text Response for no request in flight dropped");
            return;
        };
        if text.received.len() + data.len() > MAX_TEXT_RESPONSE {
            self.completed(
                itt,
                Err(InitiatorError::Protocol("text response too long".into())),
            );
            return;
        }
        text.received.extend_from_slice(&data);
        if h.continue_ || !h.final_ {
            if h.ttt == RESERVED_TAG {
                self.connection_lost(now, "continued Text Response without a TTT".into());
                return;
            }
            self.outbox
                .push_back(Pdu::bare(Header::TextRequest(TextRequest {
                    immediate: true,
                    final_: true,
                    continue_: false,
                    lun: h.lun,
                    itt,
                    ttt: h.ttt,
                    cmd_sn: self.cmd_sn,
                    exp_stat_sn: 0,
                })));
            return;
        }
        let text = std::mem::take(&mut text.received);
        let result = decode_pairs(&text)
            .map_err(|e| e.to_string())
            .and_then(|pairs| {
                if pairs
                    .iter()
                    .any(|(k, v)| k == "SendTargets" && v == "Reject")
                {
                    return Err("the target rejected SendTargets".to_string());
                }
                parse_send_targets(&pairs).map_err(|e| e.to_string())
            });
        self.completed(
            itt,
            result
                .map(Completion::SendTargets)
                .map_err(InitiatorError::Protocol),
        );
    }

    fn on_logout_response(&mut self, h: LogoutResponse, now: Instant) {
        if self.async_logout.is_some_and(|a| a.itt == Some(h.itt)) {
            // The target asked for this logout: reconnect after Time2Wait
            // (§11.15.2), and the held commands go out on the new session.
            self.logout_deadline = None;
            self.not_before = Some(now + Duration::from_secs(u64::from(h.time2wait)));
            self.connection_lost(now, "logged out at the target's request".into());
            return;
        }
        if self.logout == Some(h.itt) {
            if h.response != 0 {
                warn!(response = h.response, "logout refused; closing anyway");
            }
            self.finish_logout();
        }
    }

    /// Asynchronous Message (§11.9.1).
    fn on_async_message(&mut self, h: AsyncMessage, data: Bytes, now: Instant) {
        match h.async_event {
            async_event::SCSI_ASYNC_EVENT => {
                let lun = h.lun.index().unwrap_or(0);
                let sense = sense_of_response(&data).unwrap_or_default();
                self.events.push_back(Event::ScsiEvent { lun, sense });
            }
            async_event::LOGOUT_REQUEST => {
                info!(within = h.parameter3, "the target requests a logout");
                if self.logout.is_none() && self.async_logout.is_none() {
                    let within = Duration::from_secs(u64::from(h.parameter3.max(1)));
                    self.async_logout = Some(AsyncLogout {
                        deadline: now + within / 2,
                        itt: None,
                    });
                }
            }
            async_event::CONNECTION_DROP | async_event::SESSION_DROP => {
                let wait = Duration::from_secs(u64::from(h.parameter2));
                self.not_before = Some(now + wait);
                self.connection_lost(
                    now,
                    format!("the target drops the connection (event {})", h.async_event),
                );
            }
            async_event::NEGOTIATION_REQUEST => {
                // §11.9.1: answer with a Text Request; we renegotiate nothing.
                let itt = self.alloc_itt();
                self.outbox
                    .push_back(Pdu::bare(Header::TextRequest(TextRequest {
                        immediate: true,
                        final_: true,
                        continue_: false,
                        lun: Lun(0),
                        itt,
                        ttt: RESERVED_TAG,
                        cmd_sn: self.cmd_sn,
                        exp_stat_sn: 0,
                    })));
            }
            other => debug!(event = other, "asynchronous message ignored"),
        }
    }

    /// Reject (§11.17): the rejected PDU's BHS says which request failed.
    /// A command rejected for a data digest error is sent again (§7.8);
    /// other rejected requests fail.
    fn on_reject(&mut self, h: Reject, data: Bytes) {
        if data.len() < BHS_LEN {
            warn!(reason = h.reason, "Reject without the rejected header");
            return;
        }
        let opcode = Opcode::from_u8(data[0] & 0x3f);
        let itt = u32::from_be_bytes([data[16], data[17], data[18], data[19]]);
        warn!(reason = h.reason, ?opcode, itt, "rejected by the target");
        match opcode {
            Some(Opcode::NopOut) if self.ping_itt == Some(itt) => {
                self.ping_itt = None;
                self.ping_deadline = None;
            }
            Some(
                Opcode::ScsiCommand
                | Opcode::TaskMgmtRequest
                | Opcode::TextRequest
                | Opcode::LogoutRequest,
            ) => {
                let Some(task) = self.tasks.get_mut(&itt).filter(|t| t.sent) else {
                    return;
                };
                let retry = h.reason == reject_reason::DATA_DIGEST_ERROR
                    && matches!(task.kind, Kind::Scsi(_));
                if retry {
                    task.sent = false;
                    self.waiting.insert(task.seq, itt);
                } else if self.logout == Some(itt) {
                    self.finish_logout();
                } else {
                    self.completed(itt, Err(InitiatorError::Rejected { reason: h.reason }));
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stat {
    /// A status: StatSN must be the one expected, and advances.
    Strict,
    /// The current StatSN, not advanced (R2T, unsolicited NOP-In).
    Current,
    /// Advances, but is not checked (Async Message, Reject).
    Resync,
    /// No StatSN (Data-In without status).
    None,
}
