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

mod common;

use std::path::PathBuf;

use common::peers::peers_present;
use iscsi_conformance::interop::GUEST_NEEDS;
use iscsi_conformance::interop::open_iscsi::{self, Options, TargetKind};
use iscsi_conformance::interop::target::Tgtd;

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

#[test]
fn open_iscsi_suite() {
    let target = target();
    let (name, extra) = match &target {
        TargetKind::Tgtd => ("tgtd", Tgtd::NEEDS),
        TargetKind::Harness { .. } => ("iscsi-harness", &[][..]),
    };
    let test = format!("open-iscsi suite against {name}");
    if !peers_present(&test, GUEST_NEEDS.iter().chain(extra)) {
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
