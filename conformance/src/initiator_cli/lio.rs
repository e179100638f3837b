//! `iscsi-harness interop lio`: our initiator against LIO, Linux's kernel
//! target, booted in a QEMU guest by [`crate::interop::lio`]. Each step is a
//! case of the report; the run ends with `N passed, M failed`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use iscsi_engine::net::TokioNetwork;
use iscsi_engine::net::initiator::{
    ConnectionParams, Session, SessionConfig, SessionParams, TmfFunction, discover,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{CliError, DEFAULT_INITIATOR};
use crate::interop::lio::{self, LioOptions};
use crate::report::{Case, Outcome, Report};

#[derive(Args, Debug)]
pub struct LioArgs {
    /// MiB written, read back and verified.
    #[arg(long, default_value_t = 8)]
    pub mib: u32,
    /// Echo the guest's console.
    #[arg(long)]
    pub echo: bool,
    /// Write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Seed for the data and the initiator's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One step's verdict: what it saw, or why it failed.
type Step = Result<String, String>;

struct Run {
    report: Report,
}

impl Run {
    fn record(&mut self, name: &str, step: Step) -> bool {
        let (outcome, message) = match step {
            Ok(m) => (Outcome::Passed, m),
            Err(m) => (Outcome::Failed, m),
        };
        println!("{} {name}: {message}", outcome.word());
        self.report
            .cases
            .push(Case::new("interop.lio", name, outcome, message));
        outcome == Outcome::Passed
    }
}

/// Our session settings for a target under software emulation: generous
/// timers, so that a slow guest is not mistaken for a dead one.
fn config(iqn: &str, addr: std::net::SocketAddr) -> SessionConfig {
    let mut c = SessionConfig::new(DEFAULT_INITIATOR, iqn, addr);
    c.login_timeout = Duration::from_secs(60);
    c.nop_interval = Some(Duration::from_secs(15));
    c.nop_timeout = Duration::from_secs(30);
    c.command_timeout = Some(Duration::from_secs(180));
    c
}

/// The negotiated values, one `Key=Value` per line as RFC 7143 names them.
pub fn describe(s: &SessionParams, c: &ConnectionParams) -> String {
    let yes = |b: bool| if b { "Yes" } else { "No" };
    let digest = |b: bool| if b { "CRC32C" } else { "None" };
    [
        format!("HeaderDigest={}", digest(c.header_digest)),
        format!("DataDigest={}", digest(c.data_digest)),
        format!(
            "MaxRecvDataSegmentLength={} (target: {})",
            c.max_recv_data_segment_length, c.max_xmit_data_segment_length
        ),
        format!("InitialR2T={}", yes(s.initial_r2t)),
        format!("ImmediateData={}", yes(s.immediate_data)),
        format!("FirstBurstLength={}", s.first_burst_length),
        format!("MaxBurstLength={}", s.max_burst_length),
        format!("MaxOutstandingR2T={}", s.max_outstanding_r2t),
        format!("MaxConnections={}", s.max_connections),
        format!("DataPDUInOrder={}", yes(s.data_pdu_in_order)),
        format!("DataSequenceInOrder={}", yes(s.data_sequence_in_order)),
        format!("DefaultTime2Wait={}", s.default_time2wait),
        format!("DefaultTime2Retain={}", s.default_time2retain),
        format!("ErrorRecoveryLevel={}", s.error_recovery_level),
        format!("TargetPortalGroupTag={}", s.target_portal_group_tag),
    ]
    .join("\n")
}

/// The `interop lio` command: fails (exit 1) unless every step passed.
pub fn command(args: &LioArgs) -> Result<(), CliError> {
    let report = run(args)?;
    if report.failed() == 0 {
        Ok(())
    } else {
        Err(CliError::run(report.summary()))
    }
}

/// Boots LIO, runs every step, prints and returns the report.
pub fn run(args: &LioArgs) -> Result<Report, CliError> {
    if args.mib == 0 || args.mib > 48 {
        return Err(CliError::usage("--mib must be between 1 and 48"));
    }
    let mut run = Run {
        report: Report::new("interop lio"),
    };
    let started = Instant::now();
    let guest = lio::start(&LioOptions {
        echo_console: args.echo,
        ..LioOptions::default()
    });
    let guest = match guest {
        Ok(g) => {
            run.record(
                "boot",
                Ok(format!(
                    "LIO serves {} after {:.1} s",
                    g.url(),
                    started.elapsed().as_secs_f64()
                )),
            );
            g
        }
        Err(e) => {
            run.record("boot", Err(e.to_string()));
            return Ok(finish(run, args));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::run(format!("cannot start the runtime: {e}")))?;
    let (addr, iqn, lun_bytes) = (guest.addr(), guest.iqn().to_string(), guest.lun_bytes());
    runtime.block_on(steps(&mut run, args, addr, &iqn, lun_bytes));
    guest.shutdown();
    Ok(finish(run, args))
}

fn finish(run: Run, args: &LioArgs) -> Report {
    if let Some(path) = &args.junit {
        if let Err(e) = run.report.write_junit(path) {
            eprintln!("iscsi-harness: cannot write {}: {e}", path.display());
        }
    }
    println!("{}", run.report.summary());
    run.report
}

async fn steps(
    run: &mut Run,
    args: &LioArgs,
    addr: std::net::SocketAddr,
    iqn: &str,
    lun_bytes: u64,
) {
    let found = discover(TokioNetwork, addr, DEFAULT_INITIATOR, None, args.seed).await;
    run.record(
        "discover",
        match found {
            Ok(r) if r.iter().any(|t| t.name == iqn) => Ok(format!("SendTargets lists {iqn}")),
            Ok(r) => Err(format!("{iqn} not among {r:?}")),
            Err(e) => Err(e.to_string()),
        },
    );

    let session = match Session::login(TokioNetwork, config(iqn, addr), args.seed).await {
        Ok(s) => s,
        Err(e) => {
            run.record("login", Err(e.to_string()));
            return;
        }
    };
    let (s, c) = session.negotiated();
    let text = describe(&s, &c);
    println!("negotiated with LIO:\n{}", indent(&text));
    run.record(
        "login",
        Ok(format!(
            "TSIH {:#06x}, {}",
            session.tsih(),
            text.replace('\n', ", ")
        )),
    );

    run.record("inquiry", inquiry(&session, lun_bytes).await);
    run.record(
        &format!("write-read-verify {} MiB", args.mib),
        verify(&session, args.mib, args.seed).await,
    );
    run.record(
        "task management",
        match session
            .task_management(0, TmfFunction::LogicalUnitReset, None)
            .await
        {
            Ok(0) => session
                .read(0, 0, 8)
                .await
                .map(|_| "LOGICAL UNIT RESET: function complete; reads go on".to_string())
                .map_err(|e| format!("read after the reset: {e}")),
            Ok(r) => Err(format!("LOGICAL UNIT RESET answered {r}")),
            Err(e) => Err(e.to_string()),
        },
    );
    run.record(
        "logout",
        session
            .logout()
            .await
            .map(|_| "clean".to_string())
            .map_err(|e| e.to_string()),
    );

    let mut digests = config(iqn, addr);
    digests.preferences.header_digest = vec!["CRC32C".into()];
    digests.preferences.data_digest = vec!["CRC32C".into()];
    run.record("CRC32C digests", digested(digests, args.seed).await);
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn inquiry(session: &Session<TokioNetwork>, lun_bytes: u64) -> Step {
    let luns = session
        .report_luns()
        .await
        .map_err(|e| format!("REPORT LUNS: {e}"))?;
    if !luns.contains(&0) {
        return Err(format!("REPORT LUNS lists {luns:?}, not LUN 0"));
    }
    let inq = session
        .inquiry(0)
        .await
        .map_err(|e| format!("INQUIRY: {e}"))?;
    let cap = session
        .read_capacity(0)
        .await
        .map_err(|e| format!("READ CAPACITY: {e}"))?;
    if cap.bytes() != lun_bytes {
        return Err(format!(
            "READ CAPACITY says {} bytes, LIO serves {lun_bytes}",
            cap.bytes()
        ));
    }
    Ok(format!(
        "{} {} {}, {}, {} blocks of {} bytes",
        inq.vendor,
        inq.product,
        inq.revision,
        inq.device_type_name(),
        cap.blocks,
        cap.block_size
    ))
}

async fn verify(session: &Session<TokioNetwork>, mib: u32, seed: u64) -> Step {
    let mut data = vec![0u8; (mib as usize) << 20];
    SmallRng::seed_from_u64(seed).fill(&mut data[..]);
    let data = Bytes::from(data);
    let cap = session.read_capacity(0).await.map_err(|e| e.to_string())?;
    let blocks = (data.len() / cap.block_size as usize) as u32;
    let lba = 2048u64.min(cap.blocks.saturating_sub(u64::from(blocks)));
    let t = Instant::now();
    session
        .write(0, lba, data.clone())
        .await
        .map_err(|e| format!("write: {e}"))?;
    session
        .flush(0)
        .await
        .map_err(|e| format!("SYNCHRONIZE CACHE: {e}"))?;
    let written = t.elapsed();
    let back = session
        .read(0, lba, blocks)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if back != data {
        let at = back
            .iter()
            .zip(data.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!("read back differs from byte {at}"));
    }
    Ok(format!(
        "LBA {lba}: written in {:.1} s, read back equal in {:.1} s",
        written.as_secs_f64(),
        (t.elapsed() - written).as_secs_f64()
    ))
}

async fn digested(config: SessionConfig, seed: u64) -> Step {
    let session = Session::login(TokioNetwork, config, seed + 1)
        .await
        .map_err(|e| e.to_string())?;
    let (_, c) = session.negotiated();
    if !(c.header_digest && c.data_digest) {
        return Err("LIO did not accept CRC32C digests".into());
    }
    let data = Bytes::from(vec![0xa5u8; 256 * 1024]);
    session
        .write(0, 0, data.clone())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let back = session
        .read(0, 0, (data.len() / 512) as u32)
        .await
        .map_err(|e| format!("read: {e}"))?;
    session.logout().await.map_err(|e| e.to_string())?;
    if back != data {
        return Err("read back differs".into());
    }
    Ok("HeaderDigest=CRC32C DataDigest=CRC32C: 256 KiB written and read back".into())
}
