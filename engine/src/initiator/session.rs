//! The initiator session: login, the full-feature phase and recovery at
//! ErrorRecoveryLevel 0 (RFC 7143 §4.2, §6.3, §7, §11).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info, warn};

use super::config::SessionConfig;
use super::error::InitiatorError;
use super::sense::{SenseInfo, sense_of_response};
use super::task::{Kind, MAX_TEXT_RESPONSE, ScsiTask, Task, TextTask, TmfTask};
use super::{Command, Completion, ConnectionId, Event, TaskId, Transmit};
use crate::login::{
    InitiatorConfig, InitiatorLogin, InitiatorLoginStep, InitiatorOutcome, LoginError,
};
use crate::pdu::{
    AsyncMessage, BHS_LEN, DataIn, Decoder, Digests, Header, Isid, Itt, LogoutRequest,
    LogoutResponse, Lun, NopIn, NopOut, Opcode, Pdu, R2t, RESERVED_TAG, Reject, ScsiResponse,
    TaskMgmtRequest, TaskMgmtResponse, TextRequest, TextResponse, TmfFunction, async_event,
    reject_reason, tmf_response,
};
use crate::serial;
use crate::text::discovery::{TargetAddress, parse_send_targets};
use crate::text::{ConnectionParams, SessionParams, SessionType, decode_pairs, encode_pairs};

/// Where the session is, as its user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the driver to open the TCP connection.
    Connecting,
    /// The login phase (§6.3).
    LoggingIn,
    /// The full-feature phase.
    FullFeature,
    /// Between connections after a loss, waiting to reconnect.
    Recovering,
    /// Logged out, or failed for good.
    Closed,
}

#[derive(Debug)]
enum Phase {
    Connecting {
        conn: ConnectionId,
        addr: SocketAddr,
        deadline: Instant,
    },
    Login {
        conn: ConnectionId,
        addr: SocketAddr,
        deadline: Instant,
        login: Box<InitiatorLogin>,
    },
    Full {
        conn: ConnectionId,
        addr: SocketAddr,
    },
    Backoff {
        until: Instant,
    },
    Closed,
}

/// The target asked us to log out (§11.9.1 AsyncEvent 1).
#[derive(Debug, Clone, Copy)]
struct AsyncLogout {
    /// Send the Logout by then, outstanding commands or not.
    deadline: Instant,
    /// The Logout sent, once it is.
    itt: Option<Itt>,
}

/// The sans-IO initiator session: see the module documentation of
/// [`super`].
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    rng: ChaCha8Rng,
    isid: Isid,
    phase: Phase,
    /// Where to connect after a loss (a permanent redirection moves it).
    portal: SocketAddr,
    next_conn: u64,
    decoder: Decoder,
    digests: Digests,
    max_xmit: u32,
    params: SessionParams,
    conn_params: ConnectionParams,
    tsih: u16,
    cmd_sn: u32,
    exp_cmd_sn: u32,
    max_cmd_sn: u32,
    exp_stat_sn: u32,
    tasks: BTreeMap<Itt, Task>,
    /// Command timeouts of the commands in flight.
    deadlines: BTreeSet<(Instant, Itt)>,
    /// Non-immediate requests not yet sent, in submission order.
    waiting: BTreeMap<u64, Itt>,
    /// Immediate requests not yet sent, in submission order.
    immediate: BTreeMap<u64, Itt>,
    next_seq: u64,
    next_itt: u32,
    outbox: VecDeque<Pdu>,
    events: VecDeque<Event>,
    last_input: Instant,
    ping_itt: Option<Itt>,
    ping_deadline: Option<Instant>,
    /// When the connection was lost: the replacement timeout runs from here.
    lost_at: Option<Instant>,
    /// Reconnection attempts since the loss.
    attempt: u32,
    /// Not before this may the next connection be opened (Time2Wait).
    not_before: Option<Instant>,
    redirects: u32,
    last_failure: Option<String>,
    /// The user's logout request.
    logout: Option<Itt>,
    logout_deadline: Option<Instant>,
    async_logout: Option<AsyncLogout>,
    ever_logged_in: bool,
    reinstatements: u64,
    /// Set once the session is over for good.
    closed_reason: Option<InitiatorError>,
}

impl Session {
    /// A session that is about to connect: the first event is
    /// [`Event::Connect`]. Every random choice is drawn from `seed`.
    pub fn new(config: SessionConfig, seed: u64, now: Instant) -> Session {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let isid = config.isid.unwrap_or_else(|| random_isid(&mut rng));
        let cmd_sn = rng.next_u32();
        let next_itt = rng.next_u32() & 0xffff;
        let portal = config.portal;
        let mut session = Session {
            config,
            rng,
            isid,
            phase: Phase::Closed,
            portal,
            next_conn: 1,
            decoder: Decoder::default(),
            digests: Digests::default(),
            max_xmit: 8192,
            params: SessionParams::default(),
            conn_params: ConnectionParams::default(),
            tsih: 0,
            cmd_sn,
            exp_cmd_sn: cmd_sn,
            max_cmd_sn: cmd_sn,
            exp_stat_sn: 0,
            tasks: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            waiting: BTreeMap::new(),
            immediate: BTreeMap::new(),
            next_seq: 0,
            next_itt,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            last_input: now,
            ping_itt: None,
            ping_deadline: None,
            lost_at: None,
            attempt: 0,
            not_before: None,
            redirects: 0,
            last_failure: None,
            logout: None,
            logout_deadline: None,
            async_logout: None,
            ever_logged_in: false,
            reinstatements: 0,
            closed_reason: None,
        };
        session.connect(portal, now);
        session
    }

    // ---- getters ------------------------------------------------------

    pub fn state(&self) -> State {
        if self.closed_reason.is_some() {
            return State::Closed;
        }
        match self.phase {
            Phase::Connecting { .. } => State::Connecting,
            Phase::Login { .. } => State::LoggingIn,
            Phase::Full { .. } => State::FullFeature,
            Phase::Backoff { .. } => State::Recovering,
            Phase::Closed => State::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed_reason.is_some()
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn isid(&self) -> Isid {
        self.isid
    }

    /// The TSIH of the current (or last) session instance.
    pub fn tsih(&self) -> u16 {
        self.tsih
    }

    /// What the last login negotiated (the RFC's defaults before one).
    pub fn negotiated(&self) -> (&SessionParams, &ConnectionParams) {
        (&self.params, &self.conn_params)
    }

    /// How many times the session was reinstated after a lost connection.
    pub fn reinstatements(&self) -> u64 {
        self.reinstatements
    }

    /// Requests submitted and not yet completed.
    pub fn outstanding(&self) -> usize {
        self.tasks.len()
    }

    /// The next CmdSN, ExpCmdSN and MaxCmdSN (§4.2.2.1).
    pub fn command_window(&self) -> (u32, u32, u32) {
        (self.cmd_sn, self.exp_cmd_sn, self.max_cmd_sn)
    }

    /// The connection in use, if any.
    pub fn connection(&self) -> Option<ConnectionId> {
        match self.phase {
            Phase::Connecting { conn, .. }
            | Phase::Login { conn, .. }
            | Phase::Full { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The address of the connection in use (after redirections).
    pub fn peer(&self) -> Option<SocketAddr> {
        match self.phase {
            Phase::Connecting { addr, .. }
            | Phase::Login { addr, .. }
            | Phase::Full { addr, .. } => Some(addr),
            _ => None,
        }
    }

    /// Whether PDUs wait to be written on `conn`.
    pub fn wants_write(&self, conn: ConnectionId) -> bool {
        !self.outbox.is_empty() && self.is_current(conn)
    }

    // ---- input --------------------------------------------------------

    /// The TCP connection asked for by [`Event::Connect`] is open: the
    /// login starts.
    pub fn handle_connected(&mut self, conn: ConnectionId, now: Instant) {
        let Phase::Connecting {
            conn: c,
            addr,
            deadline,
        } = self.phase
        else {
            return;
        };
        if c != conn {
            return;
        }
        self.decoder = Decoder::default();
        self.digests = Digests::default();
        self.outbox.clear();
        let itt = self.alloc_itt();
        let cfg = InitiatorConfig {
            initiator_name: self.config.initiator_name.clone(),
            initiator_alias: self.config.initiator_alias.clone(),
            isid: self.isid,
            tsih: 0,
            cid: 0,
            itt,
            session_type: self.config.session_type,
            target_name: (self.config.session_type == SessionType::Normal)
                .then(|| self.config.target_name.clone()),
            chap: self.config.chap.clone(),
            mutual_chap: self.config.mutual.clone(),
            prefs: self.config.preferences.clone(),
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            extra_keys: Vec::new(),
        };
        let mut login = Box::new(InitiatorLogin::new(cfg));
        self.outbox.push_back(login.start());
        debug!(%conn, %addr, isid = %self.isid, "connected: login");
        self.last_input = now;
        self.phase = Phase::Login {
            conn,
            addr,
            deadline,
            login,
        };
    }

    /// The TCP connection could not be opened.
    pub fn handle_connect_failed(
        &mut self,
        conn: ConnectionId,
        kind: std::io::ErrorKind,
        now: Instant,
    ) {
        let Phase::Connecting { conn: c, addr, .. } = self.phase else {
            return;
        };
        if c != conn {
            return;
        }
        debug!(%conn, %addr, ?kind, "connect failed");
        self.phase = Phase::Closed;
        self.attempt_failed(InitiatorError::Connect { addr, kind }, now);
    }

    /// Bytes received on `conn`. Whole PDUs are taken off `buf` (their data
    /// segments split off without copying); a partial PDU is left for the
    /// next call.
    pub fn handle_input(&mut self, conn: ConnectionId, buf: &mut BytesMut, now: Instant) {
        if !self.is_current(conn) || matches!(self.phase, Phase::Connecting { .. }) {
            buf.clear();
            return;
        }
        self.last_input = now;
        self.ping_deadline = None;
        while self.is_current(conn) {
            match self.decoder.decode(buf) {
                Ok(None) => break,
                Ok(Some(pdu)) => self.handle_pdu(pdu, now),
                Err(e) => {
                    self.connection_lost(now, format!("undecodable PDU: {e}"));
                    break;
                }
            }
        }
        if !self.is_current(conn) {
            buf.clear();
        }
        self.flush(now);
    }

    /// The transport of `conn` is gone (closed by the peer, reset, or a
    /// read error).
    pub fn handle_closed(&mut self, conn: ConnectionId, now: Instant) {
        if !self.is_current(conn) {
            return;
        }
        match self.phase {
            Phase::Connecting { .. } => {
                self.handle_connect_failed(conn, std::io::ErrorKind::ConnectionReset, now)
            }
            Phase::Login { addr, .. } => {
                self.abandon_connection();
                let error = InitiatorError::Login {
                    addr,
                    error: LoginError::Protocol("the target closed the connection during login"),
                };
                self.attempt_failed(error, now);
            }
            _ => self.connection_lost(now, "connection closed by the target".into()),
        }
    }

    /// Fires the timers due at `now`: login and logout deadlines, NOP-Out
    /// keepalive pings and their timeout, reconnection, replacement timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(lost) = self.lost_at {
            if !matches!(self.phase, Phase::Full { .. } | Phase::Closed)
                && now >= lost + self.config.replacement_timeout
            {
                self.give_up();
                return;
            }
        }
        match self.phase {
            Phase::Closed => {}
            Phase::Connecting { addr, deadline, .. } | Phase::Login { addr, deadline, .. } => {
                if now >= deadline {
                    self.abandon_connection();
                    let timeout = self.config.login_timeout;
                    self.attempt_failed(InitiatorError::LoginTimeout { addr, timeout }, now);
                }
            }
            Phase::Backoff { until } => {
                if now >= until {
                    let portal = self.portal;
                    self.connect(portal, now);
                }
            }
            Phase::Full { .. } => self.full_feature_timers(now),
        }
    }

    fn full_feature_timers(&mut self, now: Instant) {
        while let Some(&(at, itt)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.command_timed_out(itt, now);
        }
        if self.logout_deadline.is_some_and(|d| now >= d) {
            warn!("no Logout Response in time: closing");
            self.logout_deadline = None;
            if self.async_logout.is_some_and(|a| a.itt.is_some()) {
                self.connection_lost(now, "no Logout Response".into());
            } else {
                self.finish_logout();
            }
            return;
        }
        if let Some(deadline) = self.ping_deadline {
            #[cfg(feature = "planted-bugs")]
            if crate::planted::active(
                self.config.planted,
                crate::planted::PlantedBug::NopTimeoutIgnored,
            ) {
                if now >= deadline {
                    self.ping_deadline = None;
                }
                return;
            }
            if now >= deadline {
                self.connection_lost(now, "NOP-Out ping unanswered".into());
            }
            return;
        }
        if let Some(interval) = self.config.nop_interval {
            if now >= self.last_input + interval {
                self.ping(now);
            }
        }
        self.flush(now);
    }

    // ---- mutators -----------------------------------------------------

    /// Submits a SCSI command. It is sent when the CmdSN window allows
    /// (§4.2.2.1) and retried on a reinstated session if the connection is
    /// lost first; its result comes as [`Event::Completed`].
    pub fn command(&mut self, cmd: Command, now: Instant) -> TaskId {
        let itt = self.alloc_itt();
        if let Some(error) = self.refuse(&cmd) {
            self.completed(itt, Err(error));
            return TaskId(itt);
        }
        let kind = Kind::Scsi(Box::new(ScsiTask::new(
            Lun::from_index(cmd.lun),
            cmd.cdb,
            cmd.data_out,
            cmd.expected_in,
            cmd.attr,
        )));
        self.enqueue(itt, kind, false);
        self.flush(now);
        TaskId(itt)
    }

    /// Submits a task management function (§11.5), sent as an immediate
    /// request. `referenced` names the task of ABORT TASK.
    pub fn task_management(
        &mut self,
        lun: u16,
        function: TmfFunction,
        referenced: Option<TaskId>,
        now: Instant,
    ) -> TaskId {
        let itt = self.alloc_itt();
        if let Some(error) = self.refuse_any() {
            self.completed(itt, Err(error));
            return TaskId(itt);
        }
        if lun >= 0x4000 {
            self.completed(
                itt,
                Err(InitiatorError::InvalidRequest(format!(
                    "LUN {lun} out of range"
                ))),
            );
            return TaskId(itt);
        }
        let kind = Kind::Tmf(TmfTask {
            lun: Lun::from_index(lun),
            function,
            referenced: referenced.map(|t| t.0),
            affected: Vec::new(),
            internal: false,
        });
        self.enqueue(itt, kind, true);
        self.flush(now);
        TaskId(itt)
    }

    /// Asks for `SendTargets=All` (§13.3, Appendix C); the records come as
    /// [`Completion::SendTargets`].
    pub fn send_targets(&mut self, now: Instant) -> TaskId {
        let itt = self.alloc_itt();
        if let Some(error) = self.refuse_any() {
            self.completed(itt, Err(error));
            return TaskId(itt);
        }
        let value = match self.config.session_type {
            SessionType::Discovery => "All",
            SessionType::Normal => "",
        };
        let kind = Kind::Text(TextTask {
            request: encode_pairs(&[("SendTargets", value)]),
            received: Vec::new(),
        });
        self.enqueue(itt, kind, true);
        self.flush(now);
        TaskId(itt)
    }

    /// Logs the session out (§11.14, reason "close the session") once every
    /// outstanding request has completed; new requests are refused from now.
    pub fn logout(&mut self, now: Instant) -> TaskId {
        let itt = self.alloc_itt();
        if self.is_closed() {
            self.completed(itt, Ok(Completion::Logout));
            return TaskId(itt);
        }
        if self.logout.is_some() {
            self.completed(itt, Err(InitiatorError::Closed));
            return TaskId(itt);
        }
        self.logout = Some(itt);
        self.insert_task(itt, Kind::Logout);
        if self.tasks.len() == 1 && !matches!(self.phase, Phase::Full { .. }) {
            self.finish_logout();
        }
        self.flush(now);
        TaskId(itt)
    }

    /// Ends the session at once, without a logout (e.g. its owner went
    /// away): every outstanding request fails with
    /// [`InitiatorError::Closed`].
    pub fn abort(&mut self) {
        self.close_with(Err(InitiatorError::Closed));
    }

    // ---- output -------------------------------------------------------

    /// The next PDU to write on `conn`, with ExpStatSN filled in (§4.2.2.2:
    /// stamped at send time).
    #[must_use]
    pub fn poll_transmit(&mut self, conn: ConnectionId) -> Option<Transmit> {
        if !self.is_current(conn) || matches!(self.phase, Phase::Connecting { .. }) {
            return None;
        }
        let mut pdu = self.outbox.pop_front()?;
        let exp = self.exp_stat_sn;
        match &mut pdu.header {
            Header::NopOut(h) => h.exp_stat_sn = exp,
            Header::ScsiCommand(h) => h.exp_stat_sn = exp,
            Header::TaskMgmtRequest(h) => h.exp_stat_sn = exp,
            Header::TextRequest(h) => h.exp_stat_sn = exp,
            Header::DataOut(h) => h.exp_stat_sn = exp,
            Header::LogoutRequest(h) => h.exp_stat_sn = exp,
            Header::SnackRequest(h) => h.exp_stat_sn = exp,
            _ => {}
        }
        Some(Transmit {
            pdu,
            digests: self.digests,
        })
    }

    /// The next thing the driver must do or the user must know.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline: when [`Session::handle_timeout`] is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let replacement = self.lost_at.map(|l| l + self.config.replacement_timeout);
        match &self.phase {
            Phase::Closed => None,
            Phase::Connecting { deadline, .. } | Phase::Login { deadline, .. } => {
                Some(min_opt(Some(*deadline), replacement).expect("deadline"))
            }
            Phase::Backoff { until } => min_opt(Some(*until), replacement),
            Phase::Full { .. } => {
                let ping = match (self.ping_deadline, self.config.nop_interval) {
                    (Some(d), _) => Some(d),
                    (None, Some(i)) => Some(self.last_input + i),
                    (None, None) => None,
                };
                let async_logout = self
                    .async_logout
                    .filter(|a| a.itt.is_none())
                    .map(|a| a.deadline);
                let command = self.deadlines.first().map(|(at, _)| *at);
                min_opt(
                    min_opt(ping, self.logout_deadline),
                    min_opt(async_logout, command),
                )
            }
        }
    }

    // ---- internals: connections ---------------------------------------

    fn is_current(&self, conn: ConnectionId) -> bool {
        self.connection() == Some(conn)
    }

    fn connect(&mut self, addr: SocketAddr, now: Instant) {
        let conn = ConnectionId(self.next_conn);
        self.next_conn += 1;
        let deadline = now + self.config.login_timeout;
        self.phase = Phase::Connecting {
            conn,
            addr,
            deadline,
        };
        self.events.push_back(Event::Connect { conn, addr });
    }

    /// Tells the driver to close the current connection, if any, and
    /// voids its output.
    fn abandon_connection(&mut self) {
        if let Some(conn) = self.connection() {
            self.events.push_back(Event::Close(conn));
        }
        self.outbox.clear();
        self.ping_itt = None;
        self.ping_deadline = None;
        self.phase = Phase::Closed;
    }

    /// A connect or login attempt failed. Before the first login every
    /// failure is final; after it, class 2 login statuses (the initiator's
    /// fault: authentication, authorization, target not found or removed)
    /// are final too, so that the session does not log in without end.
    fn attempt_failed(&mut self, error: InitiatorError, now: Instant) {
        let permanent =
            !self.ever_logged_in || error.login_status().is_some_and(|s| s.class() == 2);
        if permanent {
            self.close_with(Err(error));
            return;
        }
        info!(%error, "reconnection attempt failed");
        self.last_failure = Some(error.to_string());
        self.schedule_reconnect(now);
    }

    /// Waits a backoff before the next connection: doubling from the
    /// initial backoff up to its bound, with jitter from the session's RNG
    /// (half the delay plus a random part of the other half).
    fn schedule_reconnect(&mut self, now: Instant) {
        let lost = *self.lost_at.get_or_insert(now);
        let give_up = lost + self.config.replacement_timeout;
        if now >= give_up {
            self.give_up();
            return;
        }
        let doubled = self
            .config
            .initial_reconnect_backoff
            .saturating_mul(1u32 << self.attempt.min(20));
        let bound = doubled.min(self.config.max_reconnect_backoff);
        let half = bound / 2;
        let jitter = Duration::from_nanos(
            self.rng
                .random_range(0..=half.as_nanos().min(u64::MAX as u128) as u64),
        );
        let mut until = now + half + jitter;
        if let Some(t) = self.not_before.take() {
            until = until.max(t);
        }
        self.attempt += 1;
        debug!(attempt = self.attempt, delay = ?(until - now), "reconnecting after a backoff");
        self.phase = Phase::Backoff {
            until: until.min(give_up),
        };
    }

    /// The replacement timeout expired: every request fails.
    fn give_up(&mut self) {
        let error = InitiatorError::ReplacementTimeout {
            timeout: self.config.replacement_timeout,
            last: self.last_failure.take(),
        };
        info!(%error, "giving up on the session");
        self.abandon_connection();
        self.close_with(Err(error));
    }

    /// The full-feature connection is gone (§7.1, §7.14 at
    /// ErrorRecoveryLevel 0): the session will be reinstated on a new
    /// connection, with the same ISID and TSIH 0 (§6.3.5), and every
    /// command not yet completed is sent again there.
    fn connection_lost(&mut self, now: Instant, reason: String) {
        if matches!(self.phase, Phase::Closed | Phase::Backoff { .. }) {
            return;
        }
        if let Phase::Login { addr, .. } = self.phase {
            self.abandon_connection();
            let error = InitiatorError::Login {
                addr,
                error: LoginError::Protocol("connection failed during login"),
            };
            self.attempt_failed(error, now);
            return;
        }
        warn!(%reason, outstanding = self.tasks.len(), "connection lost");
        self.abandon_connection();
        if !self.ever_logged_in {
            self.close_with(Err(InitiatorError::Protocol(reason)));
            return;
        }
        if self
            .logout
            .is_some_and(|itt| self.tasks.get(&itt).is_some_and(|t| t.sent))
        {
            self.finish_logout();
            return;
        }
        self.async_logout = None;
        self.requeue_after_loss();
        self.last_failure = Some(reason);
        self.schedule_reconnect(now);
    }

    /// Puts the requests that were in flight back in their queues; TMFs
    /// are not retried (the tasks they named are), nor commands lost too
    /// many times.
    fn requeue_after_loss(&mut self) {
        let max = self.config.max_command_retries;
        let mut failed = Vec::new();
        for task in self.tasks.values_mut() {
            if !task.sent {
                continue;
            }
            task.sent = false;
            if let Some(at) = task.deadline.take() {
                self.deadlines.remove(&(at, task.itt));
            }
            match &task.kind {
                Kind::Scsi(_) if task.timed_out => {
                    let timeout = self.config.command_timeout.unwrap_or_default();
                    failed.push((task.itt, InitiatorError::CommandTimeout(timeout)));
                }
                Kind::Scsi(_) => {
                    task.retries += 1;
                    if task.retries > max {
                        failed.push((task.itt, InitiatorError::RetriesExhausted(max)));
                    } else {
                        self.waiting.insert(task.seq, task.itt);
                    }
                }
                Kind::Text(_) => {
                    self.immediate.insert(task.seq, task.itt);
                }
                Kind::Tmf(_) => failed.push((task.itt, InitiatorError::ConnectionLost)),
                Kind::Logout => {}
            }
        }
        for (itt, error) in failed {
            self.completed(itt, Err(error));
        }
        for task in self.tasks.values_mut() {
            if let Kind::Text(t) = &mut task.kind {
                t.received.clear();
            }
        }
    }

    /// The session is over: every request completes, with `result`'s error
    /// (or [`InitiatorError::Closed`] after a clean logout).
    fn close_with(&mut self, result: Result<(), InitiatorError>) {
        if self.closed_reason.is_some() {
            return;
        }
        self.abandon_connection();
        let error = result.clone().err().unwrap_or(InitiatorError::Closed);
        let itts: Vec<Itt> = self.tasks.keys().copied().collect();
        for itt in itts {
            let outcome = if Some(itt) == self.logout && result.is_ok() {
                Ok(Completion::Logout)
            } else {
                Err(error.clone())
            };
            self.completed(itt, outcome);
        }
        self.waiting.clear();
        self.immediate.clear();
        self.lost_at = None;
        match &result {
            Ok(()) => info!("session closed"),
            Err(e) => info!(%e, "session failed"),
        }
        self.closed_reason = Some(error);
        self.events.push_back(Event::Closed(result));
    }

    fn finish_logout(&mut self) {
        self.logout_deadline = None;
        self.close_with(Ok(()));
    }

    // ---- internals: requests ------------------------------------------

    fn alloc_itt(&mut self) -> Itt {
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
    fn refuse_any(&self) -> Option<InitiatorError> {
        if self.is_closed() {
            return Some(self.closed_reason.clone().unwrap_or(InitiatorError::Closed));
        }
        if self.logout.is_some() {
            return Some(InitiatorError::Closed);
        }
        None
    }

    fn refuse(&self, cmd: &Command) -> Option<InitiatorError> {
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

    fn enqueue(&mut self, itt: Itt, kind: Kind, immediate: bool) {
        let seq = self.insert_task(itt, kind);
        if immediate {
            self.immediate.insert(seq, itt);
        } else {
            self.waiting.insert(seq, itt);
        }
    }

    /// Records a request; the caller queues it (or not). Returns its
    /// submission number.
    fn insert_task(&mut self, itt: Itt, kind: Kind) -> u64 {
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

    fn completed(&mut self, itt: Itt, result: Result<Completion, InitiatorError>) {
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
    fn flush(&mut self, now: Instant) {
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
    fn ping(&mut self, now: Instant) {
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

    fn handle_pdu(&mut self, pdu: Pdu, now: Instant) {
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

    fn handle_login_pdu(&mut self, pdu: Pdu, now: Instant) {
        let Phase::Login { login, addr, .. } = &mut self.phase else {
            return;
        };
        let addr = *addr;
        let Header::LoginResponse(rsp) = &pdu.header else {
            self.abandon_connection();
            let error = InitiatorError::Login {
                addr,
                error: LoginError::Protocol("a PDU other than Login Response during login"),
            };
            self.attempt_failed(error, now);
            return;
        };
        match login.handle(rsp, &pdu.data, &mut self.rng) {
            InitiatorLoginStep::Send(p) => self.outbox.push_back(p),
            InitiatorLoginStep::Complete(outcome) => self.logged_in(*outcome, now),
            InitiatorLoginStep::Failed(error) => self.login_failed(addr, error, now),
        }
    }

    fn logged_in(&mut self, outcome: InitiatorOutcome, now: Instant) {
        let Phase::Login { conn, addr, .. } = self.phase else {
            return;
        };
        let c = outcome.connection;
        self.digests = Digests {
            header: c.header_digest,
            data: c.data_digest,
        };
        self.decoder.digests = self.digests;
        self.decoder.max_recv_data_segment_length = c.max_recv_data_segment_length;
        self.max_xmit = c.max_xmit_data_segment_length.max(512);
        self.params = outcome.session;
        self.conn_params = c;
        self.tsih = outcome.tsih;
        self.cmd_sn = outcome.cmd_sn;
        self.exp_cmd_sn = outcome.exp_cmd_sn;
        self.max_cmd_sn = outcome.max_cmd_sn;
        if serial::lt(self.max_cmd_sn, self.exp_cmd_sn.wrapping_sub(1)) {
            self.max_cmd_sn = self.exp_cmd_sn.wrapping_sub(1);
        }
        if serial::gt(self.exp_cmd_sn, self.cmd_sn) {
            self.exp_cmd_sn = self.cmd_sn;
        }
        self.exp_stat_sn = outcome.exp_stat_sn;
        let reinstated = self.ever_logged_in;
        self.ever_logged_in = true;
        if reinstated {
            self.reinstatements += 1;
        }
        self.lost_at = None;
        self.attempt = 0;
        self.redirects = 0;
        self.last_failure = None;
        self.last_input = now;
        self.phase = Phase::Full { conn, addr };
        info!(
            %conn, %addr, tsih = self.tsih, reinstated,
            retrying = self.waiting.len(),
            "login complete"
        );
        self.events.push_back(Event::LoggedIn { reinstated });
    }

    fn login_failed(&mut self, addr: SocketAddr, error: LoginError, now: Instant) {
        self.abandon_connection();
        if let LoginError::Redirect { address, permanent } = &error {
            if self.redirects < self.config.max_redirects {
                if let Some(to) = redirect_address(address) {
                    info!(%addr, %to, permanent, "login redirected");
                    self.redirects += 1;
                    if *permanent {
                        self.portal = to;
                    }
                    self.connect(to, now);
                    return;
                }
            }
        }
        self.attempt_failed(InitiatorError::Login { addr, error }, now);
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
    fn command_timed_out(&mut self, itt: Itt, now: Instant) {
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

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A random-format ISID (§11.12.5: T = 10b, B and C random, D the
/// qualifier).
fn random_isid(rng: &mut impl RngCore) -> Isid {
    let mut b = [0u8; 6];
    rng.fill_bytes(&mut b);
    b[0] = 0x80;
    Isid(b)
}

/// The address a redirection names (§13.8), when it is an IP address.
fn redirect_address(text: &str) -> Option<SocketAddr> {
    let a = TargetAddress::parse(text).ok()?;
    let host = a.host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, a.port))
}
