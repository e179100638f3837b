//! `iscsi-harness sim ...`: the simulation's command line (DESIGN.md,
//! "The CLI contract"). The binary's `main` only parses into
//! [`SimCommand`] and calls [`run`].

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use iscsi_engine::planted::{self, PlantedBug};

use crate::scenarios;
use crate::swarm::{self, SwarmConfig};
use crate::token::Token;
use crate::world::RunOptions;

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// List the scenarios.
    List,
    /// Run one scenario on one seed.
    Run(RunArgs),
    /// Replay a failure from the token it printed (SCENARIO@SEED[+BUG]).
    Replay(ReplayArgs),
    /// Run many seeds over every scenario (or one), in parallel.
    Swarm(SwarmArgs),
    /// Planted bugs (built with --features planted-bugs).
    #[command(subcommand)]
    Plant(PlantCommand),
}

#[derive(Debug, Subcommand)]
pub enum PlantCommand {
    /// List the planted bugs.
    List,
}

#[derive(Debug, Args)]
pub struct Output {
    /// Write the trace, one line per event.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the simulated TCP traffic as a pcap capture.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub scenario: String,
    #[arg(long)]
    pub seed: u64,
    /// Switch a planted bug on.
    #[arg(long, value_name = "NAME")]
    pub plant: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub token: String,
    #[command(flatten)]
    pub output: Output,
}

/// Seeds per scenario when `--seeds` is not given.
pub const DEFAULT_SEEDS_PER_SCENARIO: u64 = 10;

#[derive(Debug, Args)]
pub struct SwarmArgs {
    /// How many seeds (default: 10 per scenario).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Only this scenario (default: seed S runs scenario S mod count).
    #[arg(long)]
    pub scenario: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Switch a planted bug on in every run.
    #[arg(long, value_name = "NAME")]
    pub plant: Option<String>,
    /// Run only every N-th seed, starting with the K-th (1-based).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Write JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Worker threads (default: the available parallelism).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print every seed's outcome and fault mix.
    #[arg(long)]
    pub verbose: bool,
    /// Stop at the first failure and report how many seeds it took.
    #[arg(long)]
    pub first_failure: bool,
}

/// A command-line failure: its message and whether it was bad usage.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub usage: bool,
}

fn usage(message: impl Into<String>) -> CliError {
    CliError {
        message: message.into(),
        usage: true,
    }
}

fn io_error(what: &str, e: std::io::Error) -> CliError {
    CliError {
        message: format!("{what}: {e}"),
        usage: false,
    }
}

fn plant(name: Option<&str>) -> Result<Option<PlantedBug>, CliError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let bug = PlantedBug::from_name(name).ok_or_else(|| {
        usage(format!(
            "unknown planted bug {name:?} (see `iscsi-harness sim plant list`)"
        ))
    })?;
    if !planted::ENABLED {
        return Err(usage(
            "planted bugs are not compiled in: rebuild with `--features planted-bugs`",
        ));
    }
    Ok(Some(bug))
}

/// Runs a `sim` command. `Ok(true)`: success; `Ok(false)`: a failed run.
pub fn run(command: SimCommand) -> Result<bool, CliError> {
    match command {
        SimCommand::List => {
            for s in scenarios::all() {
                println!("{:26} {}", s.name, s.summary);
            }
            println!("{} scenarios", scenarios::all().len());
            Ok(true)
        }
        SimCommand::Plant(PlantCommand::List) => {
            for b in PlantedBug::ALL {
                println!("{:30} {}", b.name(), b.describe());
            }
            if !planted::ENABLED {
                println!("(not compiled in: build with --features planted-bugs to use --plant)");
            }
            Ok(true)
        }
        SimCommand::Run(args) => {
            let scenario = scenarios::find(&args.scenario).ok_or_else(|| {
                usage(format!(
                    "unknown scenario {:?} (see `iscsi-harness sim list`)",
                    args.scenario
                ))
            })?;
            let token = Token {
                scenario,
                seed: args.seed,
                planted: plant(args.plant.as_deref())?,
            };
            run_one(token, &args.output)
        }
        SimCommand::Replay(args) => {
            let token: Token = args.token.parse().map_err(usage)?;
            if token.planted.is_some() && !planted::ENABLED {
                return Err(usage(
                    "this token needs planted bugs: rebuild with `--features planted-bugs`",
                ));
            }
            run_one(token, &args.output)
        }
        SimCommand::Swarm(args) => run_swarm(args),
    }
}

fn run_one(token: Token, output: &Output) -> Result<bool, CliError> {
    let options = RunOptions {
        keep_trace: output.trace.is_some(),
        pcap: output.pcap.is_some(),
        ..RunOptions::default()
    };
    let (outcome, result) = swarm::run_token(token, &options);
    println!(
        "scenario: {} ({})",
        token.scenario.name, token.scenario.summary
    );
    println!("seed: {}", token.seed);
    if let Some(bug) = token.planted {
        println!("planted: {bug} ({})", bug.describe());
    }
    println!("faults: {}", outcome.mix);
    let o = result.oracle;
    println!(
        "oracle: {} writes ({} acknowledged, {} unknown), {} reads checked ({} blocks), {} flushes, {} crashes",
        o.writes,
        o.writes_acked,
        o.writes_unknown,
        o.reads_checked,
        o.blocks_checked,
        o.flushes,
        o.crashes
    );
    println!(
        "simulated {:.3} s in {:.3} s ({} trace lines)",
        result.sim_time.as_secs_f64(),
        outcome.wall.as_secs_f64(),
        result.trace_len
    );
    if let (Some(path), Some(lines)) = (&output.trace, &result.trace_lines) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| io_error("writing the trace", e))?;
    }
    if let (Some(path), Some(pcap)) = (&output.pcap, &result.pcap) {
        std::fs::write(path, pcap).map_err(|e| io_error("writing the pcap", e))?;
    }
    if !outcome.passed() {
        println!("last events:");
        for line in &outcome.tail {
            println!("  {line}");
        }
        for f in &outcome.failures {
            println!("FAIL {f}");
        }
        println!("replay: iscsi-harness sim replay {token}");
    } else {
        println!("passed");
    }
    println!("trace-hash: {:016x}", result.trace_hash);
    Ok(outcome.passed())
}

fn parse_shard(text: &str) -> Result<(u64, u64), CliError> {
    let bad = || usage(format!("--shard {text:?}: expected K/N with 1 <= K <= N"));
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn run_swarm(args: SwarmArgs) -> Result<bool, CliError> {
    let scenario = match &args.scenario {
        Some(name) => Some(scenarios::find(name).ok_or_else(|| {
            usage(format!(
                "unknown scenario {name:?} (see `iscsi-harness sim list`)"
            ))
        })?),
        None => None,
    };
    let seeds = args.seeds.unwrap_or(match scenario {
        Some(_) => DEFAULT_SEEDS_PER_SCENARIO,
        None => DEFAULT_SEEDS_PER_SCENARIO * scenarios::all().len() as u64,
    });
    let config = SwarmConfig {
        seeds,
        start: args.start,
        scenario,
        planted: plant(args.plant.as_deref())?,
        shard: args.shard.as_deref().map(parse_shard).transpose()?,
        threads: args.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        }),
        stop_at_first_failure: args.first_failure,
    };
    let total = config.seed_list().len() as u64;
    println!(
        "swarm: {total} seeds from {}{}{}{} on {} threads",
        config.start,
        scenario
            .map(|s| format!(", scenario {}", s.name))
            .unwrap_or_default(),
        config
            .planted
            .map(|b| format!(", planted {b}"))
            .unwrap_or_default(),
        config
            .shard
            .map(|(k, n)| format!(", shard {k}/{n}"))
            .unwrap_or_default(),
        config.threads
    );
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if total < 20 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let verbose = args.verbose;
    let mut failed = 0u64;
    let report = swarm::run(&config, |o| {
        if !o.passed() {
            failed += 1;
            bar.set_message(format!("{failed} failed"));
            bar.suspend(|| {
                println!(
                    "FAIL {}: {} [faults: {}]",
                    o.token,
                    o.failures.first().map_or("", String::as_str),
                    o.mix
                );
                println!("  replay: iscsi-harness sim replay {}", o.token);
            });
        } else if verbose {
            bar.suspend(|| {
                println!(
                    "ok {} ({:.1} s simulated) [faults: {}]",
                    o.token,
                    o.sim_time.as_secs_f64(),
                    o.mix
                )
            });
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    if let Some(path) = &args.junit {
        let mut file =
            std::fs::File::create(path).map_err(|e| io_error("creating the JUnit file", e))?;
        swarm::junit(&report, &mut file).map_err(|e| io_error("writing the JUnit file", e))?;
    }
    let wall = report.wall.max(Duration::from_millis(1));
    let sim = report.sim_time();
    println!(
        "{:.1} s wall, {:.0} seeds/min, {:.0} simulated s per wall s ({:.0} s simulated)",
        wall.as_secs_f64(),
        report.outcomes.len() as f64 * 60.0 / wall.as_secs_f64(),
        sim.as_secs_f64() / wall.as_secs_f64(),
        sim.as_secs_f64()
    );
    if args.first_failure {
        if let Some(first) = report.outcomes.iter().find(|o| !o.passed()) {
            let index = config
                .seed_list()
                .iter()
                .position(|s| *s == first.token.seed)
                .map_or(0, |i| i + 1);
            println!("first failure after {index} seeds: {}", first.token);
        }
    }
    let _ = std::io::stdout().flush();
    println!("{} passed, {} failed", report.passed(), report.failed());
    Ok(report.failed() == 0)
}
