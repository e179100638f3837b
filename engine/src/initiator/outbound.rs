//! What the initiator sends (RFC 7143 §3.2.2, §3.2.4, §11): ITT
//! allocation, commands within the CmdSN window, immediate and unsolicited
//! data, task management, logout and NOP-Out pings.

use std::time::Instant;

use tracing::debug;

use super::error::InitiatorError;
use super::session::{AsyncLogout, Phase, Session};
use super::task::{Kind, Task, TmfTask};
use super::{Command, Completion, Event, TaskId};
use crate::pdu::{
    Header, Itt, LogoutRequest, Lun, NopOut, Pdu, RESERVED_TAG, TaskMgmtRequest, TextRequest,
    TmfFunction, tmf_response,
};
use crate::serial;
use crate::text::SessionType;

impl Session {
    pub(super) fn alloc_itt(&mut self) -> Itt {
        #[cfg(feature = "planted-bugs")]
        if crate::planted::active(
            self.config.planted,
            crate::planted::PlantedBug::IttReusedEarly,
        ) {
            let itt = 0x100 | (self.next_itt & 0x1f);
            self.next_itt = self.next_itt.wrapping_add(1);
            return itt;
        }
        loop {
            let itt = self.next_itt;
            self.next_itt = self.next_itt.wrapping_add(1);
            let taken = self.tasks.contains_key(&itt)
                || self.ping_itt == Some(itt)
                || self.async_logout.is_some_and(|a| a.itt == Some(itt));
            if itt != RESERVED_TAG && !taken {
                return itt;
            }
        }
    }

    /// Why a new request cannot be taken, if it cannot.
    pub(super) fn refuse_any(&self) -> Option<InitiatorError> {
        if self.is_closed() {
            return Some(self.closed_reason.clone().unwrap_or(InitiatorError::Closed));
        }
        if self.logout.is_some() {
            return Some(InitiatorError::Closed);
        }
        None
    }

    pub(super) fn refuse(&self, cmd: &Command) -> Option<InitiatorError> {
        if let Some(e) = self.refuse_any() {
            return Some(e);
        }
        let invalid = |m: &str| Some(InitiatorError::InvalidRequest(m.to_string()));
        if self.config.session_type == SessionType::Discovery {
            return invalid("SCSI commands need a normal session");
        }
        if !cmd.data_out.is_empty() && cmd.expected_in > 0 {
            return invalid("bidirectional commands are not supported");
        }
        if cmd.data_out.len() > u32::MAX as usize {
            return invalid("Data-Out longer than 4 GiB");
        }
        if cmd.lun >= 0x4000 {
            return invalid("LUN out of range");
        }
        if cmd.cdb.extended.len() > 1000 {
            return invalid("CDB too long");
        }
        None
    }

    pub(super) fn enqueue(&mut self, itt: Itt, kind: Kind, immediate: bool) {
        let seq = self.insert_task(itt, kind);
        if immediate {
            self.immediate.insert(seq, itt);
        } else {
            self.waiting.insert(seq, itt);
        }
    }

    /// Records a request; the caller queues it (or not). Returns its
    /// submission number.
    pub(super) fn insert_task(&mut self, itt: Itt, kind: Kind) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tasks.insert(
            itt,
            Task {
                itt,
                seq,
                kind,
                sent: false,
                cmd_sn: 0,
                retries: 0,
                deadline: None,
                timed_out: false,
            },
        );
        seq
    }

    pub(super) fn completed(&mut self, itt: Itt, result: Result<Completion, InitiatorError>) {
        let task = self.tasks.remove(&itt);
        if let Some(at) = task.as_ref().and_then(|t| t.deadline) {
            self.deadlines.remove(&(at, itt));
        }
        if let Some(Task {
            kind: Kind::Tmf(TmfTask { internal: true, .. }),
            ..
        }) = task
        {
            return;
        }
        self.events.push_back(Event::Completed {
            task: TaskId(itt),
            result,
        });
    }

    /// Sends what may be sent: immediate requests, then commands while the
    /// CmdSN window is open (§4.2.2.1: CmdSN ≤ MaxCmdSN), then a pending
    /// logout once nothing else is outstanding.
    pub(super) fn flush(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Full { .. }) {
            return;
        }
        while let Some((_, itt)) = self.immediate.pop_first() {
            self.send_immediate(itt);
            if !matches!(self.phase, Phase::Full { .. }) {
                return;
            }
        }
        if self.async_logout.is_none() {
            while let Some((&seq, &itt)) = self.waiting.first_key_value() {
                if !serial::le(self.cmd_sn, self.max_cmd_sn) {
                    break;
                }
                self.waiting.remove(&seq);
                self.send_command(itt, now);
            }
        }
        self.maybe_logout(now);
    }

    fn send_command(&mut self, itt: Itt, now: Instant) {
        debug_assert!(
            serial::le(self.exp_cmd_sn, self.cmd_sn) && serial::le(self.cmd_sn, self.max_cmd_sn),
            "CmdSN {} outside the window [{}, {}]",
            self.cmd_sn,
            self.exp_cmd_sn,
            self.max_cmd_sn
        );
        let Some(task) = self.tasks.get_mut(&itt) else {
            return;
        };
        let cmd_sn = self.cmd_sn;
        let Kind::Scsi(scsi) = &mut task.kind else {
            return;
        };
        debug_assert!(!task.sent, "{itt:#x} sent twice");
        scsi.send(itt, cmd_sn, &self.params, self.max_xmit, &mut self.outbox);
        task.sent = true;
        task.cmd_sn = cmd_sn;
        if let Some(timeout) = self.config.command_timeout {
            let at = now + timeout;
            task.deadline = Some(at);
            self.deadlines.insert((at, itt));
        }
        self.cmd_sn = cmd_sn.wrapping_add(1);
    }

    /// Sends an immediate request (§3.2.2.1: it carries the next CmdSN
    /// without consuming it).
    fn send_immediate(&mut self, itt: Itt) {
        let cmd_sn = self.cmd_sn;
        let Some(task) = self.tasks.get(&itt) else {
            return;
        };
        match &task.kind {
            Kind::Tmf(_) => self.send_tmf(itt),
            Kind::Text(t) => {
                let data = t.request.clone();
                self.outbox.push_back(Pdu::new(
                    Header::TextRequest(TextRequest {
                        immediate: true,
                        final_: true,
                        continue_: false,
                        lun: Lun(0),
                        itt,
                        ttt: RESERVED_TAG,
                        cmd_sn,
                        exp_stat_sn: 0,
                    }),
                    data,
                ));
                self.mark_sent(itt, cmd_sn);
            }
            // Logout goes out from maybe_logout; commands never queue here.
            Kind::Logout | Kind::Scsi(_) => {}
        }
    }

    fn mark_sent(&mut self, itt: Itt, cmd_sn: u32) {
        if let Some(t) = self.tasks.get_mut(&itt) {
            t.sent = true;
            t.cmd_sn = cmd_sn;
        }
    }

    /// A task management request (§11.5.1): ABORT TASK names the task and
    /// its CmdSN; the others cover the tasks in flight on the LUN (or on
    /// every LUN, for the target resets), which complete as aborted when
    /// the function completes.
    fn send_tmf(&mut self, itt: Itt) {
        let cmd_sn = self.cmd_sn;
        let Some(Kind::Tmf(tmf)) = self.tasks.get(&itt).map(|t| &t.kind) else {
            return;
        };
        let (lun, function, referenced) = (tmf.lun, tmf.function, tmf.referenced);
        let mut ref_cmd_sn = cmd_sn;
        let mut referenced_tag = RESERVED_TAG;
        let affected: Vec<Itt> = match function {
            TmfFunction::AbortTask => {
                let Some(r) = referenced else {
                    self.completed(
                        itt,
                        Err(InitiatorError::InvalidRequest(
                            "ABORT TASK needs a task".into(),
                        )),
                    );
                    return;
                };
                match self.tasks.get(&r) {
                    Some(t) if t.sent && matches!(t.kind, Kind::Scsi(_)) => {
                        ref_cmd_sn = t.cmd_sn;
                        referenced_tag = r;
                        vec![r]
                    }
                    Some(t) if matches!(t.kind, Kind::Scsi(_)) => {
                        // Never sent: it ends here.
                        let seq = t.seq;
                        self.waiting.remove(&seq);
                        self.completed(r, Err(InitiatorError::Aborted));
                        self.completed(
                            itt,
                            Ok(Completion::TaskManagement(tmf_response::FUNCTION_COMPLETE)),
                        );
                        return;
                    }
                    _ => {
                        self.completed(
                            itt,
                            Ok(Completion::TaskManagement(
                                tmf_response::TASK_DOES_NOT_EXIST,
                            )),
                        );
                        return;
                    }
                }
            }
            TmfFunction::ClearAca | TmfFunction::TaskReassign => Vec::new(),
            TmfFunction::TargetWarmReset | TmfFunction::TargetColdReset => self.in_flight(None),
            _ => self.in_flight(Some(lun)),
        };
        if let Some(Kind::Tmf(t)) = self.tasks.get_mut(&itt).map(|t| &mut t.kind) {
            t.affected = affected;
        }
        self.outbox
            .push_back(Pdu::bare(Header::TaskMgmtRequest(TaskMgmtRequest {
                immediate: true,
                function: function as u8,
                lun,
                itt,
                referenced_task_tag: referenced_tag,
                cmd_sn,
                exp_stat_sn: 0,
                ref_cmd_sn,
                exp_data_sn: 0,
            })));
        self.mark_sent(itt, cmd_sn);
    }

    /// SCSI tasks in flight, on one LUN or on all.
    fn in_flight(&self, lun: Option<Lun>) -> Vec<Itt> {
        self.tasks
            .values()
            .filter(|t| t.sent)
            .filter(|t| match &t.kind {
                Kind::Scsi(s) => lun.is_none_or(|l| s.lun == l),
                _ => false,
            })
            .map(|t| t.itt)
            .collect()
    }

    /// Sends the Logout the user or the target asked for, once nothing
    /// else is outstanding (or the target's deadline has come).
    fn maybe_logout(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Full { .. }) {
            return;
        }
        let busy = self.tasks.values().any(|t| !matches!(t.kind, Kind::Logout));
        if let Some(itt) = self.logout {
            let unsent = self.tasks.get(&itt).is_some_and(|t| !t.sent);
            if unsent && !busy {
                self.send_logout(itt, now);
                self.mark_sent(itt, self.cmd_sn);
            }
            return;
        }
        if let Some(a) = self.async_logout {
            let in_flight = self.tasks.values().any(|t| t.sent);
            if a.itt.is_none() && (!in_flight || now >= a.deadline) {
                let itt = self.alloc_itt();
                self.async_logout = Some(AsyncLogout {
                    itt: Some(itt),
                    ..a
                });
                self.send_logout(itt, now);
            }
        }
    }

    fn send_logout(&mut self, itt: Itt, now: Instant) {
        debug!(itt, "logout");
        self.outbox
            .push_back(Pdu::bare(Header::LogoutRequest(LogoutRequest {
                immediate: true,
                reason: 0,
                itt,
                cid: 0,
                cmd_sn: self.cmd_sn,
                exp_stat_sn: 0,
            })));
        self.logout_deadline = Some(now + self.config.logout_timeout);
    }

    /// A NOP-Out ping (§11.18): immediate, with an ITT, so the target must
    /// answer with a NOP-In.
    pub(super) fn ping(&mut self, now: Instant) {
        let itt = self.alloc_itt();
        self.ping_itt = Some(itt);
        self.ping_deadline = Some(now + self.config.nop_timeout);
        self.outbox.push_back(Pdu::bare(Header::NopOut(NopOut {
            immediate: true,
            lun: Lun(0),
            itt,
            ttt: RESERVED_TAG,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: 0,
        })));
    }

    // ---- internals: received PDUs --------------------------------------
}
