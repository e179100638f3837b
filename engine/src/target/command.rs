//! SCSI commands (RFC 7143 §11.3, §3.2.4): validation, admission by
//! CmdSN, immediate and unsolicited data, Data-Out (§11.7) against R2Ts
//! (§11.8), and the hand-off of a complete command to the SCSI layer.

use bytes::Bytes;
use tracing::{debug, warn};

use super::endpoint::Endpoint;
use super::session::{Admission, Deferred};
use super::task::{Burst, Collector, Stage, Task};
use super::{ConnId, Event, Execute, TaskRef};
use crate::pdu::{Header, Pdu, RESERVED_TAG, ScsiResponse, reject_reason};
use crate::scsi::{self, CommandResult};

impl Endpoint {
    /// A SCSI Command (§11.3): validate, admit by CmdSN, create the task,
    /// and move it along.
    pub(super) fn on_scsi_command(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        let Header::ScsiCommand(h) = &pdu.header else {
            return;
        };
        let session = self.sessions.get(&tsih).expect("caller checked");
        let params = &session.params;
        let bad = if h.itt == RESERVED_TAG {
            Some(reject_reason::INVALID_PDU_FIELD)
        } else if session.tasks.contains_key(&h.itt) {
            Some(reject_reason::TASK_IN_PROGRESS)
        } else if !pdu.data.is_empty()
            && (!h.write
                || !params.immediate_data
                || pdu.data.len() as u32
                    > params
                        .first_burst_length
                        .min(h.expected_data_transfer_length))
        {
            Some(reject_reason::PROTOCOL_ERROR)
        } else {
            None
        };
        if let Some(reason) = bad {
            self.reject(id, reason, &pdu);
            if !h.immediate {
                self.consume_cmd_sn(tsih, h.cmd_sn);
            }
            return;
        }
        let h = h.clone();
        let burst = self.burst(tsih);
        let max_transfer = self.config.max_transfer_length;
        let generation = self.next_generation;
        self.next_generation += 1;
        let session = self.sessions.get_mut(&tsih).expect("checked above");
        if !session.has_room() {
            let response = ScsiResponse {
                status: scsi::status::TASK_SET_FULL,
                itt: h.itt,
                ..ScsiResponse::default()
            };
            if !h.immediate {
                self.consume_cmd_sn(tsih, h.cmd_sn);
            }
            self.queue(id, Pdu::bare(Header::ScsiResponse(response)));
            return;
        }
        let admission = session.admit(h.cmd_sn, h.immediate);
        if admission == Admission::Ignore {
            debug!(%id, cmd_sn = h.cmd_sn, "command outside the CmdSN window ignored");
            return;
        }
        let too_long = h.expected_data_transfer_length > max_transfer;
        let collector = (h.write && h.expected_data_transfer_length > 0 && !too_long).then(|| {
            Collector::new(
                h.expected_data_transfer_length,
                pdu.data.clone(),
                h.final_,
                &burst,
            )
        });
        let task = Task {
            itt: h.itt,
            conn: id,
            generation,
            lun: h.lun,
            cdb: h.cdb.clone(),
            attr: h.attr,
            read: h.read,
            edtl: h.expected_data_transfer_length,
            bidi_read_length: h.bidi_read_length,
            delivered: admission == Admission::Now,
            stage: Stage::Collecting,
            collector,
        };
        session.tasks.insert(h.itt, task);
        if admission == Admission::Later {
            session.deferred.insert(h.cmd_sn, Deferred::Command(h.itt));
        }
        session.update_window();
        if too_long {
            let sense = scsi::sense::Sense::illegal_request(scsi::sense::Asc::INVALID_FIELD_IN_CDB);
            self.fail_task(tsih, h.itt, sense);
        } else {
            self.progress(tsih, h.itt);
        }
        if admission == Admission::Now && !h.immediate {
            self.drain_deferred(tsih);
        }
    }

    /// Data-Out (§11.7) for a task gathering data.
    pub(super) fn on_data_out(&mut self, tsih: u16, pdu: Pdu) {
        let Header::DataOut(h) = &pdu.header else {
            return;
        };
        let Some(task) = self
            .sessions
            .get_mut(&tsih)
            .and_then(|s| s.tasks.get_mut(&h.itt))
        else {
            debug!(itt = h.itt, "Data-Out for no task dropped");
            return;
        };
        let Some(collector) = task
            .collector
            .as_mut()
            .filter(|_| task.stage == Stage::Collecting)
        else {
            return;
        };
        match collector.accept(h, pdu.data.clone()) {
            Ok(()) => self.progress(tsih, h.itt),
            Err(e) => {
                warn!(
                    itt = h.itt,
                    ?e,
                    "Data-Out breaks the sequence rules: task ends"
                );
                self.fail_task(tsih, h.itt, e.sense());
            }
        }
    }

    /// Ends a task at once with CHECK CONDITION.
    pub(super) fn fail_task(&mut self, tsih: u16, itt: u32, sense: scsi::sense::Sense) {
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        let Some(task) = session.tasks.get(&itt) else {
            return;
        };
        if task.stage != Stage::Collecting {
            return;
        }
        let task = session.tasks.remove(&itt).expect("present");
        session.update_window();
        let result = CommandResult {
            status: scsi::status::CHECK_CONDITION,
            sense: Some(sense.to_fixed()),
            data_in: Bytes::new(),
            data_out_wanted: None,
        };
        let max_burst = session.params.max_burst_length;
        if let Some(conn) = self.conns.get_mut(&task.conn) {
            task.respond(result, None, conn.max_xmit, max_burst, |pdu| {
                conn.queue(pdu)
            });
            self.dirty.insert(task.conn);
        }
    }

    fn burst(&self, tsih: u16) -> Burst {
        let p = &self.sessions[&tsih].params;
        Burst {
            first_burst_length: p.first_burst_length,
            max_burst_length: p.max_burst_length.max(512),
            max_outstanding_r2t: p.max_outstanding_r2t.max(1),
            initial_r2t: p.initial_r2t,
        }
    }

    /// Moves a task along: R2Ts for missing data once its turn has come,
    /// then execution once the data is complete.
    pub(super) fn progress(&mut self, tsih: u16, itt: u32) {
        let burst = self.burst(tsih);
        loop {
            let Some(task) = self
                .sessions
                .get_mut(&tsih)
                .and_then(|s| s.tasks.get_mut(&itt))
            else {
                return;
            };
            if !task.delivered || task.stage != Stage::Collecting {
                return;
            }
            if !task.collector.as_ref().is_some_and(|c| c.wants_r2t(&burst)) {
                break;
            }
            let ttt = self.next_ttt();
            let task = self
                .sessions
                .get_mut(&tsih)
                .and_then(|s| s.tasks.get_mut(&itt))
                .expect("present");
            let (r2t_sn, offset, len) = task
                .collector
                .as_mut()
                .expect("checked")
                .issue_r2t(&burst, ttt);
            let pdu = task.r2t(ttt, r2t_sn, offset, len);
            let conn = task.conn;
            #[cfg(feature = "planted-bugs")]
            if crate::planted::active(
                self.config.planted,
                crate::planted::PlantedBug::R2tNeverSent,
            ) && r2t_sn > 0
                && offset + len == task.edtl
            {
                continue;
            }
            self.queue(conn, pdu);
        }
        let session = self.sessions.get_mut(&tsih).expect("present");
        let task = session.tasks.get_mut(&itt).expect("present");
        if !task.ready() {
            return;
        }
        task.stage = Stage::Executing;
        let data_out = task
            .collector
            .as_mut()
            .map(Collector::take_data)
            .unwrap_or_default();
        let execute = Execute {
            task: TaskRef {
                conn: task.conn,
                tsih,
                itt,
                generation: task.generation,
            },
            target: session.target.clone().expect("normal session"),
            lun: task.lun,
            nexus: session.nexus.clone().expect("normal session"),
            cdb: task.cdb.clone(),
            data_out,
            expected_in_len: task.expected_in_len(),
            attr: task.attr,
        };
        self.events.push_back(Event::Execute(execute));
    }
}
