//! One TCP connection's state: its phase, the PDUs waiting to be sent, its
//! StatSN, digests and timers (RFC 7143 §4.2, §6, §7).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::login::target::TargetLogin;
use crate::pdu::{Decoder, Digests, Itt, Pdu, Ttt};
use crate::text::Negotiator;

/// Where a connection is in its life.
pub(crate) enum Phase {
    /// The login phase; the state machine is boxed for its size.
    Login(Box<TargetLogin>),
    /// Full-feature phase, bound to a session.
    FullFeature,
    /// Done: close once the outbox is written (logout, fatal error).
    Closing,
}

/// A multi-PDU Text Response still being sent (§11.11: C bit and TTT).
pub(crate) struct TextContinuation {
    pub itt: Itt,
    pub ttt: Ttt,
    pub rest: Bytes,
}

pub(crate) struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub phase: Phase,
    /// The session this connection belongs to (full-feature phase).
    pub tsih: Option<u16>,
    pub cid: u16,
    pub decoder: Decoder,
    /// Digests for PDUs this side sends.
    pub digests: Digests,
    /// Digests to switch to once the final Login Response is written.
    pub pending_digests: Option<Digests>,
    /// The peer's MaxRecvDataSegmentLength: bounds our data segments.
    pub max_xmit: u32,
    /// The next StatSN to send (§4.2.2.2).
    pub stat_sn: u32,
    /// ExpCmdSN/MaxCmdSN for login responses, before a session exists.
    pub login_cmd_sn: u32,
    pub outbox: VecDeque<Pdu>,
    pub last_input: Instant,
    pub login_deadline: Option<Instant>,
    /// An unanswered NOP-In ping (§11.19): drop the connection at this
    /// time unless input arrives.
    pub ping_deadline: Option<Instant>,
    /// Set when an Async logout request was sent: drop at this time.
    pub logout_deadline: Option<Instant>,
    /// Text request pairs gathered across PDUs with the C bit.
    pub text_in: Option<(Itt, Vec<u8>)>,
    pub text_out: Option<TextContinuation>,
    /// Negotiates keys in Text exchanges of the full-feature phase.
    pub negotiator: Option<Negotiator>,
    /// The transport is gone; nothing more is sent.
    pub closed: bool,
}

impl Connection {
    pub fn new(
        peer: SocketAddr,
        local: SocketAddr,
        login: TargetLogin,
        stat_sn: u32,
        now: Instant,
    ) -> Self {
        Connection {
            peer,
            local,
            phase: Phase::Login(Box::new(login)),
            tsih: None,
            cid: 0,
            decoder: Decoder::default(),
            digests: Digests::default(),
            pending_digests: None,
            max_xmit: 8192,
            stat_sn,
            login_cmd_sn: 0,
            outbox: VecDeque::new(),
            last_input: now,
            login_deadline: None,
            ping_deadline: None,
            logout_deadline: None,
            text_in: None,
            text_out: None,
            negotiator: None,
            closed: false,
        }
    }

    pub fn is_full_feature(&self) -> bool {
        matches!(self.phase, Phase::FullFeature)
    }

    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing) || self.closed
    }

    pub fn queue(&mut self, pdu: Pdu) {
        if !self.closed {
            self.outbox.push_back(pdu);
        }
    }
}
