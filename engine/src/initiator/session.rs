//! The initiator session: its state, the sans-IO interface the drivers
//! call (connections, input, timeouts, requests, output) and its timers
//! (RFC 7143 §4.2, §6.3, §7, §11). What it sends is in `outbound`, what it
//! receives in `inbound`, connection loss and reinstatement in `recovery`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, warn};

use super::config::SessionConfig;
use super::error::InitiatorError;
use super::task::{Kind, ScsiTask, Task, TextTask, TmfTask};
use super::{Command, Completion, ConnectionId, Event, TaskId, Transmit};
use crate::login::{InitiatorConfig, InitiatorLogin, LoginError};
use crate::pdu::{Decoder, Digests, Header, Isid, Itt, Lun, Pdu, TmfFunction};
use crate::text::{ConnectionParams, SessionParams, SessionType, encode_pairs};

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
pub(super) enum Phase {
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
pub(super) struct AsyncLogout {
    /// Send the Logout by then, outstanding commands or not.
    pub(super) deadline: Instant,
    /// The Logout sent, once it is.
    pub(super) itt: Option<Itt>,
}

/// The sans-IO initiator session: see the module documentation of
/// [`super`].
#[derive(Debug)]
pub struct Session {
    pub(super) config: SessionConfig,
    pub(super) rng: ChaCha8Rng,
    pub(super) isid: Isid,
    pub(super) phase: Phase,
    /// Where to connect after a loss (a permanent redirection moves it).
    pub(super) portal: SocketAddr,
    pub(super) next_conn: u64,
    pub(super) decoder: Decoder,
    pub(super) digests: Digests,
    pub(super) max_xmit: u32,
    pub(super) params: SessionParams,
    pub(super) conn_params: ConnectionParams,
    pub(super) tsih: u16,
    pub(super) cmd_sn: u32,
    pub(super) exp_cmd_sn: u32,
    pub(super) max_cmd_sn: u32,
    pub(super) exp_stat_sn: u32,
    pub(super) tasks: BTreeMap<Itt, Task>,
    /// Command timeouts of the commands in flight.
    pub(super) deadlines: BTreeSet<(Instant, Itt)>,
    /// Non-immediate requests not yet sent, in submission order.
    pub(super) waiting: BTreeMap<u64, Itt>,
    /// Immediate requests not yet sent, in submission order.
    pub(super) immediate: BTreeMap<u64, Itt>,
    pub(super) next_seq: u64,
    pub(super) next_itt: u32,
    pub(super) outbox: VecDeque<Pdu>,
    pub(super) events: VecDeque<Event>,
    pub(super) last_input: Instant,
    pub(super) ping_itt: Option<Itt>,
    pub(super) ping_deadline: Option<Instant>,
    /// When the connection was lost: the replacement timeout runs from here.
    pub(super) lost_at: Option<Instant>,
    /// Reconnection attempts since the loss.
    pub(super) attempt: u32,
    /// Not before this may the next connection be opened (Time2Wait).
    pub(super) not_before: Option<Instant>,
    pub(super) redirects: u32,
    pub(super) last_failure: Option<String>,
    /// The user's logout request.
    pub(super) logout: Option<Itt>,
    pub(super) logout_deadline: Option<Instant>,
    pub(super) async_logout: Option<AsyncLogout>,
    pub(super) ever_logged_in: bool,
    pub(super) reinstatements: u64,
    /// Set once the session is over for good.
    pub(super) closed_reason: Option<InitiatorError>,
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
}

pub(super) fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A random-format ISID (§11.12.5: T = 10b, B and C random, D the
/// qualifier).
pub(super) fn random_isid(rng: &mut impl RngCore) -> Isid {
    let mut b = [0u8; 6];
    rng.fill_bytes(&mut b);
    b[0] = 0x80;
    Isid(b)
}
