//! `iscsi-harness initiator ...`: discovery, listing, raw reads and writes
//! and a load generator, on our initiator over real sockets. Output follows
//! the tools users know: `discover` prints iscsiadm's `addr:port,tpgt iqn`
//! lines, `ls` prints what `iscsi-ls -s` does, `perf` what `iscsi-perf`
//! does.

pub mod lio;
mod perf;
pub mod url;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Subcommand};
use iscsi_engine::net::TokioNetwork;
use iscsi_engine::net::initiator::{
    Credentials, InitiatorError, Session, SessionConfig, TargetRecord, device_type_name,
};

pub use perf::PerfArgs;
use url::{IscsiUrl, parse_portal};

/// The initiator name used unless `--initiator-name` says otherwise.
pub const DEFAULT_INITIATOR: &str = "iqn.2026-11.org.iscsi-harness:initiator";

#[derive(Args, Debug)]
pub struct InitiatorArgs {
    #[command(subcommand)]
    pub command: InitiatorCommand,
    #[command(flatten)]
    pub options: Options,
}

/// Options every initiator command takes.
#[derive(Args, Debug, Clone)]
pub struct Options {
    /// The initiator's iSCSI name.
    #[arg(long, global = true, default_value = DEFAULT_INITIATOR)]
    pub initiator_name: String,
    /// CHAP account to log in with (also `iscsi://user%secret@...`, or
    /// LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD).
    #[arg(long, global = true, value_name = "USER:SECRET")]
    pub chap: Option<String>,
    /// The target's credentials: require mutual CHAP.
    #[arg(long, global = true, value_name = "USER:SECRET")]
    pub mutual_chap: Option<String>,
    /// HeaderDigest to offer, e.g. CRC32C, None or CRC32C,None.
    #[arg(long, global = true, value_name = "CRC32C|None")]
    pub header_digest: Option<String>,
    /// DataDigest to offer.
    #[arg(long, global = true, value_name = "CRC32C|None")]
    pub data_digest: Option<String>,
    /// Any other key to offer, e.g. ImmediateData=No, MaxBurstLength=65536.
    #[arg(long = "param", global = true, value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Seed for the initiator's random choices (default: from the OS).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum InitiatorCommand {
    /// SendTargets discovery: print `addr:port,tpgt iqn` lines.
    Discover {
        /// The portal: host[:port] or iscsi://host[:port].
        addr: String,
    },
    /// List the targets of a portal with their LUNs, types and sizes.
    Ls {
        /// iscsi://[user[%secret]@]host[:port][/iqn]
        url: String,
    },
    /// Read COUNT blocks from LBA and write them raw to stdout.
    Read {
        /// iscsi://[user[%secret]@]host[:port]/iqn/lun
        url: String,
        lba: u64,
        count: u32,
    },
    /// Write FILE (whole blocks; - for stdin) at LBA.
    Write {
        url: String,
        lba: u64,
        file: PathBuf,
    },
    /// Measure IOPS and throughput with many commands in flight.
    Perf(PerfArgs),
}

/// A failed command: one line, and whether it was bad usage (exit 2).
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub usage: bool,
}

impl CliError {
    fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            usage: true,
        }
    }

    fn run(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            usage: false,
        }
    }
}

impl From<InitiatorError> for CliError {
    fn from(e: InitiatorError) -> CliError {
        CliError::run(e.to_string())
    }
}

/// Runs one `initiator` subcommand.
pub fn run(args: InitiatorArgs) -> Result<(), CliError> {
    // One thread, like iscsi-perf's event loop: on a loaded machine the
    // target gets the CPU a second worker thread would take.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the runtime: {e}")))?;
    let options = args.options;
    runtime.block_on(async move {
        match args.command {
            InitiatorCommand::Discover { addr } => discover_cmd(&options, &addr).await,
            InitiatorCommand::Ls { url } => ls(&options, &url).await,
            InitiatorCommand::Read { url, lba, count } => read(&options, &url, lba, count).await,
            InitiatorCommand::Write { url, lba, file } => write(&options, &url, lba, &file).await,
            InitiatorCommand::Perf(p) => perf::run(&options, p).await,
        }
    })
}

/// A seed from the OS, for real runs.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn parse_credentials(flag: &str, text: &str) -> Result<Credentials, CliError> {
    let (user, secret) = text
        .split_once(':')
        .filter(|(u, s)| !u.is_empty() && !s.is_empty())
        .ok_or_else(|| CliError::usage(format!("{flag}: expected USER:SECRET")))?;
    Ok(Credentials {
        user: user.into(),
        secret: secret.into(),
    })
}

impl Options {
    fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(os_seed)
    }

    /// CHAP credentials: the flag, else the URL, else libiscsi's
    /// environment variables.
    fn chap(&self, url: &IscsiUrl) -> Result<Option<Credentials>, CliError> {
        if let Some(c) = &self.chap {
            return parse_credentials("--chap", c).map(Some);
        }
        if let Some(user) = &url.user {
            let secret = url
                .secret
                .clone()
                .or_else(|| std::env::var("LIBISCSI_CHAP_PASSWORD").ok())
                .ok_or_else(|| CliError::usage(format!("no CHAP secret for user {user}")))?;
            return Ok(Some(Credentials {
                user: user.clone(),
                secret,
            }));
        }
        match (
            std::env::var("LIBISCSI_CHAP_USERNAME"),
            std::env::var("LIBISCSI_CHAP_PASSWORD"),
        ) {
            (Ok(user), Ok(secret)) => Ok(Some(Credentials { user, secret })),
            _ => Ok(None),
        }
    }

    /// The session configuration for `target` at `portal`.
    fn config(
        &self,
        url: &IscsiUrl,
        portal: SocketAddr,
        target: &str,
    ) -> Result<SessionConfig, CliError> {
        self.apply(
            url,
            SessionConfig::new(&self.initiator_name, target, portal),
        )
    }

    /// Credentials and negotiation preferences from the flags and the URL.
    fn apply(&self, url: &IscsiUrl, mut c: SessionConfig) -> Result<SessionConfig, CliError> {
        c.chap = self.chap(url)?;
        c.mutual = self
            .mutual_chap
            .as_deref()
            .map(|m| parse_credentials("--mutual-chap", m))
            .transpose()?;
        if c.mutual.is_some() && c.chap.is_none() {
            return Err(CliError::usage("--mutual-chap needs CHAP credentials too"));
        }
        let mut params = Vec::new();
        if let Some(d) = &self.header_digest {
            params.push(format!("HeaderDigest={d}"));
        }
        if let Some(d) = &self.data_digest {
            params.push(format!("DataDigest={d}"));
        }
        params.extend(self.params.iter().cloned());
        for p in &params {
            crate::serve::spec::apply_param(&mut c.preferences, p).map_err(CliError::usage)?;
        }
        Ok(c)
    }

    async fn login(&self, url_text: &str) -> Result<(Session<TokioNetwork>, u16), CliError> {
        let url = IscsiUrl::parse(url_text).map_err(CliError::usage)?;
        let (target, lun) = url.target_lun(url_text).map_err(CliError::usage)?;
        let portal = url.portal().map_err(CliError::usage)?;
        let config = self.config(&url, portal, &target)?;
        let session = Session::login(TokioNetwork, config, self.seed()).await?;
        Ok((session, lun))
    }

    /// A discovery session's SendTargets=All (RFC 7143 Appendix C).
    async fn discover(
        &self,
        url: &IscsiUrl,
        portal: SocketAddr,
    ) -> Result<Vec<TargetRecord>, CliError> {
        let config = self.apply(url, SessionConfig::discovery(&self.initiator_name, portal))?;
        let session = Session::login(TokioNetwork, config, self.seed()).await?;
        let records = session.send_targets().await?;
        session.logout().await?;
        Ok(records)
    }
}

async fn discover_cmd(options: &Options, addr: &str) -> Result<(), CliError> {
    let (portal, url) = parse_portal(addr).map_err(CliError::usage)?;
    let records = options.discover(&url, portal).await?;
    let mut out = std::io::stdout().lock();
    for r in records {
        for a in &r.addresses {
            let _ = writeln!(out, "{a} {}", r.name);
        }
        if r.addresses.is_empty() {
            let _ = writeln!(out, "{portal},1 {}", r.name);
        }
    }
    Ok(())
}

/// `iscsi-ls -s`: each target with its portals, then each LUN with its
/// peripheral type and, for block devices, its size.
async fn ls(options: &Options, text: &str) -> Result<(), CliError> {
    let (portal, url) = parse_portal(text).map_err(CliError::usage)?;
    let mut records = options.discover(&url, portal).await?;
    if let Some(t) = &url.target {
        records.retain(|r| r.name.eq_ignore_ascii_case(t));
        if records.is_empty() {
            return Err(CliError::run(format!("target {t} not found at {portal}")));
        }
    }
    let mut out = std::io::stdout().lock();
    for r in records {
        for a in &r.addresses {
            let _ = writeln!(out, "Target:{} Portal:{a}", r.name);
        }
        if r.addresses.is_empty() {
            let _ = writeln!(out, "Target:{} Portal:{portal},1", r.name);
        }
        let config = options.config(&url, portal, &r.name)?;
        let session = Session::login(TokioNetwork, config, options.seed()).await?;
        for lun in session.report_luns().await? {
            let inquiry = session.inquiry(lun).await?;
            let mut line = format!(
                "Lun:{lun:<4} Type:{}",
                device_type_name(inquiry.device_type)
            );
            if inquiry.device_type == 0 {
                let cap = session.read_capacity(lun).await?;
                line.push_str(&format!(" (Size:{})", short_size(cap.bytes())));
            }
            let _ = writeln!(out, "{line}");
        }
        session.logout().await?;
    }
    Ok(())
}

/// A size in iscsi-ls's style: whole kB, M or G.
fn short_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{}G", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{}M", bytes >> 20)
    } else {
        format!("{}kb", bytes >> 10)
    }
}

async fn read(options: &Options, url: &str, lba: u64, count: u32) -> Result<(), CliError> {
    let (session, lun) = options.login(url).await?;
    let data = session.read(lun, lba, count).await?;
    std::io::stdout()
        .lock()
        .write_all(&data)
        .map_err(|e| CliError::run(format!("cannot write to stdout: {e}")))?;
    session.logout().await?;
    Ok(())
}

async fn write(options: &Options, url: &str, lba: u64, file: &PathBuf) -> Result<(), CliError> {
    let data = if file.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .map_err(|e| CliError::run(format!("cannot read stdin: {e}")))?;
        v
    } else {
        std::fs::read(file)
            .map_err(|e| CliError::run(format!("cannot read {}: {e}", file.display())))?
    };
    let (session, lun) = options.login(url).await?;
    session.write(lun, lba, Bytes::from(data)).await?;
    session.flush(lun).await?;
    session.logout().await?;
    Ok(())
}
