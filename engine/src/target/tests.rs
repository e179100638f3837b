//! The endpoint driven PDU by PDU: a scripted initiator on one side (the
//! engine's own codec and login state machine), real devices on the other,
//! a virtual clock, and every PDU passed through bytes both ways.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::SeedableRng;

use super::*;
use crate::login::initiator::{InitiatorConfig, InitiatorLogin, InitiatorLoginStep};
use crate::login::target::{AuthPolicy, TargetNode};
use crate::pdu::*;
use crate::scsi::{Device, LogicalUnit, LuConfig, status};
use crate::store::MemoryStore;
use crate::text::{Preferences, SessionType};

const TARGET: &str = "iqn.2026-11.test:disk";
const INITIATOR: &str = "iqn.2026-11.test:host";

/// The initiator side of one connection.
struct Client {
    encoder: Encoder,
    decoder: Decoder,
    inbox: BytesMut,
    cmd_sn: u32,
    exp_stat_sn: u32,
    next_itt: u32,
}

struct Harness {
    ep: Endpoint,
    devices: BTreeMap<String, Device>,
    now: Instant,
    clients: BTreeMap<ConnId, Client>,
    closed: Vec<ConnId>,
    nexus_lost: usize,
}

fn device() -> Device {
    let config = LuConfig {
        block_size: 512,
        vendor: "HARNESS".into(),
        product: "TEST".into(),
        revision: "1".into(),
        serial: "0001".into(),
        removable: false,
        readonly: false,
    };
    let mut luns = BTreeMap::new();
    luns.insert(
        1,
        LogicalUnit::new(config, Box::new(MemoryStore::new(64 << 20))),
    );
    Device::new(luns)
}

fn target_config(name: &str) -> TargetConfig {
    TargetConfig {
        node: TargetNode {
            name: name.into(),
            alias: None,
            portal_group_tag: 1,
            auth: AuthPolicy::default(),
        },
        luns: vec![1],
        acl: vec![Acl::All],
    }
}

impl Harness {
    fn new(tweak: impl FnOnce(&mut EndpointConfig)) -> Harness {
        let mut config = EndpointConfig {
            targets: vec![target_config(TARGET)],
            ..EndpointConfig::default()
        };
        tweak(&mut config);
        let mut devices = BTreeMap::new();
        for t in &config.targets {
            devices.insert(t.node.name.clone(), device());
        }
        Harness {
            ep: Endpoint::new(config, 42),
            devices,
            now: Instant::now(),
            clients: BTreeMap::new(),
            closed: Vec::new(),
            nexus_lost: 0,
        }
    }

    fn connect(&mut self) -> ConnId {
        let id = self.ep.accept(
            "127.0.0.1:50000".parse().unwrap(),
            "127.0.0.1:3260".parse().unwrap(),
            self.now,
        );
        let client = Client {
            encoder: Encoder::default(),
            decoder: Decoder {
                max_recv_data_segment_length: 1 << 24,
                ..Decoder::default()
            },
            inbox: BytesMut::new(),
            cmd_sn: 1,
            exp_stat_sn: 0,
            next_itt: 1,
        };
        self.clients.insert(id, client);
        id
    }

    fn run_events(&mut self) {
        while let Some(event) = self.ep.poll_event() {
            match event {
                Event::Execute(x) => {
                    let device = self.devices.get_mut(&*x.target).unwrap();
                    let result = x.with_request(|request| device.execute(x.lun, request));
                    self.ep.complete(x.task, result, self.now);
                }
                Event::TaskManagement {
                    target,
                    nexus,
                    lun,
                    function,
                } => self
                    .devices
                    .get_mut(&*target)
                    .unwrap()
                    .task_management(&nexus, lun, function),
                Event::NexusLost { target, nexus } => {
                    self.nexus_lost += 1;
                    self.devices.get_mut(&*target).unwrap().nexus_lost(&nexus)
                }
                Event::Close(id) => self.closed.push(id),
                Event::Transmit(_) => {}
            }
        }
    }

    fn send_bytes(&mut self, id: ConnId, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        self.ep.handle_input(id, &mut buf, self.now);
        self.run_events();
    }

    fn send(&mut self, id: ConnId, pdu: Pdu) {
        let mut buf = BytesMut::new();
        self.clients[&id].encoder.encode(&pdu, &mut buf);
        self.send_bytes(id, &buf);
    }

    /// Everything the target sent on `id`, through bytes.
    fn recv(&mut self, id: ConnId) -> Vec<Pdu> {
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_transmit(id) {
            let mut buf = BytesMut::new();
            Encoder { digests: t.digests }.encode(&t.pdu, &mut buf);
            let client = self.clients.get_mut(&id).unwrap();
            client.inbox.extend_from_slice(&buf);
            while let Some(pdu) = client
                .decoder
                .decode(&mut client.inbox)
                .expect("target PDU decodes")
            {
                if let Some(sn) = stat_sn(&pdu.header) {
                    client.exp_stat_sn = sn.wrapping_add(1);
                }
                out.push(pdu);
            }
        }
        out
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.ep.handle_timeout(self.now);
        self.run_events();
    }

    fn login_with(&mut self, id: ConnId, isid: u8, prefs: Preferences, kind: SessionType) {
        let config = InitiatorConfig {
            itt: 0x1000,
            prefs,
            ..InitiatorConfig::leading(
                INITIATOR,
                Isid([0x80, 0, 0, 0, 0, isid]),
                kind,
                (kind == SessionType::Normal).then_some(TARGET),
            )
        };
        let mut login = InitiatorLogin::new(config);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let first = login.start();
        self.send(id, first);
        loop {
            let responses = self.recv(id);
            assert_eq!(responses.len(), 1, "one Login Response per request");
            let Header::LoginResponse(h) = &responses[0].header else {
                panic!("not a login response")
            };
            match login.handle(h, &responses[0].data, &mut rng) {
                InitiatorLoginStep::Send(next) => self.send(id, next),
                InitiatorLoginStep::Complete(outcome) => {
                    let client = self.clients.get_mut(&id).unwrap();
                    let digests = Digests {
                        header: outcome.connection.header_digest,
                        data: outcome.connection.data_digest,
                    };
                    client.encoder.digests = digests;
                    client.decoder.digests = digests;
                    client.cmd_sn = outcome.cmd_sn;
                    return;
                }
                InitiatorLoginStep::Failed(e) => panic!("login failed: {e}"),
            }
        }
    }

    fn login(&mut self, id: ConnId) {
        self.login_with(id, 1, Preferences::default(), SessionType::Normal);
    }

    fn next_itt(&mut self, id: ConnId) -> u32 {
        let c = self.clients.get_mut(&id).unwrap();
        c.next_itt += 1;
        c.next_itt
    }

    fn take_cmd_sn(&mut self, id: ConnId) -> u32 {
        let c = self.clients.get_mut(&id).unwrap();
        c.cmd_sn = c.cmd_sn.wrapping_add(1);
        c.cmd_sn.wrapping_sub(1)
    }

    fn command(
        &mut self,
        id: ConnId,
        cdb: &[u8],
        read: u32,
        write: Option<Bytes>,
        cmd_sn: u32,
        itt: u32,
    ) -> Pdu {
        let exp_stat_sn = self.clients[&id].exp_stat_sn;
        let (write_len, data) = match &write {
            Some(d) => (d.len() as u32, d.clone()),
            None => (0, Bytes::new()),
        };
        Pdu::new(
            Header::ScsiCommand(ScsiCommand {
                final_: true,
                read: read > 0,
                write: write.is_some(),
                attr: TaskAttr::Simple,
                lun: Lun::from_index(1),
                itt,
                expected_data_transfer_length: read.max(write_len),
                cmd_sn,
                exp_stat_sn,
                cdb: Cdb::new(cdb),
                ..ScsiCommand::default()
            }),
            data,
        )
    }

    /// Sends a command in order and returns what came back for it.
    fn run_command(&mut self, id: ConnId, cdb: &[u8], read: u32, write: Option<Bytes>) -> Vec<Pdu> {
        let itt = self.next_itt(id);
        let cmd_sn = self.take_cmd_sn(id);
        let pdu = self.command(id, cdb, read, write, cmd_sn, itt);
        self.send(id, pdu);
        self.recv(id)
    }

    /// TEST UNIT READY until the power-on unit attention is gone.
    fn clear_unit_attention(&mut self, id: ConnId) {
        for _ in 0..3 {
            if status_of(&self.run_command(id, &[0, 0, 0, 0, 0, 0], 0, None)) == Some(status::GOOD)
            {
                return;
            }
        }
        panic!("unit attention does not clear");
    }
}

fn stat_sn(h: &Header) -> Option<u32> {
    match h {
        Header::ScsiResponse(h) => Some(h.stat_sn),
        Header::DataIn(h) if h.status_present => Some(h.stat_sn),
        Header::LoginResponse(h) => Some(h.stat_sn),
        Header::TextResponse(h) => Some(h.stat_sn),
        Header::TaskMgmtResponse(h) => Some(h.stat_sn),
        Header::LogoutResponse(h) => Some(h.stat_sn),
        Header::NopIn(h) if h.itt != RESERVED_TAG => Some(h.stat_sn),
        Header::Reject(h) => Some(h.stat_sn),
        Header::AsyncMessage(h) => Some(h.stat_sn),
        _ => None,
    }
}

/// The status a command's PDUs ended with.
fn status_of(pdus: &[Pdu]) -> Option<u8> {
    pdus.iter().rev().find_map(|p| match &p.header {
        Header::ScsiResponse(h) => Some(h.status),
        Header::DataIn(h) if h.status_present => Some(h.status),
        _ => None,
    })
}

fn data_of(pdus: &[Pdu]) -> Vec<u8> {
    let mut data = Vec::new();
    for p in pdus {
        if let Header::DataIn(h) = &p.header {
            assert_eq!(
                h.buffer_offset as usize,
                data.len(),
                "Data-In in offset order"
            );
            data.extend_from_slice(&p.data);
        }
    }
    data
}

fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let [a, b, c, d] = lba.to_be_bytes();
    let [e, f] = blocks.to_be_bytes();
    [0x2a, 0, a, b, c, d, 0, e, f, 0]
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut cdb = write10(lba, blocks);
    cdb[0] = 0x28;
    cdb
}

fn ready_session() -> (Harness, ConnId) {
    let mut h = Harness::new(|_| {});
    let id = h.connect();
    h.login(id);
    h.clear_unit_attention(id);
    (h, id)
}

#[test]
fn inquiry_answers_with_phase_collapsed_status() {
    let (mut h, id) = ready_session();
    let pdus = h.run_command(id, &[0x12, 0, 0, 0, 96, 0], 96, None);
    assert_eq!(pdus.len(), 1, "one Data-In carrying the status");
    let Header::DataIn(d) = &pdus[0].header else {
        panic!("Data-In expected")
    };
    assert!(d.status_present && d.final_);
    assert_eq!(d.status, status::GOOD);
    assert_eq!(&pdus[0].data[8..15], b"HARNESS");
}

#[test]
fn commands_execute_in_cmd_sn_order() {
    let (mut h, id) = ready_session();
    let first = h.take_cmd_sn(id);
    let second = h.take_cmd_sn(id);
    let a = Bytes::from(vec![b'A'; 512]);
    let b = Bytes::from(vec![b'B'; 512]);
    let later = h.command(id, &write10(0, 1), 0, Some(b), second, 100);
    h.send(id, later);
    assert!(h.recv(id).is_empty(), "CmdSN+1 waits for CmdSN");
    let earlier = h.command(id, &write10(0, 1), 0, Some(a), first, 101);
    h.send(id, earlier);
    let responses = h.recv(id);
    let itts: Vec<u32> = responses.iter().map(|p| p.header.itt()).collect();
    assert_eq!(itts, vec![101, 100], "executed in CmdSN order");
    let read = h.run_command(id, &read10(0, 1), 512, None);
    assert_eq!(data_of(&read), vec![b'B'; 512]);
}

#[test]
fn out_of_window_and_duplicate_commands_are_ignored() {
    let (mut h, id) = ready_session();
    let cmd_sn = h.clients[&id].cmd_sn;
    let far = h.command(
        id,
        &[0, 0, 0, 0, 0, 0],
        0,
        None,
        cmd_sn.wrapping_add(100_000),
        200,
    );
    h.send(id, far);
    let stale = h.command(
        id,
        &[0, 0, 0, 0, 0, 0],
        0,
        None,
        cmd_sn.wrapping_sub(1),
        201,
    );
    h.send(id, stale);
    assert!(
        h.recv(id).is_empty(),
        "nothing answers commands outside the window"
    );
    assert_eq!(
        status_of(&h.run_command(id, &[0, 0, 0, 0, 0, 0], 0, None)),
        Some(status::GOOD)
    );
}

#[test]
fn r2t_sequences_respect_max_burst_and_outstanding() {
    let mut h = Harness::new(|c| {
        c.preferences.initial_r2t = true;
        c.preferences.immediate_data = false;
        c.preferences.max_burst_length = 16384;
        c.preferences.max_outstanding_r2t = 2;
    });
    let id = h.connect();
    let prefs = Preferences {
        max_outstanding_r2t: 4,
        ..Preferences::default()
    };
    h.login_with(id, 1, prefs, SessionType::Normal);
    h.clear_unit_attention(id);
    let itt = h.next_itt(id);
    let cmd_sn = h.take_cmd_sn(id);
    let mut cmd = h.command(id, &write10(8, 128), 0, Some(Bytes::new()), cmd_sn, itt);
    if let Header::ScsiCommand(c) = &mut cmd.header {
        c.expected_data_transfer_length = 65536;
    }
    h.send(id, cmd);
    let mut r2ts: Vec<R2t> = h
        .recv(id)
        .into_iter()
        .map(|p| match p.header {
            Header::R2t(r) => r,
            other => panic!("R2T expected, got {other:?}"),
        })
        .collect();
    assert_eq!(r2ts.len(), 2, "MaxOutstandingR2T = 2");
    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut served = 0;
    while let Some(r2t) = r2ts.first().cloned() {
        r2ts.remove(0);
        assert_eq!(
            r2t.desired_data_transfer_length, 16384,
            "MaxBurstLength = 16384"
        );
        assert_eq!(r2t.r2t_sn, served);
        for (sn, off) in (r2t.buffer_offset..r2t.buffer_offset + 16384)
            .step_by(8192)
            .enumerate()
        {
            let data = Bytes::copy_from_slice(&payload[off as usize..off as usize + 8192]);
            let out = DataOut {
                final_: off + 8192 == r2t.buffer_offset + 16384,
                lun: Lun::from_index(1),
                itt,
                ttt: r2t.ttt,
                data_sn: sn as u32,
                buffer_offset: off,
                ..DataOut::default()
            };
            h.send(id, Pdu::new(Header::DataOut(out), data));
        }
        served += 1;
        for p in h.recv(id) {
            match p.header {
                Header::R2t(r) => r2ts.push(r),
                Header::ScsiResponse(s) => assert_eq!(s.status, status::GOOD),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(served, 4);
    let read = h.run_command(id, &read10(8, 128), 65536, None);
    assert_eq!(data_of(&read), payload);
}

#[test]
fn unsolicited_data_then_r2t_for_the_rest() {
    let mut h = Harness::new(|c| {
        c.preferences.initial_r2t = false;
        c.preferences.first_burst_length = 8192;
    });
    let id = h.connect();
    let prefs = Preferences {
        initial_r2t: false,
        first_burst_length: 8192,
        ..Preferences::default()
    };
    h.login_with(id, 1, prefs, SessionType::Normal);
    h.clear_unit_attention(id);
    let itt = h.next_itt(id);
    let cmd_sn = h.take_cmd_sn(id);
    let mut cmd = h.command(
        id,
        &write10(0, 64),
        0,
        Some(Bytes::from(vec![1u8; 4096])),
        cmd_sn,
        itt,
    );
    if let Header::ScsiCommand(c) = &mut cmd.header {
        c.expected_data_transfer_length = 32768;
        c.final_ = false;
    }
    h.send(id, cmd);
    assert!(
        h.recv(id).is_empty(),
        "no R2T before the unsolicited data ends"
    );
    let out = DataOut {
        final_: true,
        lun: Lun::from_index(1),
        itt,
        ttt: RESERVED_TAG,
        buffer_offset: 4096,
        ..DataOut::default()
    };
    h.send(
        id,
        Pdu::new(Header::DataOut(out), Bytes::from(vec![2u8; 4096])),
    );
    let pdus = h.recv(id);
    let Header::R2t(r2t) = &pdus[0].header else {
        panic!("R2T expected")
    };
    assert_eq!(
        (r2t.buffer_offset, r2t.desired_data_transfer_length),
        (8192, 24576)
    );
}

#[test]
fn data_in_is_split_by_max_recv_data_segment_length() {
    let mut h = Harness::new(|c| c.preferences.max_burst_length = 65536);
    let id = h.connect();
    let prefs = Preferences {
        max_recv_data_segment_length: 8192,
        ..Preferences::default()
    };
    h.login_with(id, 1, prefs, SessionType::Normal);
    h.clear_unit_attention(id);
    let pdus = h.run_command(id, &read10(0, 512), 262144, None);
    assert_eq!(pdus.len(), 32);
    for (i, p) in pdus.iter().enumerate() {
        let Header::DataIn(d) = &p.header else {
            panic!("Data-In expected")
        };
        assert_eq!(d.data_sn, i as u32);
        assert_eq!(p.data.len(), 8192);
        assert_eq!(
            d.final_,
            (i + 1) % 8 == 0,
            "F ends each MaxBurstLength sequence"
        );
        assert_eq!(d.status_present, i == 31);
    }
}

#[test]
fn read_residuals() {
    let (mut h, id) = ready_session();
    let pdus = h.run_command(id, &read10(0, 2), 512, None);
    let Header::DataIn(d) = &pdus.last().unwrap().header else {
        panic!()
    };
    assert!(d.overflow && !d.underflow);
    assert_eq!(d.residual_count, 512);
    let pdus = h.run_command(id, &read10(0, 1), 10000, None);
    let Header::DataIn(d) = &pdus.last().unwrap().header else {
        panic!()
    };
    assert!(d.underflow);
    assert_eq!(d.residual_count, 10000 - 512);
}

#[test]
fn write_residuals_against_the_cdb() {
    let (mut h, id) = ready_session();
    let pdus = h.run_command(id, &write10(0, 1), 0, Some(Bytes::from(vec![0u8; 1024])));
    let Header::ScsiResponse(r) = &pdus[0].header else {
        panic!()
    };
    assert_eq!(
        (r.status, r.underflow, r.residual_count),
        (status::GOOD, true, 512)
    );
}

#[test]
fn nop_out_is_echoed_and_idle_connections_are_pinged_then_dropped() {
    let mut h = Harness::new(|c| {
        c.nop_in_interval = Some(Duration::from_secs(5));
        c.nop_in_timeout = Duration::from_secs(5);
    });
    let id = h.connect();
    h.login(id);
    let cmd_sn = h.take_cmd_sn(id);
    let ping = NopOut {
        immediate: true,
        itt: 77,
        ttt: RESERVED_TAG,
        cmd_sn,
        ..NopOut::default()
    };
    h.send(
        id,
        Pdu::new(Header::NopOut(ping), Bytes::from_static(b"ping!")),
    );
    let pdus = h.recv(id);
    let Header::NopIn(n) = &pdus[0].header else {
        panic!("NOP-In expected")
    };
    assert_eq!((n.itt, &pdus[0].data[..]), (77, &b"ping!"[..]));
    h.advance(Duration::from_secs(6));
    let pdus = h.recv(id);
    let Header::NopIn(n) = &pdus[0].header else {
        panic!("ping expected")
    };
    assert_eq!(n.itt, RESERVED_TAG);
    assert_ne!(n.ttt, RESERVED_TAG);
    h.advance(Duration::from_secs(6));
    assert!(
        h.closed.contains(&id),
        "an unanswered ping drops the connection"
    );
    assert_eq!(
        h.nexus_lost, 1,
        "the session ends with it at ErrorRecoveryLevel 0"
    );
}

#[test]
fn abort_task_of_a_task_waiting_for_data() {
    let mut h = Harness::new(|c| c.preferences.initial_r2t = true);
    let id = h.connect();
    h.login(id);
    h.clear_unit_attention(id);
    let itt = h.next_itt(id);
    let cmd_sn = h.take_cmd_sn(id);
    let mut cmd = h.command(id, &write10(0, 8), 0, Some(Bytes::new()), cmd_sn, itt);
    if let Header::ScsiCommand(c) = &mut cmd.header {
        c.expected_data_transfer_length = 4096;
    }
    h.send(id, cmd);
    assert!(matches!(h.recv(id)[0].header, Header::R2t(_)));
    let tmf = TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::AbortTask as u8,
        lun: Lun::from_index(1),
        itt: 900,
        referenced_task_tag: itt,
        cmd_sn: h.clients[&id].cmd_sn,
        ref_cmd_sn: cmd_sn,
        ..TaskMgmtRequest::default()
    };
    h.send(id, Pdu::bare(Header::TaskMgmtRequest(tmf.clone())));
    let Header::TaskMgmtResponse(r) = &h.recv(id)[0].header else {
        panic!()
    };
    assert_eq!(r.response, tmf_response::FUNCTION_COMPLETE);
    let again = TaskMgmtRequest { itt: 901, ..tmf };
    h.send(id, Pdu::bare(Header::TaskMgmtRequest(again)));
    let Header::TaskMgmtResponse(r) = &h.recv(id)[0].header else {
        panic!()
    };
    assert_eq!(r.response, tmf_response::TASK_DOES_NOT_EXIST);
    let reassign = TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::TaskReassign as u8,
        itt: 902,
        ..TaskMgmtRequest::default()
    };
    h.send(id, Pdu::bare(Header::TaskMgmtRequest(reassign)));
    let Header::TaskMgmtResponse(r) = &h.recv(id)[0].header else {
        panic!()
    };
    assert_eq!(
        r.response,
        tmf_response::TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED,
        "ERL 0"
    );
}

#[test]
fn lun_reset_raises_a_unit_attention() {
    let (mut h, id) = ready_session();
    let tmf = TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::LogicalUnitReset as u8,
        lun: Lun::from_index(1),
        itt: 500,
        cmd_sn: h.clients[&id].cmd_sn,
        ..TaskMgmtRequest::default()
    };
    h.send(id, Pdu::bare(Header::TaskMgmtRequest(tmf)));
    let Header::TaskMgmtResponse(r) = &h.recv(id)[0].header else {
        panic!()
    };
    assert_eq!(r.response, tmf_response::FUNCTION_COMPLETE);
    let pdus = h.run_command(id, &[0, 0, 0, 0, 0, 0], 0, None);
    assert_eq!(status_of(&pdus), Some(status::CHECK_CONDITION));
    let missing = TaskMgmtRequest {
        immediate: true,
        function: TmfFunction::LogicalUnitReset as u8,
        lun: Lun::from_index(9),
        itt: 501,
        ..TaskMgmtRequest::default()
    };
    h.send(id, Pdu::bare(Header::TaskMgmtRequest(missing)));
    let Header::TaskMgmtResponse(r) = &h.recv(id)[0].header else {
        panic!()
    };
    assert_eq!(r.response, tmf_response::LUN_DOES_NOT_EXIST);
}

#[test]
fn logout_ends_the_session() {
    let (mut h, id) = ready_session();
    let cmd_sn = h.take_cmd_sn(id);
    let logout = LogoutRequest {
        immediate: true,
        reason: 0,
        itt: 33,
        cmd_sn,
        ..LogoutRequest::default()
    };
    h.send(id, Pdu::bare(Header::LogoutRequest(logout)));
    let pdus = h.recv(id);
    let Header::LogoutResponse(r) = &pdus[0].header else {
        panic!()
    };
    assert_eq!((r.itt, r.response), (33, 0));
    assert!(h.closed.contains(&id));
    assert_eq!(h.nexus_lost, 1);
    assert_eq!(h.ep.session_count(), 0);
}

#[test]
fn a_second_login_with_the_same_isid_reinstates_the_session() {
    let (mut h, first) = ready_session();
    let second = h.connect();
    h.login(second);
    assert!(
        h.closed.contains(&first),
        "the old session's connection closes"
    );
    assert_eq!(h.ep.session_count(), 1);
    let other = h.connect();
    h.login_with(other, 2, Preferences::default(), SessionType::Normal);
    assert_eq!(h.ep.session_count(), 2, "another ISID is another session");
}

#[test]
fn send_targets_continues_long_answers() {
    let mut h = Harness::new(|c| {
        for i in 0..40 {
            c.targets.push(target_config(&format!(
                "iqn.2026-11.test:a-rather-long-target-name-number-{i:03}"
            )));
        }
    });
    let id = h.connect();
    let prefs = Preferences {
        max_recv_data_segment_length: 512,
        ..Preferences::default()
    };
    h.login_with(id, 1, prefs, SessionType::Discovery);
    let text = TextRequest {
        immediate: true,
        final_: true,
        itt: 9,
        ttt: RESERVED_TAG,
        ..TextRequest::default()
    };
    h.send(
        id,
        Pdu::new(
            Header::TextRequest(text.clone()),
            Bytes::from_static(b"SendTargets=All\0"),
        ),
    );
    let mut answer = Vec::new();
    loop {
        let pdus = h.recv(id);
        let Header::TextResponse(r) = &pdus[0].header else {
            panic!()
        };
        assert!(pdus[0].data.len() <= 512);
        answer.extend_from_slice(&pdus[0].data);
        if r.final_ {
            break;
        }
        assert!(r.continue_);
        let more = TextRequest {
            ttt: r.ttt,
            ..text.clone()
        };
        h.send(id, Pdu::bare(Header::TextRequest(more)));
    }
    let pairs = crate::text::decode_pairs(&answer).unwrap();
    let names = pairs.iter().filter(|(k, _)| k == "TargetName").count();
    assert_eq!(names, 41);
    assert!(
        pairs
            .iter()
            .any(|(k, v)| k == "TargetAddress" && v == "127.0.0.1:3260,1")
    );
    let cmd = h.command(id, &[0x12, 0, 0, 0, 96, 0], 96, None, 2, 10);
    h.send(id, cmd);
    assert!(
        matches!(h.recv(id)[0].header, Header::Reject(_)),
        "no SCSI commands in a discovery session"
    );
}

#[test]
fn shutdown_asks_sessions_to_log_out() {
    let (mut h, id) = ready_session();
    h.ep.shutdown(h.now);
    h.run_events();
    let pdus = h.recv(id);
    let Header::AsyncMessage(a) = &pdus[0].header else {
        panic!("Async Message expected")
    };
    assert_eq!(a.async_event, async_event::LOGOUT_REQUEST);
    h.advance(Duration::from_secs(11));
    assert!(
        h.closed.contains(&id),
        "sessions that do not log out are dropped"
    );
}

#[test]
fn data_digest_error_on_data_out_ends_the_task() {
    let mut h = Harness::new(|c| {
        c.preferences.data_digest = vec!["CRC32C".into()];
        c.preferences.initial_r2t = true;
    });
    let id = h.connect();
    let prefs = Preferences {
        data_digest: vec!["CRC32C".into()],
        ..Preferences::default()
    };
    h.login_with(id, 1, prefs, SessionType::Normal);
    h.clear_unit_attention(id);
    let itt = h.next_itt(id);
    let cmd_sn = h.take_cmd_sn(id);
    let mut cmd = h.command(id, &write10(0, 1), 0, Some(Bytes::new()), cmd_sn, itt);
    if let Header::ScsiCommand(c) = &mut cmd.header {
        c.expected_data_transfer_length = 512;
    }
    h.send(id, cmd);
    let Header::R2t(r2t) = h.recv(id)[0].header.clone() else {
        panic!()
    };
    let out = DataOut {
        final_: true,
        lun: Lun::from_index(1),
        itt,
        ttt: r2t.ttt,
        ..DataOut::default()
    };
    let mut buf = BytesMut::new();
    h.clients[&id].encoder.encode(
        &Pdu::new(Header::DataOut(out), Bytes::from(vec![5u8; 512])),
        &mut buf,
    );
    let last = buf.len() - 1;
    buf[last] ^= 0xff;
    h.send_bytes(id, &buf);
    let pdus = h.recv(id);
    assert!(
        matches!(&pdus[0].header, Header::Reject(r) if r.reason == reject_reason::DATA_DIGEST_ERROR)
    );
    assert_eq!(status_of(&pdus[1..]), Some(status::CHECK_CONDITION));
}
