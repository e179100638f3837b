//! Task management (RFC 7143 §11.5, §11.6): aborting tasks in the iSCSI
//! layer and handing LU-level effects to the SCSI layer. A task already
//! handed to the SCSI layer has had its effect; aborting it suppresses its
//! response, so the TMF response never waits.

use super::endpoint::Endpoint;
use super::session::Deferred;
use super::{ConnId, Event};
use crate::pdu::{Header, Pdu, TaskMgmtResponse, TmfFunction, tmf_response};
use crate::scsi::TaskManagement;
use crate::serial;

impl Endpoint {
    pub(super) fn on_tmf(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        let Header::TaskMgmtRequest(h) = &pdu.header else {
            return;
        };
        let Some(session) = self.sessions.get(&tsih) else {
            return;
        };
        let (Some(target), Some(nexus)) = (session.target.clone(), session.nexus.clone()) else {
            return;
        };
        let lun_exists = h.lun.index().is_some_and(|i| {
            self.config
                .target(&target)
                .is_some_and(|t| t.luns.contains(&i))
        });
        let mut response = TaskMgmtResponse {
            itt: h.itt,
            response: tmf_response::FUNCTION_COMPLETE,
            ..Default::default()
        };
        let mut affected: Vec<(u16, u32, u64)> = Vec::new();
        let mut scsi_tmf = None;
        let function = TmfFunction::from_u8(h.function);
        let lun_scoped = matches!(
            function,
            Some(
                TmfFunction::AbortTask
                    | TmfFunction::AbortTaskSet
                    | TmfFunction::ClearAca
                    | TmfFunction::ClearTaskSet
                    | TmfFunction::LogicalUnitReset
            )
        );
        // Tasks of every session to this target, on one LUN or on all.
        let target_tasks = |ep: &Endpoint, lun: Option<crate::pdu::Lun>| -> Vec<(u16, u32, u64)> {
            ep.sessions
                .values()
                .filter(|s| s.target.as_deref() == Some(&*target))
                .flat_map(|s| s.tasks.values().map(move |t| (s.tsih, t)))
                .filter(|(_, t)| lun.is_none_or(|l| t.lun == l))
                .map(|(tsih, t)| (tsih, t.itt, t.generation))
                .collect()
        };
        match function {
            None => response.response = tmf_response::FUNCTION_NOT_SUPPORTED,
            Some(TmfFunction::TaskReassign) => {
                response.response = tmf_response::TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED;
            }
            Some(_) if lun_scoped && !lun_exists => {
                response.response = tmf_response::LUN_DOES_NOT_EXIST
            }
            Some(TmfFunction::AbortTask) => match session.tasks.get(&h.referenced_task_tag) {
                Some(t) if t.lun == h.lun => affected.push((tsih, t.itt, t.generation)),
                Some(_) => response.response = tmf_response::TASK_DOES_NOT_EXIST,
                None => {
                    // §11.5.1: a command not yet received whose CmdSN is
                    // in the window and before this TMF's is consumed.
                    let in_window =
                        serial::in_window(h.ref_cmd_sn, session.exp_cmd_sn, session.max_cmd_sn)
                            && serial::lt(h.ref_cmd_sn, h.cmd_sn)
                            && !session.deferred.contains_key(&h.ref_cmd_sn);
                    if in_window {
                        self.skip_cmd_sn(tsih, h.ref_cmd_sn);
                    } else {
                        response.response = tmf_response::TASK_DOES_NOT_EXIST;
                    }
                }
            },
            Some(TmfFunction::AbortTaskSet) => {
                affected = session
                    .tasks
                    .values()
                    .filter(|t| t.lun == h.lun)
                    .map(|t| (tsih, t.itt, t.generation))
                    .collect();
                scsi_tmf = Some(TaskManagement::AbortTaskSet);
            }
            Some(TmfFunction::ClearAca) => scsi_tmf = Some(TaskManagement::ClearAca),
            Some(TmfFunction::ClearTaskSet) => {
                affected = target_tasks(self, Some(h.lun));
                scsi_tmf = Some(TaskManagement::ClearTaskSet);
            }
            Some(TmfFunction::LogicalUnitReset) => {
                affected = target_tasks(self, Some(h.lun));
                scsi_tmf = Some(TaskManagement::LogicalUnitReset);
            }
            Some(TmfFunction::TargetWarmReset) => {
                affected = target_tasks(self, None);
                scsi_tmf = Some(TaskManagement::TargetWarmReset);
            }
            Some(TmfFunction::TargetColdReset) => {
                affected = target_tasks(self, None);
                scsi_tmf = Some(TaskManagement::TargetColdReset);
            }
        }
        tracing::info!(%id, tsih, function = h.function, response = response.response, aborted = affected.len(), "task management");
        for &(t, itt, generation) in &affected {
            self.abort_task(t, itt, generation);
        }
        if let Some(function) = scsi_tmf {
            self.push_event(Event::TaskManagement {
                target: target.clone(),
                nexus,
                lun: h.lun,
                function,
            });
        }
        let cold = scsi_tmf == Some(TaskManagement::TargetColdReset);
        self.queue(id, Pdu::bare(Header::TaskMgmtResponse(response)));
        if cold {
            // §11.5.1: after a cold reset the target drops every connection.
            let victims: Vec<u16> = self
                .sessions
                .values()
                .filter(|s| s.target.as_deref() == Some(&*target))
                .map(|s| s.tsih)
                .collect();
            for t in victims {
                self.end_session(t);
            }
        }
    }

    /// Consumes a CmdSN that an ABORT TASK named before its command came.
    fn skip_cmd_sn(&mut self, tsih: u16, cmd_sn: u32) {
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        if cmd_sn == session.exp_cmd_sn {
            session.exp_cmd_sn = session.exp_cmd_sn.wrapping_add(1);
            self.drain_deferred(tsih);
        } else {
            session.deferred.insert(cmd_sn, Deferred::Skipped);
        }
    }
}
