//! CHAP and access control against libiscsi's `iscsi-inq` (issue 3): the
//! right secret in the URL logs in and INQUIRY answers; a wrong secret, or
//! no secret, is refused at login; an initiator outside `--allow` is
//! refused even with the right secret.

mod common;

use std::process::Command;

use common::peers::peers_present;
use common::target::TargetProcess;
use iscsi_conformance::peers;

const IQN: &str = "iqn.2026-11.org.iscsi-harness:chap";
const ALLOWED: &str = "iqn.2026-11.org.iscsi-harness:allowed-host";

/// Runs `iscsi-inq` as `initiator` against `url`: (exit success, output).
fn inquiry(initiator: &str, url: &str) -> (bool, String) {
    let out = Command::new(peers::which("iscsi-inq").expect("checked first"))
        .args(["-i", initiator, url])
        .output()
        .expect("run iscsi-inq");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn url(target: &TargetProcess, credentials: &str) -> String {
    format!("iscsi://{credentials}{}/{IQN}/1", target.addr)
}

#[test]
fn chap_and_acl_with_libiscsi() {
    if !peers_present("CHAP and ACL with libiscsi", peers::LIBISCSI) {
        return;
    }
    let target = TargetProcess::start(&[
        "--iqn",
        IQN,
        "--lun",
        "1=mem:64MiB",
        "--chap",
        "alice:s3cret-s3cret",
        "--allow",
        ALLOWED,
        "--allow",
        "10.0.0.0/8",
    ]);

    let (ok, text) = inquiry(ALLOWED, &url(&target, "alice%s3cret-s3cret@"));
    assert!(ok, "the right secret must log in: {text}");
    assert!(
        text.contains("Vendor:HARNESS"),
        "INQUIRY data expected: {text}"
    );

    let (ok, text) = inquiry(ALLOWED, &url(&target, "alice%wrong-secret@"));
    assert!(!ok, "a wrong secret must be refused: {text}");
    assert!(
        text.to_lowercase().contains("login"),
        "a login failure expected: {text}"
    );

    let (ok, text) = inquiry(ALLOWED, &url(&target, ""));
    assert!(!ok, "no credentials must be refused: {text}");

    let (ok, text) = inquiry(
        "iqn.2026-11.org.iscsi-harness:stranger",
        &url(&target, "alice%s3cret-s3cret@"),
    );
    assert!(!ok, "an initiator outside --allow must be refused: {text}");
    assert!(
        text.to_lowercase().contains("login"),
        "a login failure expected: {text}"
    );
}

#[test]
fn mutual_chap_with_libiscsi_target_credentials() {
    if !peers_present("mutual CHAP with libiscsi", peers::LIBISCSI) {
        return;
    }
    // libiscsi's URL carries only the initiator's credentials, so a target
    // configured for mutual CHAP still serves initiators that do not ask
    // the target to prove itself.
    let target = TargetProcess::start(&[
        "--iqn",
        IQN,
        "--lun",
        "1=mem:64MiB",
        "--chap",
        "bob:b0b-secret-12",
        "--mutual-chap",
        "target:t4rget-secret",
    ]);
    let (ok, text) = inquiry(ALLOWED, &url(&target, "bob%b0b-secret-12@"));
    assert!(
        ok,
        "one-way CHAP to a mutual-capable target must log in: {text}"
    );
}
