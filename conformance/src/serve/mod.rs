//! `iscsi-harness target`: serve target nodes on real sockets, from flags
//! or from a TOML file, until SIGINT or SIGTERM.

mod config_file;
pub mod spec;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use iscsi_engine::login::target::{AuthPolicy, Credentials, TargetNode};
use iscsi_engine::net::target::{Devices, ServerOptions, TargetServer};
use iscsi_engine::net::{Network, TokioNetwork};
use iscsi_engine::scsi::{Device, LogicalUnit, LuConfig};
use iscsi_engine::store::{BlockStore, DeviceStore, FileStore, MemoryStore};
use iscsi_engine::target::{Acl, Endpoint, EndpointConfig, TargetConfig, default_preferences};

pub use config_file::load as load_config_file;
use spec::{Backing, LunSpec};

/// The default target name when `--iqn` is not given.
pub const DEFAULT_IQN: &str = "iqn.2026-11.org.iscsi-harness:disk";

/// One target node as flags or the configuration file describe it.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub iqn: String,
    pub alias: Option<String>,
    pub luns: Vec<LunSpec>,
    pub chap: Vec<(String, String)>,
    pub mutual_chap: Option<(String, String)>,
    pub allow: Vec<Acl>,
}

/// Everything needed to start serving.
#[derive(Debug, Clone)]
pub struct ServeSpec {
    pub listen: SocketAddr,
    pub targets: Vec<TargetSpec>,
    pub params: Vec<String>,
    pub queue_depth: u32,
}

/// Builds the endpoint configuration and the devices. Errors are one line.
pub fn build(spec: &ServeSpec) -> Result<(EndpointConfig, Devices), String> {
    let mut config = EndpointConfig {
        preferences: default_preferences(),
        queue_depth: spec.queue_depth,
        ..Default::default()
    };
    for p in &spec.params {
        spec::apply_param(&mut config.preferences, p)?;
    }
    let mut targets = BTreeMap::new();
    if spec.targets.is_empty() {
        return Err("no target to serve".into());
    }
    for t in &spec.targets {
        if !t.iqn.starts_with("iqn.") && !t.iqn.starts_with("eui.") && !t.iqn.starts_with("naa.") {
            return Err(format!(
                "target name {:?} must start with iqn., eui. or naa.",
                t.iqn
            ));
        }
        if config.target(&t.iqn).is_some() {
            return Err(format!("target {} is configured twice", t.iqn));
        }
        let mut luns = BTreeMap::new();
        for lun in &t.luns {
            if luns.contains_key(&lun.id) {
                return Err(format!("{}: LUN {} is configured twice", t.iqn, lun.id));
            }
            luns.insert(lun.id, logical_unit(&t.iqn, lun)?);
        }
        let auth = AuthPolicy {
            chap_accounts: t
                .chap
                .iter()
                .map(|(u, s)| Credentials {
                    user: u.clone(),
                    secret: s.clone(),
                })
                .collect(),
            mutual: t.mutual_chap.as_ref().map(|(u, s)| Credentials {
                user: u.clone(),
                secret: s.clone(),
            }),
        };
        if auth.mutual.is_some() && auth.chap_accounts.is_empty() {
            return Err(format!(
                "{}: mutual CHAP needs a CHAP account too (--chap USER:SECRET)",
                t.iqn
            ));
        }
        config.targets.push(TargetConfig {
            node: TargetNode {
                name: t.iqn.clone(),
                alias: t.alias.clone(),
                portal_group_tag: 1,
                auth,
            },
            luns: luns.keys().copied().collect(),
            acl: if t.allow.is_empty() {
                vec![Acl::All]
            } else {
                t.allow.clone()
            },
        });
        targets.insert(t.iqn.clone(), Device::new(luns));
    }
    Ok((config, Devices::new(targets)))
}

fn logical_unit(iqn: &str, spec: &LunSpec) -> Result<LogicalUnit, String> {
    let store: Box<dyn BlockStore> = match &spec.backing {
        Backing::Memory(size) => Box::new(MemoryStore::new(*size)),
        Backing::File { path, size } => Box::new(
            FileStore::open(path, *size, spec.readonly)
                .map_err(|e| format!("LUN {}: {e}", spec.id))?,
        ),
        Backing::Device(path) => Box::new(
            DeviceStore::open(path, spec.readonly).map_err(|e| format!("LUN {}: {e}", spec.id))?,
        ),
    };
    if store.len() < spec.block_size as u64 {
        return Err(format!(
            "LUN {}: {} is smaller than one block",
            spec.id,
            store.describe()
        ));
    }
    let config = LuConfig {
        block_size: spec.block_size,
        vendor: "HARNESS".into(),
        product: "VIRTUAL-DISK".into(),
        revision: "0001".into(),
        serial: serial_number(iqn, spec.id),
        removable: spec.removable,
        readonly: spec.readonly,
    };
    Ok(LogicalUnit::new(config, store))
}

/// A serial number stable across restarts: derived from the target name
/// and the LUN.
pub fn serial_number(iqn: &str, lun: u16) -> String {
    format!(
        "{:08x}{:04x}",
        iscsi_engine::pdu::crc32c(iqn.as_bytes()),
        lun
    )
}

/// The libiscsi URLs of every LUN served.
pub fn urls(listen: SocketAddr, spec: &ServeSpec) -> Vec<String> {
    spec.targets
        .iter()
        .flat_map(|t| {
            t.luns
                .iter()
                .map(move |l| format!("iscsi://{listen}/{}/{}", t.iqn, l.id))
        })
        .collect()
}

/// Serves until SIGINT or SIGTERM; prints the bound address and the URLs.
pub async fn run(spec: ServeSpec, seed: u64) -> Result<(), String> {
    let (config, devices) = build(&spec)?;
    let listener = TokioNetwork
        .bind(spec.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", spec.listen))?;
    let local = iscsi_engine::net::Listener::local_addr(&listener).map_err(|e| e.to_string())?;
    // Scripts read these lines; a closed stdout must not stop the target.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {local}");
    for url in urls(local, &spec) {
        let _ = writeln!(out, "{url}");
    }
    let _ = out.flush();
    drop(out);
    let server = TargetServer::new(
        Endpoint::new(config, seed),
        devices,
        ServerOptions::default(),
    );
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    let _ = writeln!(std::io::stdout(), "stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received");
}

/// Reads a configuration file into a spec.
pub fn spec_from_file(path: &Path) -> Result<ServeSpec, String> {
    load_config_file(path)
}

/// A sparse file path helper for tests.
pub fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}
