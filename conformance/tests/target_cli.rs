//! `iscsi-harness target` as a user meets it: one clear error line and
//! exit status 2 for bad usage; on SIGTERM, sessions are asked to log out
//! (Async Message, RFC 7143 §11.9.1), log out cleanly, and the process
//! exits 0.

mod common;

use std::time::{Duration, Instant};

use common::scripted::Scripted;
use common::target::{TargetProcess, harness};
use iscsi_engine::pdu::{Header, LogoutRequest, Pdu, async_event};

/// `iscsi-harness ARGS`: (exit code, stderr).
fn status_and_stderr(args: &[&str]) -> (i32, String) {
    let out = harness(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for args in [
        &["target", "--lun", "1=mem:lots"][..],
        &["target", "--lun", "1=tape:/dev/st0"],
        &["target", "--allow", "not-an-address"],
        &["target", "--chap", "nocolon"],
        &["target", "--param", "MaxBurstLength=1"],
        &["target", "--lun", "1=file:/nonexistent/dir/x.img"],
        &["target", "--iqn", "bogus-name"],
    ] {
        let (code, stderr) = status_and_stderr(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with("iscsi-harness: error: "),
            "{args:?}: {stderr}"
        );
    }
    let (code, _) = status_and_stderr(&["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn sigterm_logs_sessions_out_and_exits_cleanly() {
    let mut target = TargetProcess::start(&[
        "--iqn",
        "iqn.2026-11.org.iscsi-harness:term",
        "--lun",
        "1=mem:16MiB",
    ]);
    let mut client = Scripted::connect(target.addr);
    client
        .login(
            "iqn.2026-11.org.iscsi-harness:host",
            "iqn.2026-11.org.iscsi-harness:term",
            1,
        )
        .expect("login");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(target.child.id() as i32).expect("pid"),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let pdu = client
        .recv(Duration::from_secs(5))
        .expect("a PDU")
        .expect("not closed");
    let Header::AsyncMessage(msg) = &pdu.header else {
        panic!("Async Message expected, got {pdu:?}")
    };
    assert_eq!(msg.async_event, async_event::LOGOUT_REQUEST);
    let logout = LogoutRequest {
        immediate: true,
        reason: 0,
        itt: 7,
        cmd_sn: client.script.cmd_sn,
        exp_stat_sn: client.script.exp_stat_sn,
        ..LogoutRequest::default()
    };
    client.send(&Pdu::bare(Header::LogoutRequest(logout)));
    let pdu = client
        .recv(Duration::from_secs(5))
        .expect("a PDU")
        .expect("not closed");
    assert!(
        matches!(pdu.header, Header::LogoutResponse(ref r) if r.response == 0),
        "{pdu:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = target.exit_status() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the target did not exit after the last logout"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}
