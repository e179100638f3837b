//! The open-iscsi suite (Linux's initiator in a QEMU guest) against tgtd.
//!
//! Skips, saying why, when QEMU, tgtd or the tools that build the guest are
//! missing — unless `ISCSI_HARNESS_REQUIRE_PEERS=1`, which turns that into a
//! failure (CI sets it after installing the peers). `ISCSI_HARNESS_STEPS`
//! (comma-separated) runs only some steps; `ISCSI_HARNESS_ECHO=1` echoes the
//! guest's console.

use iscsi_conformance::interop::open_iscsi::{self, Options, TargetKind};
use iscsi_conformance::interop::tools;

/// Programs the suite needs on the host, with their Debian packages.
const NEEDS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("tgtd", "tgt"),
    ("tgtadm", "tgt"),
    ("busybox", "busybox-static"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
];

fn missing_peers() -> Vec<String> {
    NEEDS
        .iter()
        .filter(|(tool, _)| tools::which(tool).is_none())
        .map(|(tool, pkg)| format!("{tool} (apt-get install {pkg})"))
        .collect()
}

#[test]
fn open_iscsi_against_tgtd() {
    let missing = missing_peers();
    if !missing.is_empty() {
        let why = format!("missing: {}", missing.join(", "));
        if std::env::var("ISCSI_HARNESS_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("ISCSI_HARNESS_REQUIRE_PEERS=1 but the open-iscsi suite cannot run: {why}");
        }
        eprintln!("skipped open-iscsi suite against tgtd: {why}");
        return;
    }
    let mut opts = Options::new(TargetKind::Tgtd);
    opts.progress = true;
    opts.echo_console = std::env::var("ISCSI_HARNESS_ECHO").as_deref() == Ok("1");
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
        "open-iscsi against tgtd: {}",
        report.summary()
    );
}
