//! The login phase as the endpoint runs it (RFC 7143 §6): the login state
//! machine's view of targets, ACLs and sessions, and the binding of a
//! completed login to a new, reinstated or existing session (§6.3.5).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::ConnId;
use super::config::EndpointConfig;
use super::connection::Phase;
use super::endpoint::Endpoint;
use super::session::Session;
use crate::login::status::LoginStatus;
use crate::login::target::{AuthPolicy, LoginDirectory, LoginOutcome, TargetLoginStep, TargetNode};
use crate::pdu::{Digests, Header, Isid, Pdu};
use crate::scsi::Nexus;

/// The endpoint as the login phase sees it.
struct Directory<'a> {
    config: &'a EndpointConfig,
    sessions: &'a BTreeMap<u16, Session>,
}

impl LoginDirectory for Directory<'_> {
    fn target(&self, name: &str) -> Option<TargetNode> {
        self.config.target(name).map(|t| t.node.clone())
    }

    fn discovery_auth(&self) -> AuthPolicy {
        self.config.discovery_auth.clone()
    }

    fn authorized(&self, target: &str, initiator: &str, peer: SocketAddr) -> bool {
        self.config
            .target(target)
            .is_some_and(|t| t.acl.iter().any(|a| a.allows(initiator, peer)))
    }

    fn session_exists(&self, tsih: u16, initiator: &str, isid: Isid) -> bool {
        self.sessions
            .get(&tsih)
            .is_some_and(|s| s.isid == isid && s.initiator_name.eq_ignore_ascii_case(initiator))
    }
}

impl Endpoint {
    /// A Login Request (§11.12) on a connection still logging in.
    pub(super) fn on_login(&mut self, id: ConnId, pdu: Pdu, _now: Instant) {
        let Header::LoginRequest(h) = &pdu.header else {
            return;
        };
        let conn = self.conns.get_mut(&id).expect("caller checked");
        conn.login_cmd_sn = h.cmd_sn;
        let Phase::Login(login) = &mut conn.phase else {
            return;
        };
        let dir = Directory {
            config: &self.config,
            sessions: &self.sessions,
        };
        let step = login.handle(h, &pdu.data, &dir, &mut self.rng);
        match step {
            TargetLoginStep::Continue(response) => self.queue(id, response),
            TargetLoginStep::Fail(response, status) => {
                info!(%id, %status, "login failed");
                self.queue(id, response);
                self.close_connection(id);
            }
            TargetLoginStep::Complete(mut response, outcome) => {
                match self.bind_session(id, &outcome) {
                    Ok(tsih) => {
                        if let Header::LoginResponse(r) = &mut response.header {
                            r.tsih = tsih;
                        }
                        let conn = self.conns.get_mut(&id).expect("present");
                        conn.phase = Phase::FullFeature;
                        conn.tsih = Some(tsih);
                        conn.cid = outcome.cid;
                        conn.login_deadline = None;
                        let negotiated = Digests {
                            header: outcome.connection.header_digest,
                            data: outcome.connection.data_digest,
                        };
                        conn.decoder.digests = negotiated;
                        conn.decoder.max_recv_data_segment_length =
                            outcome.connection.max_recv_data_segment_length;
                        conn.pending_digests = Some(negotiated);
                        conn.max_xmit = outcome.connection.max_xmit_data_segment_length;
                        conn.negotiator = Some(outcome.negotiator.clone());
                        info!(%id, tsih, initiator = %outcome.initiator_name, kind = ?outcome.session_type, "login complete");
                        self.queue(id, response);
                    }
                    Err(status) => {
                        info!(%id, %status, "login refused when joining the session");
                        if let Header::LoginResponse(r) = &mut response.header {
                            r.status_class = status.class();
                            r.status_detail = status.detail();
                            r.transit = false;
                            r.nsg = r.csg;
                        }
                        self.queue(id, Pdu::bare(response.header));
                        self.close_connection(id);
                    }
                }
            }
        }
    }

    /// Creates the session of a leading login (reinstating any session of
    /// the same initiator port, §6.3.5) or adds the connection to the
    /// session its TSIH names.
    fn bind_session(&mut self, id: ConnId, outcome: &LoginOutcome) -> Result<u16, LoginStatus> {
        let target: Option<Arc<str>> = outcome.target.as_ref().map(|t| Arc::from(t.name.as_str()));
        if outcome.tsih != 0 {
            let session = self
                .sessions
                .get_mut(&outcome.tsih)
                .ok_or(LoginStatus::SESSION_DOES_NOT_EXIST)?;
            let same_cid = session
                .conns
                .iter()
                .copied()
                .find(|c| self.conns.get(c).is_some_and(|c| c.cid == outcome.cid));
            if same_cid.is_none() && session.conns.len() >= session.params.max_connections as usize
            {
                return Err(LoginStatus::TOO_MANY_CONNECTIONS);
            }
            session.conns.push(id);
            if let Some(old) = same_cid {
                info!(
                    tsih = outcome.tsih,
                    cid = outcome.cid,
                    "connection reinstatement"
                );
                self.close_connection(old);
            }
            return Ok(outcome.tsih);
        }
        let old: Vec<u16> = self
            .sessions
            .values()
            .filter(|s| {
                s.isid == outcome.isid
                    && s.initiator_name
                        .eq_ignore_ascii_case(&outcome.initiator_name)
                    && s.target == target
            })
            .map(|s| s.tsih)
            .collect();
        for tsih in old {
            info!(tsih, "session reinstatement: the old session ends");
            self.end_session(tsih);
        }
        let tsih = self.allocate_tsih();
        let initiator_name: Arc<str> = Arc::from(outcome.initiator_name.as_str());
        let nexus = outcome.target.as_ref().map(|t| Nexus {
            initiator_name: initiator_name.clone(),
            isid: outcome.isid,
            target_name: Arc::from(t.name.as_str()),
            target_portal_group_tag: t.portal_group_tag,
        });
        let depth = self.config.queue_depth.max(1);
        let mut session = Session {
            tsih,
            isid: outcome.isid,
            initiator_name,
            target,
            kind: outcome.session_type,
            params: outcome.session.clone(),
            nexus,
            exp_cmd_sn: outcome.cmd_sn,
            max_cmd_sn: outcome.cmd_sn.wrapping_add(depth - 1),
            queue_depth: depth,
            deferred: BTreeMap::new(),
            tasks: BTreeMap::new(),
            conns: vec![id],
        };
        session.update_window();
        self.sessions.insert(tsih, session);
        Ok(tsih)
    }

    fn allocate_tsih(&mut self) -> u16 {
        loop {
            let tsih = self.next_tsih;
            self.next_tsih = self.next_tsih.wrapping_add(1).max(1);
            if !self.sessions.contains_key(&tsih) {
                return tsih;
            }
        }
    }
}
