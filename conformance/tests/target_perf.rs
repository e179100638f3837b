//! Our target against tgtd, measured the same way in the same run:
//! libiscsi's `iscsi-perf` reading 4 KiB blocks at random, 32 at a time,
//! from a LUN backed by a file in /dev/shm filled with random data (the
//! same bytes for both). Rounds alternate between the targets and each is
//! judged by its best round, since the load of a shared machine only takes
//! IOPS away. Alone in its test binary so nothing else takes the CPU.

mod common;

use std::process::Command;

use common::peers::{peers_present, tgtd_or_skip};
use common::target::TargetProcess;
use iscsi_conformance::peers::{self, Need};

const ISCSI_PERF: Need = ("iscsi-perf", "libiscsi-bin");
const TGTD: &str = "iqn.2026-11.org.iscsi-harness.test:perf-tgtd";
const OURS: &str = "iqn.2026-11.org.iscsi-harness.test:perf-ours";
const ROUNDS: usize = 4;

fn iops(output: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(output);
    let at = text.rfind("iops average ")?;
    text[at + 13..].split_whitespace().next()?.parse().ok()
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn our_target_serves_at_least_as_many_iops_as_tgtd() {
    let test = "target perf comparison";
    if !peers_present(test, &[ISCSI_PERF]) {
        return;
    }
    let iscsi_perf = peers::which(ISCSI_PERF.0).expect("checked above");
    let Some(tgtd) = tgtd_or_skip(test, TGTD, &[]) else {
        return;
    };
    let size = std::fs::metadata(tgtd.lun_file())
        .expect("tgtd's LUN file")
        .len() as usize;
    let data = pattern(size);
    std::fs::write(tgtd.lun_file(), &data).expect("fill tgtd's LUN");
    let ours_file = std::path::PathBuf::from(format!(
        "/dev/shm/iscsi-harness-perf-{}.img",
        std::process::id()
    ));
    std::fs::write(&ours_file, &data).expect("fill our LUN");
    let ours = TargetProcess::start(&[
        "--iqn",
        OURS,
        "--lun",
        &format!("1=file:{}", ours_file.display()),
    ]);
    let run = |url: &str| -> u64 {
        let out = Command::new(&iscsi_perf)
            .args(["-m", "32", "-b", "8", "-t", "3", "-r", url])
            .output()
            .expect("run iscsi-perf");
        iops(&out.stdout).unwrap_or_else(|| panic!("no result from iscsi-perf against {url}"))
    };
    let (mut theirs, mut mine) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        theirs.push(run(&tgtd.url()));
        mine.push(run(&ours.urls[0]));
    }
    drop(ours);
    let _ = std::fs::remove_file(&ours_file);
    let best = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let ratio = best(&mine) as f64 / best(&theirs).max(1) as f64;
    eprintln!(
        "iscsi-perf 4 KiB random reads, QD 32: tgtd {theirs:?}, ours {mine:?}; best-round ratio {ratio:.2}"
    );
    assert!(ratio >= 1.0, "our target serves {ratio:.2}x tgtd's IOPS");
}
