//! The open-iscsi suite (Linux's initiator in a QEMU guest) against a target
//! on the host: ours (`iscsi-harness target`, this package's binary or
//! `ISCSI_HARNESS_BIN`) by default; tgtd, the reference the suite was
//! proven against, with `ISCSI_HARNESS_INTEROP_TARGET=tgtd`.
//!
//! Skips, saying why, when QEMU, tgtd or the tools that build the guest are
//! missing — unless `ISCSI_HARNESS_REQUIRE_PEERS=1`, which turns that into a
//! failure (CI sets it after installing the peers). `ISCSI_HARNESS_STEPS`
//! (comma-separated) runs only some steps; `ISCSI_HARNESS_ECHO=1` echoes the
//! guest's console; `ISCSI_HARNESS_BUDGET_FACTOR` scales the step budgets.

use std::path::PathBuf;

use iscsi_conformance::interop::open_iscsi::{self, Options, TargetKind};
use iscsi_conformance::interop::tools;

/// Programs the suite needs on the host, with their Debian packages.
const NEEDS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
];
const TGTD_NEEDS: &[(&str, &str)] = &[("tgtd", "tgt"), ("tgtadm", "tgt")];

fn target() -> TargetKind {
    match std::env::var("ISCSI_HARNESS_INTEROP_TARGET").as_deref() {
        Ok("tgtd") => TargetKind::Tgtd,
        _ => TargetKind::Harness {
            binary: std::env::var_os("ISCSI_HARNESS_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_iscsi-harness"))),
        },
    }
}

fn missing_peers(target: &TargetKind) -> Vec<String> {
    let extra = match target {
        TargetKind::Tgtd => TGTD_NEEDS,
        TargetKind::Harness { .. } => &[],
    };
    NEEDS
        .iter()
        .chain(extra)
        .filter(|(tool, _)| tools::which(tool).is_none())
        .map(|(tool, pkg)| format!("{tool} (apt-get install {pkg})"))
        .collect()
}

#[test]
fn open_iscsi_suite() {
    let target = target();
    let name = match &target {
        TargetKind::Tgtd => "tgtd",
        TargetKind::Harness { .. } => "iscsi-harness",
    };
    let missing = missing_peers(&target);
    if !missing.is_empty() {
        let why = format!("missing: {}", missing.join(", "));
        if std::env::var("ISCSI_HARNESS_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("ISCSI_HARNESS_REQUIRE_PEERS=1 but the open-iscsi suite cannot run: {why}");
        }
        eprintln!("skipped open-iscsi suite against {name}: {why}");
        return;
    }
    let mut opts = Options::new(target);
    opts.progress = true;
    opts.echo_console = std::env::var("ISCSI_HARNESS_ECHO").as_deref() == Ok("1");
    if let Some(f) = std::env::var("ISCSI_HARNESS_BUDGET_FACTOR")
        .ok()
        .and_then(|f| f.parse().ok())
    {
        opts.budget_factor = f;
    }
    if let Ok(steps) = std::env::var("ISCSI_HARNESS_STEPS") {
        opts.only = steps
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let report = open_iscsi::run(&opts).unwrap_or_else(|e| panic!("open-iscsi suite: {e}"));
    println!("{report}");
    assert!(
        report.success(),
        "open-iscsi against {name}: {}",
        report.summary()
    );
}
