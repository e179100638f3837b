//! The full-feature phase's requests (RFC 7143 §4.2.2.1, §3.2.2.1):
//! dispatch by opcode, delivery in CmdSN order with immediate requests
//! first, and the NOP-Out (§11.18) and Logout (§11.14) requests.

use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::connection::Phase;
use super::endpoint::Endpoint;
use super::session::{Admission, Deferred, Session};
use super::{ConnId, Event};
use crate::pdu::{
    Header, LogoutRequest, LogoutResponse, NopIn, NopOut, Pdu, RESERVED_TAG, reject_reason,
};
use crate::text::SessionType;

impl Endpoint {
    /// Marks a CmdSN as used by a request that will never be processed.
    pub(super) fn consume_cmd_sn(&mut self, tsih: u16, cmd_sn: u32) {
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        match session.admit(cmd_sn, false) {
            Admission::Now => self.drain_deferred(tsih),
            Admission::Later => {
                session.deferred.insert(cmd_sn, Deferred::Skipped);
            }
            Admission::Ignore => {}
        }
    }

    pub(super) fn handle_pdu(&mut self, id: ConnId, pdu: Pdu, now: Instant) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        match conn.phase {
            Phase::Login(_) => match pdu.header {
                Header::LoginRequest(_) => self.on_login(id, pdu, now),
                _ => {
                    warn!(%id, opcode = pdu.opcode().name(), "non-login PDU during login");
                    self.close_connection(id);
                }
            },
            Phase::FullFeature => self.on_full_feature(id, pdu),
            Phase::Closing => {}
        }
    }

    fn on_full_feature(&mut self, id: ConnId, pdu: Pdu) {
        let Some(tsih) = self.conns.get(&id).and_then(|c| c.tsih) else {
            return;
        };
        let Some(kind) = self.sessions.get(&tsih).map(|s| s.kind) else {
            return;
        };
        let discovery = kind == SessionType::Discovery;
        match &pdu.header {
            Header::ScsiCommand(_) if discovery => self.reject_request(id, tsih, pdu),
            Header::ScsiCommand(_) => self.on_scsi_command(id, tsih, pdu),
            Header::DataOut(_) if discovery => self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu),
            Header::DataOut(_) => self.on_data_out(tsih, pdu),
            Header::NopOut(h) if h.itt == RESERVED_TAG => {}
            Header::TaskMgmtRequest(_) if discovery => self.reject_request(id, tsih, pdu),
            Header::NopOut(_)
            | Header::TextRequest(_)
            | Header::TaskMgmtRequest(_)
            | Header::LogoutRequest(_) => self.on_request(id, tsih, pdu),
            Header::SnackRequest(_) => self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu),
            _ => self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu),
        }
    }

    /// Rejects a request that is not allowed here, consuming its CmdSN.
    fn reject_request(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu);
        if let Some((cmd_sn, false)) = cmd_sn_of(&pdu.header) {
            self.consume_cmd_sn(tsih, cmd_sn);
        }
    }

    /// A non-data request: processed in CmdSN order (§4.2.2.1).
    fn on_request(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        let Some((cmd_sn, immediate)) = cmd_sn_of(&pdu.header) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        match session.admit(cmd_sn, immediate) {
            Admission::Now => {
                self.process_request(id, tsih, pdu);
                if !immediate {
                    self.drain_deferred(tsih);
                }
            }
            Admission::Later => {
                session.deferred.insert(cmd_sn, Deferred::Request(id, pdu));
                session.update_window();
            }
            Admission::Ignore => debug!(%id, cmd_sn, "request outside the CmdSN window ignored"),
        }
    }

    /// Processes, in order, the deferred requests whose turn has come.
    pub(super) fn drain_deferred(&mut self, tsih: u16) {
        while let Some(next) = self
            .sessions
            .get_mut(&tsih)
            .and_then(Session::next_deferred)
        {
            match next {
                Deferred::Command(itt) => {
                    if let Some(task) = self
                        .sessions
                        .get_mut(&tsih)
                        .and_then(|s| s.tasks.get_mut(&itt))
                    {
                        task.delivered = true;
                    }
                    self.progress(tsih, itt);
                }
                Deferred::Request(id, pdu) => {
                    if self.conns.get(&id).is_some_and(|c| !c.is_closing()) {
                        self.process_request(id, tsih, pdu);
                    }
                }
                Deferred::Skipped => {}
            }
        }
        if let Some(s) = self.sessions.get_mut(&tsih) {
            s.update_window();
        }
    }

    fn process_request(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        match &pdu.header {
            Header::NopOut(h) => self.on_nop_out(id, h.clone(), pdu.data),
            Header::TextRequest(_) => self.on_text(id, tsih, pdu),
            Header::TaskMgmtRequest(_) => self.on_tmf(id, tsih, pdu),
            Header::LogoutRequest(h) => self.on_logout(id, tsih, h.clone()),
            _ => {}
        }
    }

    /// NOP-Out with a valid ITT is a ping: echo it (§11.18, §11.19).
    fn on_nop_out(&mut self, id: ConnId, h: NopOut, data: Bytes) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let echo = data.slice(..data.len().min(conn.max_xmit as usize));
        let reply = NopIn {
            lun: h.lun,
            itt: h.itt,
            ttt: RESERVED_TAG,
            ..NopIn::default()
        };
        self.queue(id, Pdu::new(Header::NopIn(reply), echo));
    }

    /// Logout (§11.14): close the session, or one connection.
    fn on_logout(&mut self, id: ConnId, tsih: u16, h: LogoutRequest) {
        let Some(session) = self.sessions.get(&tsih) else {
            return;
        };
        let params = &session.params;
        let mut response = LogoutResponse {
            response: 0,
            itt: h.itt,
            time2wait: params.default_time2wait,
            time2retain: if params.error_recovery_level > 0 {
                params.default_time2retain
            } else {
                0
            },
            ..LogoutResponse::default()
        };
        let mut close: Vec<ConnId> = Vec::new();
        let mut ends_session = false;
        match h.reason {
            0 => {
                close = session.conns.clone();
                ends_session = true;
            }
            1 => match session
                .conns
                .iter()
                .find(|c| self.conns.get(c).is_some_and(|c| c.cid == h.cid))
            {
                Some(&target_conn) => {
                    close.push(target_conn);
                    ends_session = session.conns.len() == 1;
                }
                None => response.response = 1,
            },
            2 => response.response = 2,
            _ => {
                let bhs = Header::LogoutRequest(h).to_bhs(0);
                self.reject_bhs(id, reject_reason::INVALID_PDU_FIELD, &bhs);
                return;
            }
        }
        info!(%id, tsih, reason = h.reason, "logout");
        self.queue(id, Pdu::bare(Header::LogoutResponse(response)));
        if ends_session {
            // The response goes out on this connection before it closes.
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.phase = Phase::Closing;
                self.events.push_back(Event::Close(id));
            }
            self.end_session(tsih);
        } else {
            for c in close {
                self.close_connection(c);
            }
        }
    }
}

/// The CmdSN and I bit of a request PDU.
fn cmd_sn_of(header: &Header) -> Option<(u32, bool)> {
    match header {
        Header::ScsiCommand(h) => Some((h.cmd_sn, h.immediate)),
        Header::NopOut(h) => Some((h.cmd_sn, h.immediate)),
        Header::TextRequest(h) => Some((h.cmd_sn, h.immediate)),
        Header::TaskMgmtRequest(h) => Some((h.cmd_sn, h.immediate)),
        Header::LogoutRequest(h) => Some((h.cmd_sn, h.immediate)),
        _ => None,
    }
}
