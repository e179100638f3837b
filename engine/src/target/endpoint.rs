//! The target endpoint: connections, sessions, and the routing of every
//! PDU of the full-feature phase (RFC 7143 §4, §6, §7, §11).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info, warn};

use super::config::EndpointConfig;
use super::connection::{Connection, Phase};
use super::session::{Admission, Deferred, Session};
use super::task::{Burst, Collector, Stage, Task};
use super::{ConnId, Event, Execute, TaskRef, Transmit};
use crate::login::status::LoginStatus;
use crate::login::target::{
    AuthPolicy, LoginDirectory, LoginOutcome, TargetLogin, TargetLoginStep, TargetNode,
};
use crate::pdu::{
    AsyncMessage, DecodeError, Digests, Header, Isid, LogoutRequest, LogoutResponse, NopIn, NopOut,
    Pdu, RESERVED_TAG, Reject, ScsiResponse, Stage as LoginStage, Ttt, async_event, reject_reason,
};
use crate::scsi::{self, CommandResult, Nexus};
use crate::text::SessionType;

/// The sans-IO target: see the module documentation of [`super`].
pub struct Endpoint {
    pub(super) config: Arc<EndpointConfig>,
    pub(super) conns: BTreeMap<ConnId, Connection>,
    pub(super) sessions: BTreeMap<u16, Session>,
    events: VecDeque<Event>,
    /// Connections with new output since the last Transmit events.
    dirty: BTreeSet<ConnId>,
    rng: ChaCha8Rng,
    next_conn: u64,
    next_tsih: u16,
    next_ttt: u32,
    next_generation: u64,
    shutting_down: bool,
}

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
    /// An endpoint serving `config`, with every random choice drawn from
    /// `seed`.
    pub fn new(config: EndpointConfig, seed: u64) -> Endpoint {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let next_ttt = rng.next_u32() & 0x7fff_ffff;
        let next_tsih = (rng.next_u32() as u16).max(1);
        Endpoint {
            config: Arc::new(config),
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            events: VecDeque::new(),
            dirty: BTreeSet::new(),
            rng,
            next_conn: 1,
            next_tsih,
            next_ttt,
            next_generation: 1,
            shutting_down: false,
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// No connection is left (after [`Endpoint::shutdown`], the driver can
    /// stop).
    pub fn is_idle(&self) -> bool {
        self.conns.is_empty()
    }

    /// Whether this connection is finished and its socket can be closed
    /// once [`Endpoint::poll_transmit`] returns nothing more.
    pub fn is_closing(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_none_or(Connection::is_closing)
    }

    // ---- input -------------------------------------------------------

    /// A new TCP connection from `peer` to our `local` address.
    pub fn accept(&mut self, peer: SocketAddr, local: SocketAddr, now: Instant) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        #[allow(unused_mut)]
        let mut login = TargetLogin::new(self.config.preferences.clone(), peer);
        #[cfg(feature = "planted-bugs")]
        login.plant(self.config.planted);
        let stat_sn = self.rng.next_u32();
        let mut conn = Connection::new(peer, local, login, stat_sn, now);
        conn.login_deadline = Some(now + self.config.login_timeout);
        if self.shutting_down {
            conn.phase = Phase::Closing;
            self.events.push_back(Event::Close(id));
        }
        debug!(%id, %peer, "connection accepted");
        self.conns.insert(id, conn);
        id
    }

    /// Bytes received on a connection. Whole PDUs are taken off `buf`
    /// (their data segments split off without copying); a partial PDU is
    /// left for the next call.
    pub fn handle_input(&mut self, id: ConnId, buf: &mut BytesMut, now: Instant) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                buf.clear();
                break;
            };
            if conn.is_closing() {
                buf.clear();
                break;
            }
            conn.last_input = now;
            conn.ping_deadline = None;
            match conn.decoder.decode(buf) {
                Ok(None) => break,
                Ok(Some(pdu)) => self.handle_pdu(id, pdu, now),
                Err(err) => self.handle_decode_error(id, err),
            }
        }
        self.flush_dirty();
    }

    /// The connection's transport is gone (peer closed, reset, or the
    /// driver finished closing it). At ErrorRecoveryLevel 0 its tasks end,
    /// and so does the session when it was the last connection.
    pub fn handle_closed(&mut self, id: ConnId, _now: Instant) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        conn.closed = true;
        debug!(%id, "connection closed");
        if let Some(tsih) = conn.tsih {
            self.detach_connection(tsih, id);
        }
        self.flush_dirty();
    }

    /// Timers: login and logout deadlines, NOP-In pings of idle
    /// connections and the death of connections that do not answer.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if conn.is_closing() {
                continue;
            }
            let expired = |d: Option<Instant>| d.is_some_and(|d| now >= d);
            if !conn.is_full_feature() && expired(conn.login_deadline) {
                warn!(%id, "login timed out");
                self.close_connection(id);
                continue;
            }
            if expired(conn.logout_deadline) {
                warn!(%id, "no logout after the async logout request");
                self.close_connection(id);
                continue;
            }
            if !conn.is_full_feature() {
                continue;
            }
            if let Some(deadline) = conn.ping_deadline {
                if now >= deadline {
                    warn!(%id, "NOP-In ping unanswered: dropping the connection");
                    self.close_connection(id);
                }
                continue;
            }
            if let Some(interval) = self.config.nop_in_interval {
                if now >= conn.last_input + interval {
                    let ttt = self.next_ttt();
                    let conn = self.conns.get_mut(&id).expect("present");
                    conn.ping_deadline = Some(now + self.config.nop_in_timeout);
                    conn.queue(Pdu::bare(Header::NopIn(NopIn {
                        itt: RESERVED_TAG,
                        ttt,
                        ..NopIn::default()
                    })));
                    self.dirty.insert(id);
                }
            }
        }
        self.flush_dirty();
    }

    /// The SCSI layer's result for a task handed out by an
    /// [`Event::Execute`].
    pub fn complete(&mut self, task: TaskRef, result: CommandResult, _now: Instant) {
        let Some(session) = self.sessions.get_mut(&task.tsih) else {
            return;
        };
        if session
            .tasks
            .get(&task.itt)
            .is_none_or(|t| t.generation != task.generation)
        {
            return;
        }
        let t = session.tasks.remove(&task.itt).expect("checked above");
        session.update_window();
        let max_burst = session.params.max_burst_length;
        if t.stage == Stage::Aborted {
            return;
        }
        debug_assert_eq!(t.stage, Stage::Executing);
        if let Some(conn) = self.conns.get_mut(&t.conn) {
            let wanted_out = result.data_out_wanted;
            #[cfg(feature = "planted-bugs")]
            let gap =
                crate::planted::active(self.config.planted, crate::planted::PlantedBug::DataSnGap);
            #[allow(unused_mut)]
            t.respond(result, wanted_out, conn.max_xmit, max_burst, |mut pdu| {
                #[cfg(feature = "planted-bugs")]
                if let (true, Header::DataIn(h)) = (gap, &mut pdu.header) {
                    h.data_sn += u32::from(h.data_sn >= 2);
                }
                conn.queue(pdu)
            });
            self.dirty.insert(t.conn);
        }
        self.flush_dirty();
    }

    /// Stops serving: new connections are refused, connections still in
    /// login or discovery are closed, and every normal session is asked to
    /// log out (Async Message, §11.9.1) within the logout timeout.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let deadline = now + self.config.logout_timeout;
        let secs = self.config.logout_timeout.as_secs().min(u16::MAX as u64) as u16;
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let conn = &self.conns[&id];
            let normal = conn
                .tsih
                .and_then(|t| self.sessions.get(&t))
                .is_some_and(|s| s.kind == SessionType::Normal);
            if conn.is_full_feature() && normal {
                let conn = self.conns.get_mut(&id).expect("present");
                conn.logout_deadline = Some(deadline);
                conn.queue(Pdu::bare(Header::AsyncMessage(AsyncMessage {
                    async_event: async_event::LOGOUT_REQUEST,
                    parameter3: secs,
                    ..AsyncMessage::default()
                })));
                self.dirty.insert(id);
            } else {
                self.close_connection(id);
            }
        }
        self.flush_dirty();
    }

    // ---- output ------------------------------------------------------

    /// The next PDU to write on `id`, with its sequence numbers filled in
    /// (§4.2.2: StatSN, ExpCmdSN, MaxCmdSN are stamped at send time).
    #[must_use]
    pub fn poll_transmit(&mut self, id: ConnId) -> Option<Transmit> {
        let depth = self.config.queue_depth;
        let conn = self.conns.get_mut(&id)?;
        let mut pdu = conn.outbox.pop_front()?;
        let (exp, max) = match conn.tsih.and_then(|t| self.sessions.get(&t)) {
            Some(s) => (s.exp_cmd_sn, s.max_cmd_sn),
            None => (
                conn.login_cmd_sn,
                conn.login_cmd_sn.wrapping_add(depth.max(1) - 1),
            ),
        };
        let stat_sn = conn.stat_sn;
        #[allow(unused_mut)]
        let mut advances = Connection::advances_stat_sn(&pdu.header);
        #[cfg(feature = "planted-bugs")]
        if crate::planted::active(
            self.config.planted,
            crate::planted::PlantedBug::StatSnOffByOne,
        ) && matches!(&pdu.header, Header::DataIn(_))
        {
            advances = false;
        }
        if advances {
            conn.stat_sn = conn.stat_sn.wrapping_add(1);
        }
        stamp(&mut pdu.header, stat_sn, exp, max);
        let digests = conn.digests;
        if let Header::LoginResponse(h) = &pdu.header {
            if h.transit && h.nsg == LoginStage::FullFeaturePhase && h.status_class == 0 {
                if let Some(d) = conn.pending_digests.take() {
                    conn.digests = d;
                }
            }
        }
        Some(Transmit { pdu, digests })
    }

    /// The next thing the driver must do.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline among all connections' timers.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let interval = self.config.nop_in_interval;
        self.conns
            .values()
            .filter(|c| !c.is_closing())
            .filter_map(|c| {
                let ping = if c.is_full_feature() {
                    match (c.ping_deadline, interval) {
                        (Some(d), _) => Some(d),
                        (None, Some(i)) => Some(c.last_input + i),
                        (None, None) => None,
                    }
                } else {
                    c.login_deadline
                };
                [ping, c.logout_deadline].into_iter().flatten().min()
            })
            .min()
    }

    // ---- internals ----------------------------------------------------

    fn flush_dirty(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            self.events.push_back(Event::Transmit(id));
        }
    }

    pub(super) fn next_ttt(&mut self) -> Ttt {
        let ttt = self.next_ttt;
        self.next_ttt = self.next_ttt.wrapping_add(1);
        if self.next_ttt == RESERVED_TAG {
            self.next_ttt = 0;
        }
        ttt
    }

    pub(super) fn queue(&mut self, id: ConnId, pdu: Pdu) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.queue(pdu);
            self.dirty.insert(id);
        }
    }

    pub(super) fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Rejects a PDU (§11.17), quoting its BHS.
    pub(super) fn reject(&mut self, id: ConnId, reason: u8, rejected: &Pdu) {
        let bhs = rejected.header.to_bhs(rejected.data.len() as u32);
        self.reject_bhs(id, reason, &bhs);
    }

    fn reject_bhs(&mut self, id: ConnId, reason: u8, bhs: &[u8]) {
        debug!(%id, reason, "reject");
        let pdu = Pdu::new(
            Header::Reject(Reject {
                reason,
                ..Reject::default()
            }),
            Bytes::copy_from_slice(bhs),
        );
        self.queue(id, pdu);
    }

    /// Ends a connection from this side: nothing more is read, queued PDUs
    /// are still written, then the driver closes the socket.
    pub(super) fn close_connection(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if matches!(conn.phase, Phase::Closing) {
            return;
        }
        conn.phase = Phase::Closing;
        let tsih = conn.tsih;
        self.events.push_back(Event::Close(id));
        if let Some(tsih) = tsih {
            self.detach_connection(tsih, id);
        }
    }

    /// Removes a connection from its session; at ErrorRecoveryLevel 0 its
    /// tasks are terminated, and a session left without connections ends.
    fn detach_connection(&mut self, tsih: u16, id: ConnId) {
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        session.conns.retain(|c| *c != id);
        let orphans: Vec<_> = session
            .tasks
            .values()
            .filter(|t| t.conn == id)
            .map(|t| (t.itt, t.generation))
            .collect();
        for (itt, generation) in orphans {
            self.abort_task(tsih, itt, generation);
        }
        if self.sessions.get(&tsih).is_some_and(|s| s.conns.is_empty()) {
            self.end_session(tsih);
        }
    }

    /// Ends a session: its connections close, its tasks are dropped and
    /// its I_T nexus is lost.
    pub(super) fn end_session(&mut self, tsih: u16) {
        let Some(session) = self.sessions.remove(&tsih) else {
            return;
        };
        info!(tsih, initiator = %session.initiator_name, "session ended");
        for id in &session.conns {
            if let Some(conn) = self.conns.get_mut(id) {
                conn.tsih = None;
                // PDUs still queued (a Logout Response) carry the session's
                // last ExpCmdSN, not the login's (§4.2.2.1: it never goes
                // back). Found by the simulator's wire checker.
                conn.login_cmd_sn = session.exp_cmd_sn;
                if !matches!(conn.phase, Phase::Closing) {
                    conn.phase = Phase::Closing;
                    self.events.push_back(Event::Close(*id));
                }
            }
        }
        if let (Some(target), Some(nexus)) = (session.target, session.nexus) {
            self.events.push_back(Event::NexusLost { target, nexus });
        }
    }

    /// Aborts one task: dropped now if still collecting data, or marked so
    /// that its result is dropped when it comes back.
    pub(super) fn abort_task(&mut self, tsih: u16, itt: u32, generation: u64) {
        let Some(session) = self.sessions.get_mut(&tsih) else {
            return;
        };
        let Some(task) = session.tasks.get_mut(&itt) else {
            return;
        };
        if task.generation != generation {
            return;
        }
        if task.stage == Stage::Executing {
            task.stage = Stage::Aborted;
            return;
        }
        if task.stage == Stage::Collecting {
            session.tasks.remove(&itt);
            session.update_window();
        }
    }

    fn handle_decode_error(&mut self, id: ConnId, err: DecodeError) {
        let full_feature = self.conns.get(&id).is_some_and(Connection::is_full_feature);
        warn!(%id, %err, "undecodable PDU");
        if full_feature {
            let reason = match &err {
                DecodeError::DataDigest { .. } => reject_reason::DATA_DIGEST_ERROR,
                DecodeError::UnknownOpcode { .. } => reject_reason::COMMAND_NOT_SUPPORTED,
                DecodeError::InvalidField { .. } => reject_reason::INVALID_PDU_FIELD,
                _ => reject_reason::PROTOCOL_ERROR,
            };
            if let Some(bhs) = err.bhs() {
                self.reject_bhs(id, reason, bhs);
            }
            if let DecodeError::DataDigest { header, .. } = &err {
                self.data_digest_error(id, header);
            }
        }
        if !full_feature || !err.is_recoverable() {
            self.close_connection(id);
        }
    }

    /// A PDU whose data digest failed was rejected; at ErrorRecoveryLevel
    /// 0 a command loses its CmdSN and a Data-Out ends its task (§7.8).
    fn data_digest_error(&mut self, id: ConnId, header: &Header) {
        let Some(tsih) = self.conns.get(&id).and_then(|c| c.tsih) else {
            return;
        };
        match header {
            Header::ScsiCommand(h) if !h.immediate => self.consume_cmd_sn(tsih, h.cmd_sn),
            Header::DataOut(h) => {
                let sense = scsi::sense::Sense::new(
                    scsi::sense::key::ABORTED_COMMAND,
                    scsi::sense::Asc(0x47, 0x05),
                );
                self.fail_task(tsih, h.itt, sense);
            }
            _ => {}
        }
    }

    /// Marks a CmdSN as used by a request that will never be processed.
    fn consume_cmd_sn(&mut self, tsih: u16, cmd_sn: u32) {
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

    fn handle_pdu(&mut self, id: ConnId, pdu: Pdu, now: Instant) {
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

    /// A SCSI Command (§11.3): validate, admit by CmdSN, create the task,
    /// and move it along.
    fn on_scsi_command(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
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
    fn on_data_out(&mut self, tsih: u16, pdu: Pdu) {
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
    fn fail_task(&mut self, tsih: u16, itt: u32, sense: scsi::sense::Sense) {
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

    /// A Login Request (§11.12) on a connection still logging in.
    fn on_login(&mut self, id: ConnId, pdu: Pdu, _now: Instant) {
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

/// Fills StatSN, ExpCmdSN and MaxCmdSN into a target PDU (§4.2.2).
fn stamp(header: &mut Header, stat_sn: u32, exp: u32, max: u32) {
    macro_rules! all {
        ($h:expr) => {{
            $h.stat_sn = stat_sn;
            $h.exp_cmd_sn = exp;
            $h.max_cmd_sn = max;
        }};
    }
    match header {
        Header::NopIn(h) => all!(h),
        Header::ScsiResponse(h) => all!(h),
        Header::TaskMgmtResponse(h) => all!(h),
        Header::LoginResponse(h) => all!(h),
        Header::TextResponse(h) => all!(h),
        Header::LogoutResponse(h) => all!(h),
        Header::R2t(h) => all!(h),
        Header::AsyncMessage(h) => all!(h),
        Header::Reject(h) => all!(h),
        Header::DataIn(h) => {
            h.stat_sn = if h.status_present { stat_sn } else { 0 };
            h.exp_cmd_sn = exp;
            h.max_cmd_sn = max;
        }
        _ => {}
    }
}
