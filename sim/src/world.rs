//! The world: a seeded turmoil simulation with one target host (the
//! production target driver and endpoint over [`SimDisk`]s) and initiator
//! hosts running scenario software, driven step by step so that faults
//! land at their planned times.
//!
//! A run has two phases. In the *safety* phase the fault plan runs and
//! every result is checked (oracle, wire checker, scenario assertions).
//! At `heal_at` every fault is healed (links repaired and released, routes
//! restored, crashed hosts restarted, the disk fast again) and the
//! *liveness* phase begins: the scenario's software must finish within
//! `liveness` of simulated time, or the run fails.
//!
//! Determinism: turmoil gets an explicit `rng_seed` and `epoch`; hosts run
//! on single-threaded runtimes stepped in registration order; every
//! `select!` in the engines is `biased`, so tokio's own (OS-seeded) RNG
//! never picks a branch; every other random choice derives from the seed
//! ([`Seeds`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use iscsi_engine::login::{AuthPolicy, TargetNode};
use iscsi_engine::net::Network;
use iscsi_engine::net::target::{Devices, ServerOptions, TargetServer};
use iscsi_engine::planted::PlantedBug;
use iscsi_engine::scsi::{Device, LogicalUnit, LuConfig};
use iscsi_engine::target::{Acl, Endpoint, EndpointConfig, TargetConfig, default_preferences};
use tracing_subscriber::layer::SubscriberExt;

use crate::backend::{Latency, SharedLatency, SimBackend};
use crate::disk::{DiskConfig, SimDisk};
use crate::faults::{Action, FaultPlan, LINK_LATENCY};
use crate::net::{Routes, SimNetwork};
use crate::oracle::Oracle;
use crate::panics;
use crate::rng::Seeds;
use crate::trace::{Log, TraceLayer};
use crate::wire::{EPOCH, Wire};

/// The target host's name.
pub const TARGET: &str = "target";
/// The iSCSI port: Wireshark's dissector looks for it.
pub const PORT: u16 = 3260;
/// The target node every scenario serves.
pub const TARGET_IQN: &str = "iqn.2026-01.org.iscsi-harness.sim:disk";

/// The result of an initiator host's software.
pub type SoftwareResult = Result<(), String>;
/// An initiator host's software: called again after each restart.
pub type Software = Rc<dyn Fn(HostCtx) -> Pin<Box<dyn Future<Output = SoftwareResult>>>>;

/// Boxes an async block as [`Software`].
pub fn software<F, Fut>(f: F) -> Software
where
    F: Fn(HostCtx) -> Fut + 'static,
    Fut: Future<Output = SoftwareResult> + 'static,
{
    Rc::new(move |ctx| Box::pin(f(ctx)))
}

/// One logical unit of the target.
#[derive(Debug, Clone)]
pub struct LunSetup {
    pub lun: u16,
    pub config: LuConfig,
    pub disk: DiskConfig,
}

/// What the target host serves.
#[derive(Debug, Clone)]
pub struct TargetSetup {
    pub config: EndpointConfig,
    pub luns: Vec<LunSetup>,
    pub latency: Latency,
}

impl TargetSetup {
    /// One target node, [`TARGET_IQN`], with `auth`, LUN 1 of `capacity`
    /// bytes (512-byte blocks, write cache on), open to everyone.
    pub fn standard(auth: AuthPolicy, capacity: u64) -> TargetSetup {
        TargetSetup {
            config: EndpointConfig {
                targets: vec![TargetConfig {
                    node: TargetNode {
                        name: TARGET_IQN.into(),
                        alias: None,
                        portal_group_tag: 1,
                        auth,
                    },
                    luns: vec![1],
                    acl: vec![Acl::All],
                }],
                preferences: default_preferences(),
                queue_depth: 64,
                nop_in_interval: Some(Duration::from_secs(5)),
                nop_in_timeout: Duration::from_secs(5),
                login_timeout: Duration::from_secs(15),
                ..EndpointConfig::default()
            },
            luns: vec![LunSetup {
                lun: 1,
                config: lu_config(1),
                disk: DiskConfig {
                    capacity,
                    volatile_cache: true,
                },
            }],
            latency: Latency::SSD,
        }
    }
}

/// The configuration of a simulated logical unit.
pub fn lu_config(lun: u16) -> LuConfig {
    LuConfig {
        block_size: 512,
        vendor: "HARNESS".into(),
        product: "SIM-DISK".into(),
        revision: "0001".into(),
        serial: format!("SIM{lun:04}"),
        removable: false,
        readonly: false,
    }
}

/// One initiator host.
#[derive(Clone)]
pub struct InitiatorSetup {
    pub name: String,
    pub software: Software,
}

/// Everything a scenario sets up.
pub struct WorldSetup {
    pub target: TargetSetup,
    pub initiators: Vec<InitiatorSetup>,
    pub faults: FaultPlan,
    /// The end of the safety phase: every fault is healed here.
    pub heal_at: Duration,
    /// The software must finish this long after `heal_at`.
    pub liveness: Duration,
    /// turmoil's step: network delivery happens on step boundaries.
    pub tick: Duration,
    /// Whether the wire checker checks PDUs (off for scenarios that send
    /// malformed PDUs on purpose).
    pub check_wire: bool,
    /// The scenario itself makes commands fail (it cuts links, resets or
    /// aborts on purpose), so transport errors are expected.
    pub disruptive: bool,
}

impl WorldSetup {
    pub fn new(target: TargetSetup) -> WorldSetup {
        WorldSetup {
            target,
            initiators: Vec::new(),
            faults: FaultPlan::new(),
            heal_at: Duration::from_secs(30),
            liveness: Duration::from_secs(120),
            tick: Duration::from_millis(1),
            check_wire: true,
            disruptive: false,
        }
    }

    pub fn initiator(&mut self, name: &str, software: Software) -> &mut Self {
        self.initiators.push(InitiatorSetup {
            name: name.to_string(),
            software,
        });
        self
    }
}

/// Which phase the run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Safety,
    Liveness,
}

struct Inner {
    log: Log,
    seeds: Seeds,
    oracle: Mutex<Oracle>,
    healed: AtomicBool,
    disruptive: AtomicBool,
    disks: BTreeMap<u16, SimDisk>,
    server: Mutex<Option<Arc<TargetServer<SimBackend>>>>,
    done: Mutex<BTreeSet<String>>,
    routes: Arc<Routes>,
    wire: Arc<Wire>,
    latency: SharedLatency,
    base_latency: Latency,
    planted: Option<PlantedBug>,
    /// Blocks with a write in flight, and the host writing them (see
    /// [`World::try_lock_blocks`]).
    locks: Mutex<BTreeMap<(u16, u64), String>>,
}

/// What the hosts of a run share: the log, the oracle, the disks, the
/// phase. Cheap to clone.
#[derive(Clone)]
pub struct World(Arc<Inner>);

impl World {
    pub fn log(&self) -> &Log {
        &self.0.log
    }

    pub fn seeds(&self) -> Seeds {
        self.0.seeds
    }

    pub fn oracle(&self) -> MutexGuard<'_, Oracle> {
        self.0.oracle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn phase(&self) -> Phase {
        if self.0.healed.load(Ordering::Relaxed) {
            Phase::Liveness
        } else {
            Phase::Safety
        }
    }

    /// Whether faults that can fail commands are planned in this run (a
    /// transport error without one is a bug).
    pub fn disruptive(&self) -> bool {
        self.0.disruptive.load(Ordering::Relaxed)
    }

    /// Declares that the scenario itself disrupts the transport (it cuts
    /// links or aborts tasks on purpose).
    pub fn set_disruptive(&self) {
        self.0.disruptive.store(true, Ordering::Relaxed);
    }

    pub fn disk(&self, lun: u16) -> Option<&SimDisk> {
        self.0.disks.get(&lun)
    }

    /// The running target server (for scenario checks on its state).
    pub fn server(&self) -> Option<Arc<TargetServer<SimBackend>>> {
        self.0
            .server
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn planted(&self) -> Option<PlantedBug> {
        self.0.planted
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.0.routes
    }

    /// Claims blocks `lba..lba+n` of `lun` for a write, all or none: the
    /// workloads, like a file system, never have two writes in flight to
    /// one block (see [`crate::oracle`]).
    pub fn try_lock_blocks(&self, host: &str, lun: u16, lba: u64, n: u64) -> bool {
        let mut locks = self.0.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.range((lun, lba)..(lun, lba + n)).next().is_some() {
            return false;
        }
        locks.extend((lba..lba + n).map(|b| ((lun, b), host.to_string())));
        true
    }

    /// A crashed host's writes are over (their outcome unknown).
    fn unlock_host(&self, host: &str) {
        let mut locks = self.0.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, h| h != host);
    }

    pub fn unlock_blocks(&self, lun: u16, lba: u64, n: u64) {
        let mut locks = self.0.locks.lock().unwrap_or_else(|p| p.into_inner());
        for b in lba..lba + n {
            locks.remove(&(lun, b));
        }
    }

    fn mark_done(&self, host: &str) {
        self.0
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string());
    }

    fn done_count(&self) -> usize {
        self.0.done.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// What an initiator host's software gets each time it starts.
#[derive(Clone)]
pub struct HostCtx {
    pub name: Rc<str>,
    pub net: SimNetwork,
    /// The target's portal.
    pub portal: SocketAddr,
    /// How many times this host was restarted before this start.
    pub restarts: u32,
    pub world: World,
}

impl HostCtx {
    /// A seed for `label`, distinct per host and per restart.
    pub fn seed(&self, label: &str) -> u64 {
        self.world
            .seeds()
            .derive(&format!("{}/{}/{label}", self.name, self.restarts))
    }

    /// A trace line from this host.
    pub fn trace(&self, what: impl std::fmt::Display) {
        self.world.log().line(&self.name, what);
    }

    /// Records a failure from this host.
    pub fn fail(&self, what: impl std::fmt::Display) {
        self.world.log().fail(&self.name, what);
    }
}

/// Options of one run, beyond the scenario's setup.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub keep_trace: bool,
    pub pcap: bool,
    pub planted: Option<PlantedBug>,
    /// Fault kinds on in this run that can fail commands.
    pub disruptive: bool,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub failures: Vec<String>,
    pub trace_hash: u64,
    pub trace_lines: Option<Vec<String>>,
    pub trace_len: u64,
    pub tail: Vec<String>,
    pub sim_time: Duration,
    pub pcap: Option<Vec<u8>>,
    pub oracle: crate::oracle::OracleStats,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs a world to the end.
pub fn run(setup: WorldSetup, seeds: Seeds, options: &RunOptions) -> RunResult {
    let log = Log::new(options.keep_trace);
    let wire = Wire::new(log.clone(), options.pcap, setup.check_wire);
    let disks: BTreeMap<u16, SimDisk> = setup
        .target
        .luns
        .iter()
        .map(|l| (l.lun, SimDisk::new(l.disk)))
        .collect();
    let block_size = setup
        .target
        .luns
        .first()
        .map_or(512, |l| l.config.block_size);
    let world = World(Arc::new(Inner {
        log: log.clone(),
        seeds,
        oracle: Mutex::new(Oracle::new(block_size)),
        healed: AtomicBool::new(false),
        disruptive: AtomicBool::new(options.disruptive || setup.disruptive),
        disks,
        server: Mutex::new(None),
        done: Mutex::new(BTreeSet::new()),
        routes: Routes::new(),
        wire: wire.clone(),
        latency: Arc::new(Mutex::new(setup.target.latency)),
        base_latency: setup.target.latency,
        locks: Mutex::new(BTreeMap::new()),
        planted: options.planted,
    }));
    let subscriber = tracing_subscriber::registry().with(TraceLayer::new(log.clone()));
    let sim_time = tracing::subscriber::with_default(subscriber, || {
        panics::capture(|| drive(setup, &world)).unwrap_or_else(|panic| {
            log.fail("-", format_args!("panic: {panic}"));
            log.now()
        })
    });
    let trace = log.trace();
    RunResult {
        failures: log.failures(),
        trace_hash: trace.hash(),
        trace_lines: trace.lines().map(<[String]>::to_vec),
        trace_len: trace.len(),
        tail: trace.tail().cloned().collect(),
        sim_time,
        pcap: wire.pcap(),
        oracle: world.oracle().stats(),
    }
}

/// The world's epoch: 2026-01-01T00:00:00Z (fixed, so that nothing reads
/// the wall clock).
fn epoch() -> std::time::SystemTime {
    UNIX_EPOCH + EPOCH
}

fn drive(setup: WorldSetup, world: &World) -> Duration {
    let log = world.log().clone();
    let end = setup.heal_at + setup.liveness;
    let mut sim = turmoil::Builder::new()
        .rng_seed(world.seeds().derive("turmoil"))
        .epoch(epoch())
        .simulation_duration(end + Duration::from_secs(60))
        .tick_duration(setup.tick)
        .min_message_latency(Duration::ZERO)
        .max_message_latency(LINK_LATENCY)
        .tcp_capacity(1024)
        .build();
    let target = Rc::new(setup.target);
    register_target(&mut sim, world, target.clone());
    let names: Vec<String> = setup.initiators.iter().map(|i| i.name.clone()).collect();
    for init in &setup.initiators {
        register_initiator(&mut sim, world, init.clone());
    }
    let mut hosts = vec![TARGET.to_string()];
    hosts.extend(names.iter().cloned());
    let actions = setup.faults.actions().to_vec();
    let mut next = 0;
    let mut crashed: BTreeSet<String> = BTreeSet::new();
    let mut healed = false;
    let mut fault_rng = world.seeds().rng("crash-outcomes");
    loop {
        let now = sim.elapsed();
        log.set_clock(now);
        while next < actions.len() && actions[next].0 <= now && !healed {
            let action = &actions[next].1;
            next += 1;
            log.line("world", action);
            apply(
                &mut sim,
                world,
                action,
                &hosts,
                &mut crashed,
                &mut fault_rng,
            );
        }
        if !healed && now >= setup.heal_at {
            healed = true;
            heal(&mut sim, world, &hosts, &mut crashed);
            world.0.healed.store(true, Ordering::Relaxed);
            log.line("world", "healed: liveness phase");
        }
        if let Err(e) = sim.step() {
            log.fail("world", format_args!("host error: {e}"));
            break;
        }
        if let Some(panic) = panics::take() {
            log.fail("world", format_args!("panic: {panic}"));
            break;
        }
        if log.failed() {
            break;
        }
        if world.done_count() == names.len() {
            log.set_clock(sim.elapsed());
            log.line("world", "all initiators finished");
            break;
        }
        if sim.elapsed() > end {
            log.fail(
                "world",
                format_args!(
                    "liveness: the initiators did not finish within {}s of the faults healing",
                    setup.liveness.as_secs()
                ),
            );
            break;
        }
    }
    sim.elapsed()
}

fn register_target(sim: &mut turmoil::Sim<'_>, world: &World, setup: Rc<TargetSetup>) {
    let world = world.clone();
    let starts = Rc::new(Cell::new(0u32));
    sim.host(TARGET, move || {
        let restarts = starts.get();
        starts.set(restarts + 1);
        let world = world.clone();
        let setup = setup.clone();
        let mut config = setup.config.clone();
        config.planted = world.planted();
        let mut luns = BTreeMap::new();
        for l in &setup.luns {
            let disk = world.disk(l.lun).expect("disk per lun").clone();
            luns.insert(l.lun, LogicalUnit::new(l.config.clone(), Box::new(disk)));
        }
        let mut device = Device::new(luns);
        device.set_planted(world.planted());
        let devices = Devices::new(BTreeMap::from([(TARGET_IQN.to_string(), device)]));
        let backend = SimBackend::new(
            devices,
            world.0.latency.clone(),
            world.seeds().rng(&format!("disk-latency/{restarts}")),
        );
        let endpoint = Endpoint::new(config, world.seeds().derive(&format!("target/{restarts}")));
        async move {
            let server = TargetServer::new(endpoint, backend, ServerOptions::default());
            *world.0.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server.clone());
            let net = SimNetwork::new(TARGET, world.0.routes.clone(), world.0.wire.clone());
            let listener = net
                .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT))
                .await?;
            server.serve(listener, std::future::pending()).await?;
            Ok(())
        }
    });
}

fn register_initiator(sim: &mut turmoil::Sim<'_>, world: &World, init: InitiatorSetup) {
    let world = world.clone();
    let starts = Rc::new(Cell::new(0u32));
    let name: Rc<str> = init.name.as_str().into();
    let software = init.software.clone();
    let done = Rc::new(RefCell::new(false));
    sim.host(init.name.as_str(), move || {
        let restarts = starts.get();
        starts.set(restarts + 1);
        let ctx = HostCtx {
            name: name.clone(),
            net: SimNetwork::new(&name, world.0.routes.clone(), world.0.wire.clone()),
            portal: SocketAddr::new(turmoil::lookup(TARGET), PORT),
            restarts,
            world: world.clone(),
        };
        let run = (software)(ctx.clone());
        let done = done.clone();
        async move {
            if *done.borrow() {
                return Ok(());
            }
            match run.await {
                Ok(()) => {
                    *done.borrow_mut() = true;
                    ctx.world.mark_done(&ctx.name);
                }
                Err(e) => ctx.fail(e),
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    world: &World,
    action: &Action,
    hosts: &[String],
    crashed: &mut BTreeSet<String>,
    rng: &mut rand_chacha::ChaCha8Rng,
) {
    let routes = &world.0.routes;
    match action {
        Action::Partition { a, b, how } => {
            sim.partition(a.as_str(), b.as_str());
            routes.set_down(a, b, *how);
            routes.set_down(b, a, *how);
        }
        Action::PartitionOneWay { from, to, how } => {
            sim.partition_oneway(from.as_str(), to.as_str());
            routes.set_down(from, to, *how);
        }
        Action::Repair { a, b } => {
            sim.release(a.as_str(), b.as_str());
            sim.repair(a.as_str(), b.as_str());
            routes.set_up(a, b);
            routes.set_up(b, a);
        }
        Action::Hold { a, b } => sim.hold(a.as_str(), b.as_str()),
        Action::Release { a, b } => sim.release(a.as_str(), b.as_str()),
        Action::LinkLatency { a, b, max } => {
            sim.set_link_max_message_latency(a.as_str(), b.as_str(), *max)
        }
        Action::Crash { host, silent } => {
            if crashed.contains(host) {
                return;
            }
            if *silent {
                // A power cut: nothing the host's sockets would send on
                // their way down reaches anyone.
                for other in hosts.iter().filter(|h| *h != host) {
                    sim.partition(host.as_str(), other.as_str());
                }
            }
            sim.crash(host.as_str());
            if *silent {
                for other in hosts.iter().filter(|h| *h != host) {
                    sim.repair(host.as_str(), other.as_str());
                }
            }
            crashed.insert(host.clone());
            world.unlock_host(host);
            if host == TARGET {
                for disk in world.0.disks.values() {
                    disk.crash(rng);
                }
                world.oracle().crash();
                *world.0.server.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        Action::Restart { host } => {
            if crashed.remove(host) {
                sim.bounce(host.as_str());
            }
        }
        Action::DiskLatency(l) => {
            *world.0.latency.lock().unwrap_or_else(|p| p.into_inner()) = *l;
        }
        Action::BadSector { lun, offset } => {
            if let Some(d) = world.disk(*lun) {
                d.add_bad_sector(*offset);
            }
        }
    }
}

/// Heals everything at the end of the safety phase.
fn heal(
    sim: &mut turmoil::Sim<'_>,
    world: &World,
    hosts: &[String],
    crashed: &mut BTreeSet<String>,
) {
    for (i, a) in hosts.iter().enumerate() {
        for b in &hosts[i + 1..] {
            sim.release(a.as_str(), b.as_str());
            sim.repair(a.as_str(), b.as_str());
            sim.set_link_max_message_latency(a.as_str(), b.as_str(), LINK_LATENCY);
        }
    }
    world.0.routes.clear();
    for host in std::mem::take(crashed) {
        world.log().line("world", format_args!("restart {host}"));
        sim.bounce(host.as_str());
    }
    *world.0.latency.lock().unwrap_or_else(|p| p.into_inner()) = world.0.base_latency;
}
