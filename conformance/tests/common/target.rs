//! Our target binary as a child of the test, and our binary's other
//! commands run to completion.

use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use iscsi_conformance::interop::target::launch;
use iscsi_conformance::interop::tools::ChildGuard;

/// This package's `iscsi-harness` executable.
const BINARY: &str = env!("CARGO_BIN_EXE_iscsi-harness");

/// Our target, started as a child process; killed on drop.
pub struct TargetProcess {
    pub child: ChildGuard,
    pub addr: SocketAddr,
    pub urls: Vec<String>,
}

impl TargetProcess {
    /// Starts `iscsi-harness target --listen 127.0.0.1:0 --seed 1 ARGS...`
    /// (its stderr is the test's) and waits for its address and URLs.
    pub fn start(args: &[&str]) -> TargetProcess {
        let mut cmd = Command::new(BINARY);
        cmd.arg("target")
            .args(["--listen", "127.0.0.1:0", "--seed", "1"])
            .args(args)
            .stderr(Stdio::inherit());
        let launched = launch(cmd, None, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("iscsi-harness target {args:?}: {e}"));
        let urls = launched.urls();
        assert!(!urls.is_empty(), "the target printed no URL");
        TargetProcess {
            child: launched.child,
            addr: launched.addr,
            urls,
        }
    }

    /// Resident memory of the target process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// How it exited, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_status()
    }
}

impl Drop for TargetProcess {
    /// SIGKILL, not the SIGTERM a [`ChildGuard`] starts with: a test is
    /// over, and a clean logout of its sessions would only slow it down.
    fn drop(&mut self) {
        self.child.kill();
    }
}

/// Runs `iscsi-harness ARGS` to completion.
pub fn harness(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("running iscsi-harness")
}
