//! The target under test: something that serves iSCSI on a loopback port and
//! can be started, stopped, restarted and reconfigured by the harness. Two
//! implementations: tgt's `tgtd` (configured with `tgtadm`) and ours (the
//! `iscsi-harness target` command).

mod harness;
mod tgtd;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use harness::{HarnessTarget, Launched, launch};
pub use tgtd::Tgtd;

use super::error::{Error, IoContext, Result, at};

/// What backs a logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A memory disk of this many bytes (contents lost on restart; tgtd,
    /// having none, gets a sparse scratch file).
    Mem { size: u64 },
    /// A file of this many bytes, created sparse if missing; it survives
    /// restarts.
    File { path: PathBuf, size: u64 },
}

impl Backing {
    pub fn size(&self) -> u64 {
        match self {
            Backing::Mem { size } | Backing::File { size, .. } => *size,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lun {
    pub id: u64,
    pub backing: Backing,
}

/// A CHAP user name and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub secret: String,
}

impl Credentials {
    pub fn new(user: &str, secret: &str) -> Self {
        Self {
            user: user.into(),
            secret: secret.into(),
        }
    }
}

/// One target's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub iqn: String,
    pub luns: Vec<Lun>,
    /// The initiator must authenticate with this (one-way CHAP).
    pub chap: Option<Credentials>,
    /// The target authenticates itself with this (mutual CHAP).
    pub mutual_chap: Option<Credentials>,
    /// Initiator IQNs or CIDRs allowed in; empty means everyone.
    pub allow: Vec<String>,
    /// Negotiation values the target insists on, e.g.
    /// `("MaxBurstLength", "16384")`, `("HeaderDigest", "CRC32C,None")`.
    pub params: Vec<(String, String)>,
}

impl TargetConfig {
    pub fn new(iqn: &str) -> Self {
        Self {
            iqn: iqn.into(),
            luns: Vec::new(),
            chap: None,
            mutual_chap: None,
            allow: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Creates missing backing files at their size.
    pub(crate) fn prepare_files(&self) -> Result<()> {
        for lun in &self.luns {
            if let Backing::File { path, size } = &lun.backing {
                let f = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(path)
                    .ctx(|| at("create", path))?;
                if f.metadata().ctx(|| at("stat", path))?.len() != *size {
                    f.set_len(*size).ctx(|| at("size", path))?;
                }
            }
        }
        Ok(())
    }
}

/// How a target is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM and a few seconds to finish.
    Graceful,
    /// SIGKILL: a crash.
    Kill,
}

/// A target the harness drives. Every implementation listens on one loopback
/// port for its whole life, so a restart keeps the address.
pub trait TargetUnderTest: Send {
    /// A short name for reports ("tgtd", "iscsi-harness").
    fn name(&self) -> String;
    /// Where it listens (valid before the first start).
    fn addr(&self) -> SocketAddr;
    /// Starts serving `config` (stopping first if running).
    fn start(&mut self, config: &TargetConfig) -> Result<()>;
    /// Stops it; a no-op when not running.
    fn stop(&mut self, how: Stop) -> Result<()>;
    /// Whether its process is alive.
    fn is_running(&mut self) -> bool;
    /// The configuration it last started with.
    fn config(&self) -> Option<&TargetConfig>;
    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String;

    /// Stops and starts it again with the same configuration.
    fn restart(&mut self, how: Stop) -> Result<()> {
        let config = self.config().cloned().ok_or_else(|| Error::Target {
            target: self.name(),
            detail: "restart before any start".into(),
        })?;
        self.stop(how)?;
        self.start(&config)
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A log file opened for appending: a target's output across restarts.
pub(crate) fn append_log(path: &std::path::Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx(|| at("open", path))
}

/// The last lines of a log file.
pub(crate) fn file_tail(path: &std::path::Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
