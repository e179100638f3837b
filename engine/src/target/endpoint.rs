//! The target endpoint: its state, the sans-IO interface the drivers call
//! (input, timeouts, completions, output), and the ends of connections and
//! sessions (RFC 7143 §4, §7). Logins are in `login_phase`, requests in
//! CmdSN order in `requests`, SCSI commands and their data in `command`,
//! task management in `tmf`, text requests in `text`.

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
use super::session::Session;
use super::task::Stage;
use super::{ConnId, Event, TaskRef, Transmit};
use crate::login::target::TargetLogin;
use crate::pdu::{
    AsyncMessage, DecodeError, Header, NopIn, Pdu, RESERVED_TAG, Reject, Stage as LoginStage, Ttt,
    async_event, reject_reason,
};
use crate::scsi::{self, CommandResult};
use crate::text::SessionType;

/// The sans-IO target: see the module documentation of [`super`].
pub struct Endpoint {
    pub(super) config: Arc<EndpointConfig>,
    pub(super) conns: BTreeMap<ConnId, Connection>,
    pub(super) sessions: BTreeMap<u16, Session>,
    pub(super) events: VecDeque<Event>,
    /// Connections with new output since the last Transmit events.
    pub(super) dirty: BTreeSet<ConnId>,
    pub(super) rng: ChaCha8Rng,
    next_conn: u64,
    pub(super) next_tsih: u16,
    next_ttt: u32,
    pub(super) next_generation: u64,
    shutting_down: bool,
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
        let mut advances = pdu.header.advances_stat_sn();
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

    pub(super) fn reject_bhs(&mut self, id: ConnId, reason: u8, bhs: &[u8]) {
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
