//! The connection's life and recovery at ErrorRecoveryLevel 0 (RFC 7143
//! §6.3, §7.1, §7.3.5): connecting, the login phase, redirection, a lost
//! connection, bounded backoff with jitter, session reinstatement with the
//! same ISID and the retry of unfinished commands, and the replacement
//! timeout that ends it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::Rng;
use tracing::{debug, info, warn};

use super::error::InitiatorError;
use super::session::{Phase, Session};
use super::task::Kind;
use super::{Completion, ConnectionId, Event};
use crate::login::{InitiatorLoginStep, InitiatorOutcome, LoginError};
use crate::pdu::{Digests, Header, Itt, Pdu};
use crate::serial;
use crate::text::discovery::TargetAddress;

impl Session {
    pub(super) fn connect(&mut self, addr: SocketAddr, now: Instant) {
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
    pub(super) fn abandon_connection(&mut self) {
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
    pub(super) fn attempt_failed(&mut self, error: InitiatorError, now: Instant) {
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
    pub(super) fn give_up(&mut self) {
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
    pub(super) fn connection_lost(&mut self, now: Instant, reason: String) {
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
    pub(super) fn close_with(&mut self, result: Result<(), InitiatorError>) {
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

    pub(super) fn finish_logout(&mut self) {
        self.logout_deadline = None;
        self.close_with(Ok(()));
    }

    // ---- internals: requests ------------------------------------------

    pub(super) fn handle_login_pdu(&mut self, pdu: Pdu, now: Instant) {
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
}

/// The address a redirection names (§13.8), when it is an IP address.
fn redirect_address(text: &str) -> Option<SocketAddr> {
    let a = TargetAddress::parse(text).ok()?;
    let host = a.host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, a.port))
}
