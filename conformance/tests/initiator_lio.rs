//! `iscsi-harness interop lio`: our initiator against LIO in a QEMU guest —
//! discovery, login with the negotiated parameters printed, INQUIRY and
//! capacity, 8 MiB written, read back and verified, a LUN reset, logout,
//! CRC32C digests — ending `N passed, 0 failed`.
//!
//! Skips, saying why, when QEMU or the tools that build the guest are
//! missing — unless `ISCSI_HARNESS_REQUIRE_PEERS=1`.

mod common;

use std::process::Command;

use common::peers::peers_present;
use iscsi_conformance::interop::GUEST_NEEDS;

#[test]
fn interop_lio_passes_every_step() {
    if !peers_present("interop lio", GUEST_NEEDS) {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_iscsi-harness"))
        .args(["interop", "lio"])
        .output()
        .expect("running iscsi-harness interop lio");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "interop lio failed");
    assert!(
        stdout.contains("negotiated with LIO:\n  HeaderDigest="),
        "{stdout}"
    );
    assert!(stdout.contains("PASS write-read-verify 8 MiB"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("8 passed, 0 failed"),
        "{stdout}"
    );
}
