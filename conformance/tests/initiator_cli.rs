//! `iscsi-harness initiator ...` against `iscsi-harness target`, both as
//! processes on loopback: output formats, digests and mutual CHAP from the
//! command line, and the exit-status contract (0 success, 1 failure,
//! 2 bad usage, one error line).

mod common;

use std::process::{Command, Output};

use common::target::TargetProcess;

const IQN: &str = "iqn.2026-11.org.iscsi-harness.test:cli";

/// `iscsi-harness ARGS`, logging errors only: the tests hold stderr to
/// exactly one line.
fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iscsi-harness"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("running iscsi-harness")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = harness(args);
    assert!(
        out.status.success(),
        "iscsi-harness {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn target(extra: &[&str]) -> TargetProcess {
    let mut args = vec!["--iqn", IQN, "--lun", "1=mem:64MiB"];
    args.extend(extra);
    TargetProcess::start(&args)
}

#[test]
fn discover_ls_write_read_perf() {
    let t = target(&[]);
    let addr = t.addr.to_string();
    let discovered = String::from_utf8(ok(&["initiator", "discover", &addr])).unwrap();
    assert_eq!(discovered, format!("{},1 {IQN}\n", t.addr));
    let ls = String::from_utf8(ok(&["initiator", "ls", &format!("iscsi://{addr}")])).unwrap();
    assert_eq!(
        ls,
        format!(
            "Target:{IQN} Portal:{},1\nLun:1    Type:DIRECT_ACCESS (Size:64M)\n",
            t.addr
        )
    );
    let url = format!("iscsi://{}/{IQN}/1", t.addr);
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 + i / 512) as u8).collect();
    let path =
        std::env::temp_dir().join(format!("iscsi-harness-cli-test-{}.bin", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    ok(&["initiator", "write", &url, "4096", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(ok(&["initiator", "read", &url, "4096", "128"]) == data);
    let perf = String::from_utf8(ok(&[
        "initiator",
        "perf",
        &url,
        "--qd",
        "8",
        "--bs",
        "64KiB",
        "--write",
        "--seconds",
        "0.5",
    ]))
    .unwrap();
    assert!(
        perf.contains("performing SEQUENTIAL WRITE with 8 parallel requests"),
        "{perf}"
    );
    assert!(
        perf.contains("FIXED transfer size of 128 blocks (65536 byte)"),
        "{perf}"
    );
    assert!(
        perf.lines().any(|l| l.starts_with("iops average ")),
        "{perf}"
    );
}

#[test]
fn digests_and_mutual_chap_from_the_command_line() {
    let t = target(&[
        "--chap",
        "alice:alice-secret-1",
        "--mutual-chap",
        "disk:target-secret-1",
        "--param",
        "HeaderDigest=CRC32C",
    ]);
    let url = format!("iscsi://{}/{IQN}/1", t.addr);
    let flags = [
        "--chap",
        "alice:alice-secret-1",
        "--mutual-chap",
        "disk:target-secret-1",
        "--header-digest",
        "CRC32C",
        "--data-digest",
        "CRC32C",
    ];
    let mut args = vec!["initiator", "read", &url, "0", "8"];
    args.extend(flags);
    assert_eq!(ok(&args).len(), 4096);
    // The secret in the URL, libiscsi style.
    let with_secret = format!("iscsi://alice%alice-secret-1@{}/{IQN}/1", t.addr);
    assert_eq!(
        ok(&["initiator", "read", &with_secret, "0", "1"]).len(),
        512
    );
    // A wrong secret: one error line with the login status, exit 1.
    let out = harness(&[
        "initiator",
        "read",
        &url,
        "0",
        "1",
        "--chap",
        "alice:wrong-secret-1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("iscsi-harness: error: login to "), "{err}");
    assert!(err.contains("authentication failure"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The target refuses to skip authentication.
    let out = harness(&["initiator", "read", &url, "0", "1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn errors_follow_the_exit_status_contract() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let out = harness(&["initiator", "discover", &addr.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!("iscsi-harness: error: cannot connect to {addr}: Connection refused\n")
    );
    for args in [
        vec!["initiator", "read", "http://x/iqn.a:b/1", "0", "1"],
        vec!["initiator", "read", "iscsi://127.0.0.1/iqn.a:b", "0", "1"],
        vec!["initiator", "ls", "iscsi://127.0.0.1:99999"],
        vec![
            "initiator",
            "discover",
            "127.0.0.1",
            "--param",
            "Nonsense=1",
        ],
        vec![
            "initiator",
            "read",
            "iscsi://h/iqn.a:b/1",
            "0",
            "1",
            "--chap",
            "nocolon",
        ],
        vec!["initiator", "perf", "iscsi://h/iqn.a:b/1", "--bs", "0"],
    ] {
        let out = harness(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.is_empty(), "{args:?}");
    }
}
