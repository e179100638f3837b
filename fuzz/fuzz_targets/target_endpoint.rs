//! Fuzzes the target endpoint (RFC 7143 §6, §7, §11): arbitrary bytes on a
//! connection, from its first byte (the login phase) or after a real login
//! (the full-feature phase), cut into arbitrary chunks and interleaved
//! with timeouts, must never panic. Every PDU the target queues must
//! encode, every command it hands over runs on a real logical unit, and a
//! closed connection stays closed.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use iscsi_engine::login::initiator::{InitiatorConfig, InitiatorLogin, InitiatorLoginStep};
use iscsi_engine::login::target::{AuthPolicy, TargetNode};
use iscsi_engine::pdu::{Decoder, Encoder, Header, Isid};
use iscsi_engine::scsi::{Device, LogicalUnit, LuConfig};
use iscsi_engine::store::MemoryStore;
use iscsi_engine::target::{Acl, ConnId, Endpoint, EndpointConfig, Event, TargetConfig};
use iscsi_engine::text::SessionType;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

const TARGET: &str = "iqn.2026-11.fuzz:disk";
const INITIATOR: &str = "iqn.2026-11.fuzz:host";

struct World {
    ep: Endpoint,
    device: Device,
    now: Instant,
    closed: bool,
}

impl World {
    fn new() -> (World, ConnId) {
        let config = EndpointConfig {
            targets: vec![TargetConfig {
                node: TargetNode {
                    name: TARGET.into(),
                    alias: None,
                    portal_group_tag: 1,
                    auth: AuthPolicy::default(),
                },
                luns: vec![1],
                acl: vec![Acl::All],
            }],
            ..EndpointConfig::default()
        };
        let lu = LuConfig {
            block_size: 512,
            vendor: "FUZZ".into(),
            product: "DISK".into(),
            revision: "1".into(),
            serial: "1".into(),
            removable: true,
            readonly: false,
        };
        let mut luns = BTreeMap::new();
        luns.insert(1, LogicalUnit::new(lu, Box::new(MemoryStore::new(1 << 20))));
        let now = Instant::now();
        let mut ep = Endpoint::new(config, 7);
        let id = ep.accept(
            "127.0.0.1:50000".parse().unwrap(),
            "127.0.0.1:3260".parse().unwrap(),
            now,
        );
        let world = World {
            ep,
            device: Device::new(luns),
            now,
            closed: false,
        };
        (world, id)
    }

    /// Runs the SCSI layer for what the endpoint asked, and returns the
    /// bytes it queued on `id`.
    fn pump(&mut self, id: ConnId) -> BytesMut {
        while let Some(event) = self.ep.poll_event() {
            match event {
                Event::Execute(x) => {
                    let device = &mut self.device;
                    let result = x.with_request(|request| device.execute(x.lun, request));
                    self.ep.complete(x.task, result, self.now);
                }
                Event::TaskManagement {
                    nexus,
                    lun,
                    function,
                    ..
                } => self.device.task_management(&nexus, lun, function),
                Event::NexusLost { nexus, .. } => self.device.nexus_lost(&nexus),
                Event::Close(c) if c == id => self.closed = true,
                Event::Close(_) | Event::Transmit(_) => {}
            }
        }
        let mut out = BytesMut::new();
        while let Some(t) = self.ep.poll_transmit(id) {
            Encoder { digests: t.digests }.encode(&t.pdu, &mut out);
        }
        out
    }

    fn input(&mut self, id: ConnId, bytes: &[u8]) -> BytesMut {
        let mut buf = BytesMut::from(bytes);
        self.ep.handle_input(id, &mut buf, self.now);
        self.pump(id)
    }

    /// A real login with AuthMethod None; false if the target refused.
    fn login(&mut self, id: ConnId) -> bool {
        let mut login = InitiatorLogin::new(InitiatorConfig::leading(
            INITIATOR,
            Isid([0x80, 0, 0, 0, 0, 1]),
            SessionType::Normal,
            Some(TARGET),
        ));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let decoder = Decoder::default();
        let mut request = BytesMut::new();
        Encoder::default().encode(&login.start(), &mut request);
        for _ in 0..8 {
            let mut answer = self.input(id, &request);
            request.clear();
            while let Ok(Some(pdu)) = decoder.decode(&mut answer) {
                let Header::LoginResponse(h) = &pdu.header else {
                    return false;
                };
                match login.handle(h, &pdu.data, &mut rng) {
                    InitiatorLoginStep::Send(next) => {
                        Encoder::default().encode(&next, &mut request)
                    }
                    InitiatorLoginStep::Complete(_) => return true,
                    InitiatorLoginStep::Failed(_) => return false,
                }
            }
        }
        false
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, mut rest)) = input.split_first() else {
        return;
    };
    let (mut world, id) = World::new();
    if mode & 1 == 1 {
        assert!(world.login(id), "a clean login must succeed");
    }
    // Each chunk: one length byte (0 means a timeout tick of up to 8 s).
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            let tick = tail.first().copied().unwrap_or(1);
            world.now += Duration::from_millis(u64::from(tick) * 32);
            world.ep.handle_timeout(world.now);
            world.pump(id);
            rest = tail.get(1..).unwrap_or_default();
            continue;
        }
        let n = usize::from(len).min(tail.len());
        let was_closed = world.closed;
        world.input(id, &tail[..n]);
        assert!(!was_closed || world.closed, "a closed connection reopened");
        rest = &tail[n..];
    }
    world.ep.handle_closed(id, world.now);
    world.pump(id);
});
