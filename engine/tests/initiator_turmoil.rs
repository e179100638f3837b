//! The initiator's async API inside a turmoil simulation, against our
//! target on another simulated host: the driver only uses `tokio::time` and
//! the injected seed, so it runs on simulated time, survives a partition
//! that heals, gives up after the replacement timeout when it does not, and
//! does the same thing twice for the same seed.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iscsi_engine::login::{AuthPolicy, TargetNode};
use iscsi_engine::net::initiator::{InitiatorError, Session, SessionConfig};
use iscsi_engine::net::target::{Devices, ServerOptions, TargetServer};
use iscsi_engine::net::{Listener, Network};
use iscsi_engine::scsi::{Device, LogicalUnit, LuConfig};
use iscsi_engine::store::MemoryStore;
use iscsi_engine::target::{Acl, Endpoint, EndpointConfig, TargetConfig};

const IQN: &str = "iqn.2026-01.org.iscsi-harness.sim:disk";
const PORT: u16 = 3260;

/// turmoil's simulated TCP as a [`Network`].
#[derive(Clone, Copy)]
struct Turmoil;

struct TurmoilListener(turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Network for Turmoil {
    type Stream = turmoil::net::TcpStream;
    type Listener = TurmoilListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<TurmoilListener> {
        turmoil::net::TcpListener::bind(addr)
            .await
            .map(TurmoilListener)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

fn target_host(sim: &mut turmoil::Sim<'_>) {
    sim.host("target", || async {
        let lu = LogicalUnit::new(
            LuConfig {
                block_size: 512,
                vendor: "HARNESS".into(),
                product: "SIM-DISK".into(),
                revision: "0001".into(),
                serial: "0001".into(),
                removable: false,
                readonly: false,
            },
            Box::new(MemoryStore::new(16 << 20)),
        );
        let devices = Devices::new(BTreeMap::from([(
            IQN.to_string(),
            Device::new(BTreeMap::from([(1u16, lu)])),
        )]));
        let config = EndpointConfig {
            targets: vec![TargetConfig {
                node: TargetNode {
                    name: IQN.into(),
                    alias: None,
                    portal_group_tag: 1,
                    auth: AuthPolicy::default(),
                },
                luns: vec![1],
                acl: vec![Acl::All],
            }],
            ..EndpointConfig::default()
        };
        let listener = Turmoil
            .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
            .await?;
        let server = TargetServer::new(Endpoint::new(config, 5), devices, ServerOptions::default());
        server.serve(listener, std::future::pending()).await?;
        Ok(())
    });
}

fn portal() -> SocketAddr {
    SocketAddr::new(turmoil::lookup("target"), PORT)
}

fn block(i: u64) -> Bytes {
    Bytes::from(vec![i as u8 ^ 0x5a; 4096])
}

fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(600))
        .build()
}

/// Writes from four tasks while the network is partitioned for 20 s: every
/// write completes, on a reinstated session, and reads back. Returns the
/// simulated completion time of each write.
fn partition_that_heals(seed: u64) -> Vec<(u64, Duration)> {
    let mut sim = sim(seed);
    target_host(&mut sim);
    let log: Arc<Mutex<Vec<(u64, Duration)>>> = Arc::default();
    let l = log.clone();
    sim.client("initiator", async move {
        let config = SessionConfig::new("iqn.2026-01.sim:initiator", IQN, portal());
        let s = Session::login(Turmoil, config, seed).await?;
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let (s, l) = (s.clone(), l.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25u64 {
                    let n = w * 25 + i;
                    s.write(1, n * 8, block(n)).await.expect("write");
                    l.lock().unwrap().push((n, start.elapsed()));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        turmoil::partition("initiator", "target");
        tokio::time::sleep(Duration::from_secs(20)).await;
        turmoil::repair("initiator", "target");
        for t in tasks {
            t.await?;
        }
        assert!(s.reinstatements() >= 1, "the session was reinstated");
        for n in 0..100u64 {
            assert_eq!(s.read(1, n * 8, 8).await?, block(n), "block {n}");
        }
        s.logout().await?;
        Ok(())
    });
    sim.run().expect("simulation");
    log.lock().unwrap().clone()
}

#[test]
fn a_partition_that_heals_loses_no_write() {
    let log = partition_that_heals(1);
    assert_eq!(log.len(), 100);
    assert!(
        log.iter().any(|(_, t)| *t > Duration::from_secs(23)),
        "some writes waited for the repair"
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    assert_eq!(partition_that_heals(9), partition_that_heals(9));
}

#[test]
fn a_partition_that_lasts_fails_commands_after_the_replacement_timeout() {
    let mut sim = sim(3);
    target_host(&mut sim);
    sim.client("initiator", async {
        let mut config = SessionConfig::new("iqn.2026-01.sim:initiator", IQN, portal());
        config.replacement_timeout = Duration::from_secs(60);
        let s = Session::login(Turmoil, config, 3).await?;
        s.write(1, 0, block(1)).await?;
        turmoil::partition("initiator", "target");
        let start = tokio::time::Instant::now();
        let e = s.read(1, 0, 8).await.unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(e, InitiatorError::ReplacementTimeout { .. }),
            "{e}"
        );
        // NOP-Out detects the dead connection (5 + 5 s), then 60 s of
        // reconnection attempts.
        assert!(
            took > Duration::from_secs(60) && took < Duration::from_secs(75),
            "{took:?}"
        );
        Ok(())
    });
    sim.run().expect("simulation");
}
