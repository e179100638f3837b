//! The initiator session wired to our target [`Endpoint`] in memory: two
//! byte queues and a virtual clock (the model is quinn-proto's
//! `tests/util.rs` `Pair`). A small RAM disk executes the commands so that
//! these tests depend on the protocol only.

mod io;
mod recovery;
mod robustness;
mod tmf;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{
    Command, Completion, ConnectionId, Event, InitiatorError, Session, SessionConfig, TaskId,
};
use crate::login::{AuthPolicy, Credentials, TargetNode};
use crate::pdu::Encoder;
use crate::scsi::sense::{Asc, Sense, key};
use crate::scsi::{CommandResult, status};
use crate::target::{self, Acl, ConnId, Endpoint, EndpointConfig, TargetConfig};

pub(super) const IQN: &str = "iqn.2026-01.test:disk";
pub(super) const INITIATOR: &str = "iqn.2026-01.test:initiator";
pub(super) const BLOCK: usize = 512;
pub(super) const BLOCKS: usize = 8192;

pub(super) fn portal() -> SocketAddr {
    "127.0.0.1:3260".parse().unwrap()
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

/// A RAM disk of 512-byte blocks: READ/WRITE (10, 16), READ CAPACITY (10),
/// TEST UNIT READY and SYNCHRONIZE CACHE (10).
pub(super) struct Disk {
    pub data: Vec<u8>,
    pub executed: usize,
}

impl Disk {
    fn new() -> Disk {
        Disk {
            data: vec![0; BLOCK * BLOCKS],
            executed: 0,
        }
    }

    fn execute(&mut self, x: &target::Execute) -> CommandResult {
        self.executed += 1;
        let c = &x.cdb.base;
        let be32 = |at: usize| u32::from_be_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
        let be64 = |at: usize| (u64::from(be32(at)) << 32) | u64::from(be32(at + 4));
        let check = |k, asc| CommandResult {
            status: status::CHECK_CONDITION,
            sense: Some(Sense::new(k, asc).to_fixed()),
            data_in: Bytes::new(),
            data_out_wanted: None,
        };
        let (lba, blocks) = match c[0] {
            0x28 | 0x2a => (
                u64::from(be32(2)),
                u32::from(u16::from_be_bytes([c[7], c[8]])),
            ),
            0x88 | 0x8a => (be64(2), be32(10)),
            0x25 => {
                let mut d = Vec::new();
                d.extend_from_slice(&((BLOCKS - 1) as u32).to_be_bytes());
                d.extend_from_slice(&(BLOCK as u32).to_be_bytes());
                return CommandResult::good(Bytes::from(d));
            }
            0x00 | 0x35 => return CommandResult::good(Bytes::new()),
            _ => return check(key::ILLEGAL_REQUEST, Asc::INVALID_COMMAND_OPERATION_CODE),
        };
        if lba + u64::from(blocks) > BLOCKS as u64 {
            return check(key::ILLEGAL_REQUEST, Asc::LBA_OUT_OF_RANGE);
        }
        let range = lba as usize * BLOCK..(lba as usize + blocks as usize) * BLOCK;
        if c[0] == 0x2a || c[0] == 0x8a {
            if x.data_out.len() != range.len() {
                return check(key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
            }
            self.data[range].copy_from_slice(&x.data_out);
            let mut r = CommandResult::good(Bytes::new());
            r.data_out_wanted = Some(blocks * BLOCK as u32);
            r
        } else {
            CommandResult::good(Bytes::copy_from_slice(&self.data[range]))
        }
    }
}

/// The live connection between the two.
struct Link {
    ini: ConnectionId,
    tgt: ConnId,
    to_target: BytesMut,
    to_initiator: BytesMut,
    /// Bytes to the target vanish (a partition without a reset).
    black_hole: bool,
    /// The target closed it: deliver what is queued, then close.
    closing: bool,
}

pub(super) struct Pair {
    pub now: Instant,
    pub target: Endpoint,
    pub disk: Disk,
    pub initiator: Session,
    link: Option<Link>,
    /// Commands the target asked to execute, held back by `hold`.
    pub hold: bool,
    pub held: Vec<target::Execute>,
    /// Connection attempts fail with this error.
    pub refuse: Option<std::io::ErrorKind>,
    pub connects: usize,
    pub logins: Vec<bool>,
    pub completions: BTreeMap<TaskId, Result<Completion, InitiatorError>>,
    pub closed: Option<Result<(), InitiatorError>>,
    /// Every byte the initiator sent, for determinism checks.
    pub sent: Vec<u8>,
}

/// The target's configuration: one node, AuthMethod=None unless given.
pub(super) fn target_config(auth: AuthPolicy) -> EndpointConfig {
    EndpointConfig {
        targets: vec![TargetConfig {
            node: TargetNode {
                name: IQN.into(),
                alias: None,
                portal_group_tag: 1,
                auth,
            },
            luns: vec![0],
            acl: vec![Acl::All],
        }],
        nop_in_interval: None,
        ..EndpointConfig::default()
    }
}

pub(super) fn session_config() -> SessionConfig {
    SessionConfig::new(INITIATOR, IQN, portal())
}

pub(super) fn creds(user: &str, secret: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: secret.into(),
    }
}

impl Pair {
    pub fn new(target: EndpointConfig, config: SessionConfig) -> Pair {
        Pair::with_seed(target, config, 7)
    }

    pub fn with_seed(target: EndpointConfig, config: SessionConfig, seed: u64) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            target: Endpoint::new(target, seed ^ 0x5a5a),
            disk: Disk::new(),
            initiator: Session::new(config, seed, now),
            link: None,
            hold: false,
            held: Vec::new(),
            refuse: None,
            connects: 0,
            logins: Vec::new(),
            completions: BTreeMap::new(),
            closed: None,
            sent: Vec::new(),
        }
    }

    /// A pair with default settings, logged in.
    pub fn logged_in() -> Pair {
        let mut p = Pair::new(target_config(AuthPolicy::default()), session_config());
        p.drive();
        assert_eq!(p.logins, vec![false], "login: {:?}", p.closed);
        p
    }

    /// Moves bytes and events until nothing moves (time stands still).
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the pair does not settle");
    }

    /// Drives, then jumps to the next deadline, until `done` or `limit`
    /// of virtual time has passed.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) {
        let end = self.now + limit;
        loop {
            self.drive();
            if done(self) {
                return;
            }
            let next = [self.initiator.poll_timeout(), self.target.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.initiator.handle_timeout(self.now);
                    self.target.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
    }

    /// Advances the virtual clock, firing timers on the way.
    pub fn advance(&mut self, by: Duration) {
        self.run_until(by, |_| false);
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.initiator.poll_event() {
            moved = true;
            self.on_initiator_event(event);
        }
        let Some(link) = self.link.as_mut() else {
            return moved;
        };
        let (ini, tgt) = (link.ini, link.tgt);
        while let Some(t) = self.initiator.poll_transmit(ini) {
            moved = true;
            let start = link.to_target.len();
            Encoder { digests: t.digests }.encode(&t.pdu, &mut link.to_target);
            self.sent.extend_from_slice(&link.to_target[start..]);
        }
        if link.black_hole {
            link.to_target.clear();
        }
        if !link.to_target.is_empty() && !link.closing {
            let before = link.to_target.len();
            self.target.handle_input(tgt, &mut link.to_target, self.now);
            moved |= link.to_target.len() != before;
        }
        while let Some(event) = self.target.poll_event() {
            moved = true;
            match event {
                target::Event::Execute(x) if self.hold => self.held.push(x),
                target::Event::Execute(x) => {
                    let result = self.disk.execute(&x);
                    self.target.complete(x.task, result, self.now);
                }
                target::Event::Close(id) if id == tgt => {
                    if let Some(l) = self.link.as_mut() {
                        l.closing = true;
                    }
                }
                _ => {}
            }
        }
        let Some(link) = self.link.as_mut() else {
            return moved;
        };
        while let Some(t) = self.target.poll_transmit(tgt) {
            moved = true;
            Encoder { digests: t.digests }.encode(&t.pdu, &mut link.to_initiator);
        }
        if !link.to_initiator.is_empty() {
            let before = link.to_initiator.len();
            self.initiator
                .handle_input(ini, &mut link.to_initiator, self.now);
            moved |= link.to_initiator.len() != before;
        }
        if self.link.as_ref().is_some_and(|l| l.closing) {
            let l = self.link.take().expect("checked");
            self.target.handle_closed(l.tgt, self.now);
            self.initiator.handle_closed(l.ini, self.now);
            moved = true;
        }
        moved
    }

    fn on_initiator_event(&mut self, event: Event) {
        match event {
            Event::Connect { conn, addr } => {
                assert_eq!(addr, portal());
                self.connects += 1;
                if let Some(kind) = self.refuse {
                    self.initiator.handle_connect_failed(conn, kind, self.now);
                    return;
                }
                if let Some(old) = self.link.take() {
                    self.target.handle_closed(old.tgt, self.now);
                }
                let tgt = self.target.accept(peer(), portal(), self.now);
                self.link = Some(Link {
                    ini: conn,
                    tgt,
                    to_target: BytesMut::new(),
                    to_initiator: BytesMut::new(),
                    black_hole: false,
                    closing: false,
                });
                self.initiator.handle_connected(conn, self.now);
            }
            Event::Close(conn) => {
                if self.link.as_ref().is_some_and(|l| l.ini == conn) {
                    let l = self.link.take().expect("checked");
                    self.target.handle_closed(l.tgt, self.now);
                }
            }
            Event::LoggedIn { reinstated } => self.logins.push(reinstated),
            Event::Completed { task, result } => {
                assert!(
                    self.completions.insert(task, result).is_none(),
                    "{task} completed twice"
                );
            }
            Event::ScsiEvent { .. } => {}
            Event::Closed(result) => {
                assert!(self.closed.is_none(), "closed twice");
                self.closed = Some(result);
            }
        }
    }

    /// The connection breaks at once on both sides (a reset).
    pub fn break_link(&mut self) {
        if let Some(l) = self.link.take() {
            self.target.handle_closed(l.tgt, self.now);
            self.initiator.handle_closed(l.ini, self.now);
        }
    }

    /// Bytes to the target vanish from now on, without a reset.
    pub fn black_hole(&mut self) {
        if let Some(l) = self.link.as_mut() {
            l.black_hole = true;
        }
    }

    /// Executes the held commands.
    pub fn release(&mut self) {
        self.hold = false;
        for x in std::mem::take(&mut self.held) {
            let result = self.disk.execute(&x);
            self.target.complete(x.task, result, self.now);
        }
        self.drive();
    }

    /// Injects raw bytes as if the target had sent them.
    pub fn inject(&mut self, bytes: &[u8]) {
        let l = self.link.as_mut().expect("connected");
        l.to_initiator.extend_from_slice(bytes);
        let ini = l.ini;
        self.initiator
            .handle_input(ini, &mut l.to_initiator, self.now);
        self.drive();
    }

    pub fn submit(&mut self, cmd: Command) -> TaskId {
        let now = self.now;
        self.initiator.command(cmd, now)
    }

    pub fn write(&mut self, lba: u32, data: Bytes) -> TaskId {
        self.submit(Command::new(0, &write10(lba, data.len() / BLOCK), data, 0))
    }

    pub fn read(&mut self, lba: u32, blocks: usize) -> TaskId {
        self.submit(Command::new(
            0,
            &read10(lba, blocks),
            Bytes::new(),
            (blocks * BLOCK) as u32,
        ))
    }

    /// The result of a finished task.
    pub fn result(&self, task: TaskId) -> &Result<Completion, InitiatorError> {
        self.completions
            .get(&task)
            .unwrap_or_else(|| panic!("{task} has not completed"))
    }

    /// The Data-In of a finished read, which must have succeeded.
    pub fn data(&self, task: TaskId) -> Bytes {
        match self.result(task) {
            Ok(Completion::Scsi(o)) => o.clone().check().expect("GOOD").data,
            other => panic!("{task}: {other:?}"),
        }
    }

    pub fn assert_good(&self, task: TaskId) {
        let _ = self.data(task);
    }
}

pub(super) fn read10(lba: u32, blocks: usize) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = 0x28;
    c[2..6].copy_from_slice(&lba.to_be_bytes());
    c[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
    c
}

pub(super) fn write10(lba: u32, blocks: usize) -> [u8; 10] {
    let mut c = read10(lba, blocks);
    c[0] = 0x2a;
    c
}

/// Deterministic pseudo-random bytes.
pub(super) fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
