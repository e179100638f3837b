//! tgt's `tgtd` as the target under test: one private daemon per instance
//! (its own portal and control port), configured with `tgtadm`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    Backing, Credentials, Stop, TargetConfig, TargetUnderTest, append_log, file_tail,
    wait_listening,
};
use crate::interop::error::{Error, IoContext, Result, at};
use crate::interop::tools::{self, ChildGuard};
use crate::peers::{self, Need};

const TGTADM_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Tgtd {
    control_port: u16,
    tgtd: PathBuf,
    tgtadm: PathBuf,
    addr: SocketAddr,
    workdir: PathBuf,
    child: Option<ChildGuard>,
    config: Option<TargetConfig>,
}

impl Tgtd {
    /// tgtd's programs and their Debian package.
    pub const NEEDS: &[Need] = &[("tgtd", "tgt"), ("tgtadm", "tgt")];

    /// Finds tgtd and tgtadm; scratch files (logs, memory LUNs) go in
    /// `workdir`; it will listen on `127.0.0.1:port`.
    pub fn new(workdir: &Path, port: u16) -> Result<Self> {
        Ok(Self {
            control_port: free_control_port(port),
            tgtd: peers::require("tgtd", "tgt")?,
            tgtadm: peers::require("tgtadm", "tgt")?,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            workdir: workdir.to_path_buf(),
            child: None,
            config: None,
        })
    }

    fn control_port(&self) -> String {
        self.control_port.to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.workdir.join("tgtd.log")
    }

    fn tgtadm(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.tgtadm);
        cmd.args(["-C", &self.control_port(), "--lld", "iscsi"])
            .args(args);
        tools::run_ok(&mut cmd, TGTADM_TIMEOUT)
            .map(|o| o.stdout)
            .map_err(|e| self.fail(e.to_string()))
    }

    fn fail(&self, detail: String) -> Error {
        Error::Target {
            target: self.name(),
            detail,
        }
    }

    fn configure(&self, config: &TargetConfig) -> Result<()> {
        self.tgtadm(&[
            "--mode",
            "target",
            "--op",
            "new",
            "--tid",
            "1",
            "--targetname",
            &config.iqn,
        ])?;
        for lun in &config.luns {
            let path = match &lun.backing {
                Backing::File { path, .. } => path.clone(),
                Backing::Mem { size } => {
                    let p = self.workdir.join(format!("tgtd-mem-lun{}.img", lun.id));
                    let f = fs::File::create(&p).ctx(|| at("create", &p))?;
                    f.set_len(*size).ctx(|| at("size", &p))?;
                    p
                }
            };
            self.tgtadm(&[
                "--mode",
                "logicalunit",
                "--op",
                "new",
                "--tid",
                "1",
                "--lun",
                &lun.id.to_string(),
                "--backing-store",
                &path.to_string_lossy(),
            ])?;
        }
        if let Some(c) = &config.chap {
            self.account(c, &[])?;
        }
        if let Some(c) = &config.mutual_chap {
            self.account(c, &["--outgoing"])?;
        }
        for (key, value) in &config.params {
            self.update(key, value)?;
        }
        let allow: Vec<&str> = if config.allow.is_empty() {
            vec!["ALL"]
        } else {
            config.allow.iter().map(String::as_str).collect()
        };
        for who in allow {
            let how = if who.starts_with("iqn.") || who.starts_with("eui.") {
                "--initiator-name"
            } else {
                "--initiator-address"
            };
            self.tgtadm(&["--mode", "target", "--op", "bind", "--tid", "1", how, who])?;
        }
        Ok(())
    }

    /// A CHAP account bound to the target; `--outgoing` makes it the one
    /// the target answers with (mutual CHAP).
    fn account(&self, c: &Credentials, how: &[&str]) -> Result<()> {
        self.tgtadm(&[
            "--mode",
            "account",
            "--op",
            "new",
            "--user",
            &c.user,
            "--password",
            &c.secret,
        ])?;
        let bind = ["--mode", "account", "--op", "bind", "--tid", "1", "--user"];
        let mut args = bind.to_vec();
        args.push(&c.user);
        args.extend_from_slice(how);
        self.tgtadm(&args).map(drop)
    }

    /// Sets one negotiation value of the target.
    fn update(&self, key: &str, value: &str) -> Result<()> {
        self.tgtadm(&[
            "--mode", "target", "--op", "update", "--tid", "1", "--name", key, "--value", value,
        ])
        .map(drop)
    }

    /// Changes a negotiation value of the running target, e.g.
    /// `("HeaderDigest", "CRC32C")`: sessions that log in from now on see
    /// it, and so does a restart.
    pub fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        self.update(key, value)?;
        if let Some(config) = self.config.as_mut() {
            config.params.retain(|(k, _)| k != key);
            config.params.push((key.to_string(), value.to_string()));
        }
        Ok(())
    }
}

/// tgtd names its control socket `/var/run/tgtd/socket.N` after its control
/// port N (at most 32767): derive N from our portal port and skip numbers
/// whose socket answers, so concurrent daemons never share one.
fn free_control_port(port: u16) -> u16 {
    let mut n = 10_000 + port % 20_000;
    for _ in 0..100 {
        let sock = format!("/var/run/tgtd/socket.{n}");
        if std::os::unix::net::UnixStream::connect(&sock).is_err() {
            return n;
        }
        n = 10_000 + (n - 10_000 + 1) % 20_000;
    }
    n
}

impl TargetUnderTest for Tgtd {
    fn name(&self) -> String {
        "tgtd".into()
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn start(&mut self, config: &TargetConfig) -> Result<()> {
        self.stop(Stop::Graceful)?;
        config.prepare_files()?;
        fs::create_dir_all("/var/run/tgtd").ctx(|| "create /var/run/tgtd".into())?;
        let log_path = self.log_path();
        let log = append_log(&log_path)?;
        let log2 = log.try_clone().ctx(|| at("open", &log_path))?;
        let child = Command::new(&self.tgtd)
            .args(["-f", "-C", &self.control_port(), "--iscsi"])
            .arg(format!("portal={}", self.addr))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(|| "start tgtd".into())?;
        self.child = Some(ChildGuard::new(child));
        // Ready when tgtadm can talk to it and the portal accepts connections.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if !self.is_running() {
                let tail = self.log_tail();
                self.child = None;
                return Err(self.fail(format!("tgtd exited at start:\n{tail}")));
            }
            if self.tgtadm(&["--mode", "target", "--op", "show"]).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(self.fail("tgtd did not answer tgtadm within 15 s".into()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !wait_listening(self.addr, deadline) {
            return Err(self.fail(format!("tgtd is not listening on {}", self.addr)));
        }
        self.config = Some(config.clone());
        self.configure(config)
    }

    fn stop(&mut self, how: Stop) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if how == Stop::Graceful && child.try_status().is_none() {
            // tgtd ignores SIGTERM, and its own shutdown (`system delete`)
            // is refused while a target exists (`--force` is not taken
            // there): delete the target first, dropping its sessions.
            let _ = self.tgtadm(&[
                "--mode", "target", "--op", "delete", "--tid", "1", "--force",
            ]);
            let _ = self.tgtadm(&["--mode", "system", "--op", "delete"]);
            let _ = child.wait_until(Instant::now() + Duration::from_secs(5));
        }
        child.kill();
        // A killed tgtd leaves its control socket and lock file behind.
        for suffix in ["", ".lock"] {
            let _ = fs::remove_file(format!(
                "/var/run/tgtd/socket.{}{suffix}",
                self.control_port
            ));
        }
        Ok(())
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .map(|c| c.try_status().is_none())
            .unwrap_or(false)
    }

    fn config(&self) -> Option<&TargetConfig> {
        self.config.as_ref()
    }

    fn log_tail(&self) -> String {
        file_tail(&self.log_path(), 20)
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        // tgtd ignores the SIGTERM a plain ChildGuard would send first.
        let _ = self.stop(Stop::Graceful);
    }
}
