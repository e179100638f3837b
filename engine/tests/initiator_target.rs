//! The initiator's Rust API against our own target, both in this process on
//! real loopback sockets: discovery, INQUIRY/REPORT LUNS/READ CAPACITY,
//! 16 MiB round trips with digests and mutual CHAP, the data-transfer
//! matrix, task management, and recovery through a proxy that drops or
//! black-holes connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iscsi_engine::login::{AuthPolicy, Credentials, TargetNode};
use iscsi_engine::net::initiator::{InitiatorError, Session, SessionConfig, TmfFunction, discover};
use iscsi_engine::net::target::{Devices, ServerOptions, TargetServer};
use iscsi_engine::net::{Network, TokioNetwork};

use iscsi_engine::scsi::{Device, LogicalUnit, LuConfig};
use iscsi_engine::store::{FileStore, MemoryStore};
use iscsi_engine::target::{Acl, Endpoint, EndpointConfig, TargetConfig, default_preferences};
use iscsi_engine::text::Preferences;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const IQN: &str = "iqn.2026-01.org.iscsi-harness.test:disk";
const INITIATOR: &str = "iqn.2026-01.org.iscsi-harness.test:initiator";
const MIB: usize = 1 << 20;

fn creds(user: &str, secret: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: secret.into(),
    }
}

/// Our target on 127.0.0.1:0 with LUN 1: 64 MiB, in memory or in a file.
struct Target {
    addr: SocketAddr,
    backing: Option<PathBuf>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(p) = &self.backing {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct TargetOptions {
    prefs: Preferences,
    auth: AuthPolicy,
    file: Option<&'static str>,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            prefs: default_preferences(),
            auth: AuthPolicy::default(),
            file: None,
        }
    }
}

async fn start_target(opts: TargetOptions) -> Target {
    let size = 64 * MIB as u64;
    let (store, backing): (Box<dyn iscsi_engine::store::BlockStore>, _) = match opts.file {
        Some(name) => {
            let dir = if std::path::Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            let path = dir.join(format!("{name}-{}.img", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let store = FileStore::open(&path, Some(size), false).expect("backing file");
            (Box::new(store), Some(path))
        }
        None => (Box::new(MemoryStore::new(size)), None),
    };
    let lu = LogicalUnit::new(
        LuConfig {
            block_size: 512,
            vendor: "HARNESS".into(),
            product: "VIRTUAL-DISK".into(),
            revision: "0001".into(),
            serial: "0000000000000001".into(),
            removable: false,
            readonly: false,
        },
        store,
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
                auth: opts.auth,
            },
            luns: vec![1],
            acl: vec![Acl::All],
        }],
        preferences: opts.prefs,
        ..EndpointConfig::default()
    };
    let listener = TokioNetwork
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = TargetServer::new(Endpoint::new(config, 1), devices, ServerOptions::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Target {
        addr,
        backing,
        _stop: stop,
    }
}

fn random(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v.into()
}

fn config(addr: SocketAddr) -> SessionConfig {
    SessionConfig::new(INITIATOR, IQN, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_and_describe_the_lun() {
    let t = start_target(TargetOptions::default()).await;
    let records = discover(TokioNetwork, t.addr, INITIATOR, None, 1)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, IQN);
    assert_eq!(records[0].addresses[0].to_string(), format!("{},1", t.addr));
    let s = Session::login(TokioNetwork, config(t.addr), 2)
        .await
        .unwrap();
    assert_eq!(s.report_luns().await.unwrap(), vec![1]);
    let inq = s.inquiry(1).await.unwrap();
    assert_eq!(inq.device_type_name(), "DIRECT_ACCESS");
    assert_eq!(inq.vendor, "HARNESS");
    let cap = s.read_capacity(1).await.unwrap();
    assert_eq!((cap.blocks, cap.block_size), (131_072, 512));
    s.flush(1).await.unwrap();
    s.logout().await.unwrap();
}

/// 16 MiB of random data at LBA 2048, read back, and found in the backing
/// file — plain, with CRC32C digests, with mutual CHAP, and with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_round_trips() {
    for (digests, mutual) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut opts = TargetOptions {
            file: Some("iscsi-initiator-16mib"),
            ..TargetOptions::default()
        };
        let mut c = SessionConfig::new(INITIATOR, IQN, "127.0.0.1:1".parse().unwrap());
        if digests {
            opts.prefs.header_digest = vec!["CRC32C".into()];
            opts.prefs.data_digest = vec!["CRC32C".into()];
        }
        if mutual {
            opts.auth = AuthPolicy {
                chap_accounts: vec![creds("alice", "alice-secret-1")],
                mutual: Some(creds("disk", "target-secret-1")),
            };
            c.chap = Some(creds("alice", "alice-secret-1"));
            c.mutual = Some(creds("disk", "target-secret-1"));
        }
        let t = start_target(opts).await;
        c.portal = t.addr;
        let s = Session::login(TokioNetwork, c, 3).await.unwrap();
        let (_, conn) = s.negotiated();
        assert_eq!((conn.header_digest, conn.data_digest), (digests, digests));
        let data = random(16 * MIB, 4);
        s.write(1, 2048, data.clone()).await.unwrap();
        s.flush(1).await.unwrap();
        let back = s.read(1, 2048, (16 * MIB / 512) as u32).await.unwrap();
        assert!(
            back == data,
            "read back differs (digests {digests}, mutual {mutual})"
        );
        let file = std::fs::read(t.backing.as_ref().unwrap()).unwrap();
        assert!(
            file[2048 * 512..2048 * 512 + 16 * MIB] == data[..],
            "backing file differs"
        );
        s.logout().await.unwrap();
    }
}

/// InitialR2T × ImmediateData × small or large bursts × MaxOutstandingR2T.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfer_matrix() {
    let mut runs = 0;
    for initial_r2t in [true, false] {
        for immediate_data in [true, false] {
            for (first, max) in [(4096, 16384), (262_144, 1_048_576)] {
                for outstanding in [1u16, 4] {
                    let mut opts = TargetOptions::default();
                    opts.prefs.initial_r2t = initial_r2t;
                    opts.prefs.immediate_data = immediate_data;
                    opts.prefs.first_burst_length = first;
                    opts.prefs.max_burst_length = max;
                    opts.prefs.max_outstanding_r2t = outstanding;
                    opts.prefs.max_recv_data_segment_length = 8192;
                    let t = start_target(opts).await;
                    let s = Session::login(TokioNetwork, config(t.addr), runs)
                        .await
                        .unwrap();
                    let (p, _) = s.negotiated();
                    let case = format!("{p:?}");
                    assert_eq!(p.initial_r2t, initial_r2t, "{case}");
                    assert_eq!(p.immediate_data, immediate_data, "{case}");
                    assert_eq!(p.max_outstanding_r2t, outstanding, "{case}");
                    // One large write, and concurrent small ones.
                    let big = random(MIB + 3 * 512, runs);
                    s.write(1, 0, big.clone()).await.unwrap();
                    let mut tasks = Vec::new();
                    for i in 0..8u64 {
                        let s = s.clone();
                        let data = random(64 * 1024 + 512 * i as usize, 100 + i);
                        tasks.push(tokio::spawn(async move {
                            let lba = 10_000 + i * 1000;
                            s.write(1, lba, data.clone()).await.unwrap();
                            let back = s.read(1, lba, (data.len() / 512) as u32).await.unwrap();
                            assert!(back == data);
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                    let back = s.read(1, 0, (big.len() / 512) as u32).await.unwrap();
                    assert!(back == big, "{case}");
                    s.logout().await.unwrap();
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commands_in_flight_from_cloned_handles() {
    let t = start_target(TargetOptions::default()).await;
    let s = Session::login(TokioNetwork, config(t.addr), 5)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let data = random(4096, i);
            s.write(1, i * 8, data.clone()).await.unwrap();
            assert!(s.read(1, i * 8, 8).await.unwrap() == data);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_management_functions() {
    let t = start_target(TargetOptions::default()).await;
    let s = Session::login(TokioNetwork, config(t.addr), 6)
        .await
        .unwrap();
    for f in [
        TmfFunction::AbortTaskSet,
        TmfFunction::ClearTaskSet,
        TmfFunction::LogicalUnitReset,
        TmfFunction::TargetWarmReset,
        TmfFunction::ClearAca,
    ] {
        assert_eq!(s.task_management(1, f, None).await.unwrap(), 0, "{f:?}");
    }
    assert_eq!(
        s.task_management(7, TmfFunction::LogicalUnitReset, None)
            .await
            .unwrap(),
        2,
        "LUN does not exist"
    );
    // ABORT TASK of a finished command.
    let done = s.start_command(1, &[0, 0, 0, 0, 0, 0], Bytes::new(), 0);
    let tag = done.tag();
    let _ = done.wait().await.unwrap();
    assert_eq!(
        s.task_management(1, TmfFunction::AbortTask, Some(tag))
            .await
            .unwrap(),
        1
    );
    // Reads still work after the resets (unit attentions are retried).
    s.read(1, 0, 8).await.unwrap();
    s.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_typed() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = Session::login(TokioNetwork, config(addr), 7)
        .await
        .unwrap_err();
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(
        e.to_string(),
        format!("cannot connect to {addr}: Connection refused")
    );

    let t = start_target(TargetOptions {
        auth: AuthPolicy {
            chap_accounts: vec![creds("alice", "alice-secret-1")],
            mutual: None,
        },
        ..TargetOptions::default()
    })
    .await;
    let mut c = config(t.addr);
    c.chap = Some(creds("alice", "not-the-secret"));
    let e = Session::login(TokioNetwork, c, 8).await.unwrap_err();
    assert_eq!(
        e.login_status(),
        Some(iscsi_engine::login::LoginStatus::AUTHENTICATION_FAILURE),
        "{e}"
    );
    let mut c = config(t.addr);
    c.target_name = "iqn.2026-01.nowhere:none".into();
    let e = Session::login(TokioNetwork, c, 9).await.unwrap_err();
    assert_eq!(e.login_status().map(|s| s.class()), Some(2), "{e}");
}

/// A TCP proxy between initiator and target that can reset every
/// connection, black-hole them, or stop accepting.
/// Each forwarding task, and the black-hole switch of its connection.
type Pipes = Arc<Mutex<Vec<(AbortHandle, Arc<AtomicBool>)>>>;

struct Proxy {
    addr: SocketAddr,
    conns: Pipes,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Pipes = Arc::default();
        let c = conns.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let b = Arc::new(AtomicBool::new(false));
                let up = tokio::spawn(pipe(cr, sw, b.clone()));
                let down = tokio::spawn(pipe(sr, cw, b.clone()));
                let mut list = c.lock().unwrap();
                list.push((up.abort_handle(), b.clone()));
                list.push((down.abort_handle(), b));
            }
        })
        .abort_handle();
        Proxy {
            addr,
            conns,
            accept,
        }
    }

    /// Resets every connection through the proxy.
    fn drop_all(&self) {
        for (c, _) in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// The connections open now go silent in both directions (a
    /// partition without a reset); new ones pass.
    fn black_hole(&self) {
        for (_, b) in self.conns.lock().unwrap().iter() {
            b.store(true, Ordering::Relaxed);
        }
    }

    /// Stops accepting: connects are refused from now on.
    fn refuse(&self) {
        self.accept.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    black_hole: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if black_hole.load(Ordering::Relaxed) {
                    continue;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Connections reset in the middle of a stream of writes: the session is
/// reinstated, every write completes, and every acknowledged write reads
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_connection_resets() {
    let t = start_target(TargetOptions::default()).await;
    let proxy = Proxy::start(t.addr).await;
    let s = Session::login(TokioNetwork, config(proxy.addr), 10)
        .await
        .unwrap();
    let acked: Arc<Mutex<Vec<(u64, Bytes)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (s, acked) = (s.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..48u64 {
                let lba = (w * 48 + i) * 256;
                let data = random(128 * 1024, w * 1000 + i);
                s.write(1, lba, data.clone()).await.unwrap();
                acked.lock().unwrap().push((lba, data));
            }
        }));
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.drop_all();
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(s.reinstatements() >= 1, "the session was reinstated");
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 4 * 48);
    for (lba, data) in acked {
        assert!(s.read(1, lba, 256).await.unwrap() == data, "LBA {lba}");
    }
    s.logout().await.unwrap();
}

/// A connection that goes silent is found dead by the NOP-Out ping and
/// replaced; a command in flight is retried on the new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_detected_by_ping() {
    let t = start_target(TargetOptions::default()).await;
    let proxy = Proxy::start(t.addr).await;
    let mut c = config(proxy.addr);
    c.nop_interval = Some(Duration::from_millis(300));
    c.nop_timeout = Duration::from_millis(300);
    let s = Session::login(TokioNetwork, c, 11).await.unwrap();
    s.read(1, 0, 1).await.unwrap();
    proxy.black_hole();
    let pending = {
        let s = s.clone();
        tokio::spawn(async move { s.write(1, 64, random(4096, 1)).await })
    };
    tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the write completes on a new connection")
        .unwrap()
        .unwrap();
    assert_eq!(s.reinstatements(), 1);
    assert!(s.read(1, 64, 8).await.unwrap() == random(4096, 1));
}

/// When the target stays unreachable, outstanding commands fail with the
/// replacement timeout instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replacement_timeout_ends_a_lost_session() {
    let t = start_target(TargetOptions::default()).await;
    let proxy = Proxy::start(t.addr).await;
    let mut c = config(proxy.addr);
    c.replacement_timeout = Duration::from_secs(2);
    let s = Session::login(TokioNetwork, c, 12).await.unwrap();
    s.read(1, 0, 1).await.unwrap();
    proxy.refuse();
    proxy.drop_all();
    let started = tokio::time::Instant::now();
    let e = s.read(1, 0, 1).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, InitiatorError::ReplacementTimeout { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(matches!(
        s.read(1, 0, 1).await,
        Err(InitiatorError::ReplacementTimeout { .. })
    ));
}
