//! LIO (Linux's kernel target) in a QEMU guest, checked from the host with
//! libiscsi's `iscsi-inq` and `iscsi-ls`.
//!
//! Skips, saying why, when QEMU, libiscsi's tools or the tools that build the
//! guest are missing — unless `ISCSI_HARNESS_REQUIRE_PEERS=1`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::peers::peers_present;
use iscsi_conformance::interop::GUEST_NEEDS;
use iscsi_conformance::interop::lio::{self, Backstore, LioOptions};
use iscsi_conformance::interop::target::Credentials;
use iscsi_conformance::interop::tools;
use iscsi_conformance::peers;

/// The guest's needs, and libiscsi's tools to check LIO with.
fn peers(test: &str) -> bool {
    peers_present(test, GUEST_NEEDS.iter().chain(peers::LIBISCSI))
}

fn libiscsi(tool: &str, args: &[&str]) -> tools::Output {
    let mut cmd = Command::new(peers::which(tool).expect("checked above"));
    cmd.args(args);
    tools::run(&mut cmd, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn echo() -> bool {
    std::env::var("ISCSI_HARNESS_ECHO").as_deref() == Ok("1")
}

#[test]
fn lio_ramdisk_answers_libiscsi() {
    if !peers("LIO ramdisk against libiscsi") {
        return;
    }
    let lio = lio::start(&LioOptions {
        echo_console: echo(),
        ..LioOptions::default()
    })
    .unwrap_or_else(|e| panic!("LIO guest: {e}"));
    eprintln!(
        "LIO serves {} (ready after {:.1} s)",
        lio.url(),
        lio.ready_after().as_secs_f64()
    );

    let inq = libiscsi("iscsi-inq", &[&lio.url()]);
    assert!(
        inq.status.success(),
        "iscsi-inq: {}{}",
        inq.stdout,
        inq.stderr
    );
    assert!(
        inq.stdout.contains("Vendor:LIO-ORG"),
        "iscsi-inq said: {}",
        inq.stdout
    );
    assert!(
        inq.stdout.contains("RAMDISK-MCP"),
        "iscsi-inq said: {}",
        inq.stdout
    );

    let portal = format!("iscsi://{}", lio.addr());
    let ls = libiscsi("iscsi-ls", &[&portal]);
    assert!(ls.status.success(), "iscsi-ls: {}{}", ls.stdout, ls.stderr);
    assert!(
        ls.stdout.contains(lio.iqn()),
        "iscsi-ls said: {}",
        ls.stdout
    );
    lio.shutdown();
}

#[test]
fn lio_fileio_with_chap_refuses_strangers() {
    if !peers("LIO with CHAP against libiscsi") {
        return;
    }
    let mut lio = lio::start(&LioOptions {
        backstore: Backstore::File,
        size_mib: 16,
        chap: Some(Credentials::new("lio-user", "lio-secret-1234")),
        echo_console: echo(),
        ..LioOptions::default()
    })
    .unwrap_or_else(|e| panic!("LIO guest: {e}"));

    let anonymous = libiscsi("iscsi-inq", &[&lio.url()]);
    assert!(
        !anonymous.status.success(),
        "LIO with CHAP let iscsi-inq in without credentials: {}",
        anonymous.stdout
    );

    let url = format!(
        "iscsi://lio-user%lio-secret-1234@{}/{}/0",
        lio.addr(),
        lio.iqn()
    );
    let inq = libiscsi("iscsi-inq", &[&url]);
    if !inq.status.success() {
        let dmesg = lio.dmesg().unwrap_or_else(|e| e.to_string());
        panic!(
            "iscsi-inq with CHAP: {}{}\nLIO's dmesg:\n{dmesg}",
            inq.stdout, inq.stderr
        );
    }
    assert!(
        inq.stdout.contains("FILEIO"),
        "iscsi-inq said: {}",
        inq.stdout
    );
    lio.shutdown();
}
