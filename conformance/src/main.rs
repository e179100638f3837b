//! `iscsi-harness`: the command line (see ../shared/DESIGN.md, "The CLI
//! contract"). Exit status: 0 success, 1 a failed check or run, 2 bad usage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use iscsi_conformance::serve::{self, DEFAULT_IQN, ServeSpec, TargetSpec, spec};

#[derive(Parser)]
#[command(
    name = "iscsi-harness",
    version,
    about = "iSCSI target and initiator: simulation, real peers, conformance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve iSCSI target nodes on real sockets until SIGINT/SIGTERM.
    Target(TargetArgs),
    /// Our initiator on real sockets: discover, ls, read, write, perf.
    Initiator(iscsi_conformance::initiator_cli::InitiatorArgs),
    /// Conformance suites against real peers.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
    /// Real peers in a QEMU guest: Linux open-iscsi and LIO.
    #[command(subcommand)]
    Interop(InteropCommand),
    /// The deterministic simulation: scenarios, replay, swarm, planted bugs.
    #[command(subcommand)]
    Sim(iscsi_sim::cli::SimCommand),
}

#[derive(Subcommand)]
enum InteropCommand {
    /// Linux open-iscsi in a QEMU guest against our target (or tgtd): the
    /// tgtadm + iscsiadm workflow, ext4, digests, CHAP, ACLs, recovery.
    OpenIscsi(OpenIscsiArgs),
    /// Our initiator against LIO in a QEMU guest: login, negotiated
    /// parameters, write/read/verify, digests.
    Lio(iscsi_conformance::initiator_cli::lio::LioArgs),
}

#[derive(Args)]
struct OpenIscsiArgs {
    /// The target to test: ours (this binary) or tgtd.
    #[arg(long, default_value = "ours", value_parser = ["ours", "tgtd"])]
    target: String,
    /// Run only these steps (comma-separated; see --list).
    #[arg(long, value_delimiter = ',')]
    steps: Vec<String>,
    /// List the steps and exit.
    #[arg(long)]
    list: bool,
    /// Echo the guest's console.
    #[arg(long)]
    echo: bool,
    /// Write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConformanceCommand {
    /// Run libiscsi's target suite (iscsi-test-cu) against a LUN.
    Target(ConformanceTargetArgs),
}

#[derive(Args)]
struct ConformanceTargetArgs {
    /// The LUN: iscsi://[user[%secret]@]host[:port]/iqn/lun
    url: String,
    /// Test selection, FAMILY[.SUITE[.TEST]].
    #[arg(long, default_value = "ALL")]
    tests: String,
    /// Do not give the URL a second time (which turns the multipath tests on).
    #[arg(long)]
    no_multipath: bool,
    /// Do not allow destructive tests (-d) and SANITIZE (-S).
    #[arg(long)]
    read_only: bool,
    /// Write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

#[derive(Args)]
struct TargetArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:3260")]
    listen: SocketAddr,
    /// Target name (default: a generated IQN).
    #[arg(long)]
    iqn: Option<String>,
    /// A LUN: N=mem:SIZE | N=file:PATH[,size=SIZE] | N=dev:PATH, then
    /// ,removable ,readonly ,bs=4096 (default: 1=mem:1GiB).
    #[arg(long = "lun", value_name = "N=SPEC")]
    luns: Vec<String>,
    /// A CHAP account initiators must log in with (repeatable).
    #[arg(long, value_name = "USER:SECRET")]
    chap: Vec<String>,
    /// The target's credentials for mutual CHAP.
    #[arg(long, value_name = "USER:SECRET")]
    mutual_chap: Option<String>,
    /// Who may log in: ALL, an initiator IQN, or an address/CIDR
    /// (repeatable; default ALL).
    #[arg(long, value_name = "IQN|CIDR|ALL")]
    allow: Vec<String>,
    /// Force a negotiation value, e.g. MaxBurstLength=16384,
    /// ImmediateData=No, HeaderDigest=CRC32C (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Commands a session may have outstanding (the CmdSN window).
    #[arg(long, default_value_t = 128)]
    queue_depth: u32,
    /// Serve what a TOML file describes instead of the flags above.
    #[arg(long, conflicts_with_all = ["iqn", "luns", "chap", "mutual_chap", "allow", "params"])]
    config: Option<PathBuf>,
    /// Seed for the target's random choices (default: from the OS).
    #[arg(long)]
    seed: Option<u64>,
}

/// A failure: the message and whether it was bad usage (exit 2).
struct Failure {
    message: String,
    usage: bool,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure {
            message,
            usage: true,
        }
    }

    fn run(message: String) -> Failure {
        Failure {
            message,
            usage: false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Sim(command) => match iscsi_sim::cli::run(command) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::run(
                "the simulation found failures (see above)".into(),
            )),
            Err(e) => Err(Failure {
                message: e.message,
                usage: e.usage,
            }),
        },
        Command::Target(args) => target(args),
        Command::Initiator(args) => {
            iscsi_conformance::initiator_cli::run(args).map_err(|e| Failure {
                message: e.message,
                usage: e.usage,
            })
        }
        Command::Conformance(ConformanceCommand::Target(args)) => conformance_target(args),
        Command::Interop(InteropCommand::OpenIscsi(args)) => interop_open_iscsi(args),
        Command::Interop(InteropCommand::Lio(args)) => {
            iscsi_conformance::initiator_cli::lio::command(&args).map_err(|e| Failure {
                message: e.message,
                usage: e.usage,
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("iscsi-harness: error: {}", f.message);
            ExitCode::from(if f.usage { 2 } else { 1 })
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::run(format!("cannot start the runtime: {e}")))
}

/// A seed from the OS, for real runs.
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn target(args: TargetArgs) -> Result<(), Failure> {
    let spec = match &args.config {
        Some(path) => serve::spec_from_file(path).map_err(Failure::usage)?,
        None => spec_from_flags(&args).map_err(Failure::usage)?,
    };
    serve::build(&spec).map_err(Failure::usage)?;
    let seed = args.seed.unwrap_or_else(os_seed);
    runtime()?
        .block_on(serve::run(spec, seed))
        .map_err(Failure::run)
}

fn spec_from_flags(args: &TargetArgs) -> Result<ServeSpec, String> {
    let luns = if args.luns.is_empty() {
        vec![spec::parse_lun("1=mem:1GiB")?]
    } else {
        args.luns
            .iter()
            .map(|l| spec::parse_lun(l))
            .collect::<Result<_, _>>()?
    };
    let target = TargetSpec {
        iqn: args.iqn.clone().unwrap_or_else(|| DEFAULT_IQN.to_string()),
        alias: None,
        luns,
        chap: args
            .chap
            .iter()
            .map(|c| spec::parse_credentials(c))
            .collect::<Result<_, _>>()?,
        mutual_chap: args
            .mutual_chap
            .as_deref()
            .map(spec::parse_credentials)
            .transpose()?,
        allow: args
            .allow
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()?,
    };
    Ok(ServeSpec {
        listen: args.listen,
        targets: vec![target],
        params: args.params.clone(),
        queue_depth: args.queue_depth,
    })
}

fn conformance_target(args: ConformanceTargetArgs) -> Result<(), Failure> {
    use iscsi_conformance::libiscsi::{self, SuiteOptions};
    use iscsi_conformance::report::Outcome;
    if !args.url.starts_with("iscsi://") {
        return Err(Failure::usage(format!(
            "{:?} is not an iscsi:// URL",
            args.url
        )));
    }
    let mut urls = vec![args.url.clone()];
    if !args.no_multipath {
        urls.push(args.url.clone());
    }
    let options = SuiteOptions {
        urls,
        tests: args.tests,
        dataloss: !args.read_only,
        sanitize: !args.read_only,
        timeout: std::time::Duration::from_secs(args.timeout),
        ..SuiteOptions::default()
    };
    let run = libiscsi::run(&options).map_err(|e| Failure::run(e.to_string()))?;
    for case in &run.report.cases {
        if case.outcome == Outcome::Failed {
            println!(
                "FAILED {}.{}: {}",
                case.suite,
                case.name,
                case.message.replace('\n', " | ")
            );
        }
    }
    if let Some(path) = &args.junit {
        run.report
            .write_junit(path)
            .map_err(|e| Failure::run(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "{} tests run, {} [SKIPPED] lines",
        run.ran, run.skipped_lines
    );
    println!("{}", run.report.summary());
    if run.failed > 0 || run.report.failed() > 0 {
        return Err(Failure::run(format!(
            "{} of {} tests failed",
            run.failed, run.ran
        )));
    }
    Ok(())
}

fn interop_open_iscsi(args: OpenIscsiArgs) -> Result<(), Failure> {
    use iscsi_conformance::interop::open_iscsi::{self, Options, STEPS, TargetKind};
    if args.list {
        for step in STEPS {
            println!("{:<20} {}", step.name, step.about);
        }
        return Ok(());
    }
    let target = if args.target == "tgtd" {
        TargetKind::Tgtd
    } else {
        let binary = std::env::current_exe()
            .map_err(|e| Failure::run(format!("cannot find this binary: {e}")))?;
        TargetKind::Harness { binary }
    };
    let mut options = Options::new(target);
    options.only = args.steps;
    options.echo_console = args.echo;
    options.progress = true;
    options.junit = args.junit;
    let report = open_iscsi::run(&options).map_err(|e| Failure::run(e.to_string()))?;
    println!("{report}");
    if report.success() {
        Ok(())
    } else {
        Err(Failure::run(report.summary()))
    }
}
