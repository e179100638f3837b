//! `initiator perf`: a fixed number of commands always in flight, random or
//! sequential, reads or writes; prints IOPS and MiB/s as `iscsi-perf` does,
//! with a live progress line on a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use iscsi_engine::net::initiator::{BatchCommand, InitiatorError};

use super::{CliError, Options};

#[derive(Args, Debug)]
pub struct PerfArgs {
    /// iscsi://[user[%secret]@]host[:port]/iqn/lun
    pub url: String,
    /// Commands in flight.
    #[arg(long, default_value_t = 32)]
    pub qd: usize,
    /// Bytes per command (e.g. 4096, 4KiB, 1MiB); whole blocks.
    #[arg(long, default_value = "4096", value_parser = parse_bs)]
    pub bs: u64,
    /// Random LBAs (default: sequential).
    #[arg(long)]
    pub random: bool,
    /// Write instead of read (destroys the LUN's data).
    #[arg(long)]
    pub write: bool,
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
}

fn parse_bs(text: &str) -> Result<u64, String> {
    iscsi_engine::store::parse_size(text)
        .filter(|n| *n > 0 && *n <= 16 << 20)
        .ok_or_else(|| format!("{text:?} is not a size between 1 byte and 16 MiB"))
}

/// READ(16) or WRITE(16).
fn cdb(write: bool, lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = if write { 0x8a } else { 0x88 };
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

pub(super) async fn run(options: &Options, args: PerfArgs) -> Result<(), CliError> {
    if args.qd == 0 || args.qd > 4096 {
        return Err(CliError::usage("--qd must be between 1 and 4096"));
    }
    if !(args.seconds > 0.0 && args.seconds < 1e7) {
        return Err(CliError::usage("--seconds must be positive"));
    }
    let (session, lun) = options.login(&args.url).await?;
    println!("connected to {}", args.url);
    let cap = session.read_capacity(lun).await?;
    println!(
        "capacity is {} blocks or {} byte ({} MB)",
        cap.blocks,
        cap.bytes(),
        cap.bytes() >> 20
    );
    let block = u64::from(cap.block_size);
    if args.bs % block != 0 {
        return Err(CliError::usage(format!(
            "--bs {} is not a whole number of {block}-byte blocks",
            args.bs
        )));
    }
    let blocks = args.bs / block;
    if blocks > cap.blocks {
        return Err(CliError::usage("--bs is larger than the LUN"));
    }
    let slots = cap.blocks / blocks;
    println!(
        "performing {} {} with {} parallel requests",
        if args.random { "RANDOM" } else { "SEQUENTIAL" },
        if args.write { "WRITE" } else { "READ" },
        args.qd
    );
    println!("FIXED transfer size of {blocks} blocks ({} byte)", args.bs);
    println!("will run for {} seconds.", args.seconds);

    let data = if args.write {
        let mut rng = SmallRng::seed_from_u64(options.seed());
        let mut v = vec![0u8; args.bs as usize];
        rng.fill(&mut v[..]);
        Bytes::from(v)
    } else {
        Bytes::new()
    };
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = tokio::time::Instant::now();
    let generator = {
        let (session, done, stop) = (session.clone(), done.clone(), stop.clone());
        let mut rng = SmallRng::seed_from_u64(options.seed());
        let (random, write, qd) = (args.random, args.write, args.qd);
        let expected = if write { 0 } else { args.bs as u32 };
        let mut next = 0u64;
        let mut command = move |tag: u64| {
            let slot = if random {
                rng.random_range(0..slots)
            } else {
                next += 1;
                (next - 1) % slots
            };
            BatchCommand {
                tag,
                lun,
                cdb: cdb(write, slot * blocks, blocks as u32),
                cdb_len: 16,
                data_out: data.clone(),
                expected_in: expected,
            }
        };
        tokio::spawn(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            session.submit_batch((0..qd as u64).map(&mut command), &tx);
            let mut in_flight = qd;
            let mut results = Vec::with_capacity(qd);
            while in_flight > 0 {
                let got = rx.recv_many(&mut results, qd).await;
                if got == 0 {
                    break;
                }
                in_flight -= got;
                for (_, r) in results.drain(..) {
                    r?.check()?;
                }
                done.fetch_add(got as u64, Ordering::Relaxed);
                if !stop.load(Ordering::Relaxed) {
                    session.submit_batch((0..got as u64).map(&mut command), &tx);
                    in_flight += got;
                }
            }
            Ok::<(), InitiatorError>(())
        })
    };

    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} {spinner} {msg}")
                .expect("template"),
        );
        bar
    });
    let total = Duration::from_secs_f64(args.seconds);
    let mut last = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        let remaining = total.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep(remaining) => {}
        }
        let now = done.load(Ordering::Relaxed);
        if let Some(bar) = &progress {
            let secs = start.elapsed().as_secs_f64();
            let avg = now as f64 / secs;
            bar.set_message(format!(
                "iops current {} ({} MB/s), iops average {} ({} MB/s)",
                now - last,
                ((now - last) * args.bs) >> 20,
                avg as u64,
                (avg * args.bs as f64) as u64 >> 20
            ));
            bar.tick();
        }
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    let failure = match generator.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(f) = failure {
        return Err(CliError::run(f));
    }
    let iops = count as f64 / elapsed;
    println!(
        "iops average {} ({} MB/s)",
        iops as u64,
        (iops * args.bs as f64) as u64 >> 20
    );
    println!("{count} commands in {elapsed:.2} seconds");
    session.logout().await?;
    Ok(())
}
