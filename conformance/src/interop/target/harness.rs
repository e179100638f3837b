//! Our own target, the `iscsi-harness target` command, as the target under
//! test. Its contract: `iscsi-harness target --listen ADDR --iqn IQN
//! --lun N=mem:SIZE|file:PATH [--lun ...] [--chap USER:SECRET]
//! [--mutual-chap USER:SECRET] [--allow IQN|CIDR|ALL ...] [--param Key=Value ...]`,
//! serving until SIGINT/SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Backing, Stop, TargetConfig, TargetUnderTest, append_log, file_tail};
use crate::interop::error::{Error, IoContext, Result};
use crate::interop::tools::{self, ChildGuard};

pub struct HarnessTarget {
    binary: PathBuf,
    addr: SocketAddr,
    workdir: PathBuf,
    child: Option<ChildGuard>,
    config: Option<TargetConfig>,
}

impl HarnessTarget {
    /// `binary` is the `iscsi-harness` executable; logs go in `workdir`.
    pub fn new(binary: &Path, workdir: &Path, port: u16) -> Result<Self> {
        if !binary.exists() {
            return Err(Error::Config(format!(
                "{} not found: build it with `cargo build --release`",
                binary.display()
            )));
        }
        Ok(Self {
            binary: binary.to_path_buf(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            workdir: workdir.to_path_buf(),
            child: None,
            config: None,
        })
    }

    fn log_path(&self) -> PathBuf {
        self.workdir.join("iscsi-harness-target.log")
    }

    /// The command line for `config`.
    pub fn args(&self, config: &TargetConfig) -> Vec<String> {
        let mut args = vec![
            "target".to_string(),
            "--listen".into(),
            self.addr.to_string(),
            "--iqn".into(),
            config.iqn.clone(),
        ];
        for lun in &config.luns {
            args.push("--lun".into());
            args.push(match &lun.backing {
                Backing::Mem { size } => format!("{}=mem:{size}", lun.id),
                Backing::File { path, .. } => format!("{}=file:{}", lun.id, path.display()),
            });
        }
        if let Some(c) = &config.chap {
            args.push("--chap".into());
            args.push(format!("{}:{}", c.user, c.secret));
        }
        if let Some(c) = &config.mutual_chap {
            args.push("--mutual-chap".into());
            args.push(format!("{}:{}", c.user, c.secret));
        }
        if config.allow.is_empty() {
            args.extend(["--allow".into(), "ALL".into()]);
        }
        for who in &config.allow {
            args.push("--allow".into());
            args.push(who.clone());
        }
        for (k, v) in &config.params {
            args.push("--param".into());
            args.push(format!("{k}={v}"));
        }
        args
    }
}

/// Our target process, once it has said where it listens.
pub struct Launched {
    pub child: ChildGuard,
    /// The address it printed, the real port when it was asked for port 0.
    pub addr: SocketAddr,
    /// What it prints next, line by line.
    lines: Receiver<String>,
}

impl Launched {
    /// The libiscsi URL of every LUN, as it printed them after its address.
    /// They come in the same write, so a short silence ends them; only a
    /// caller that needs them waits for it.
    pub fn urls(&self) -> Vec<String> {
        let mut urls = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            if line.starts_with("iscsi://") {
                urls.push(line);
            }
        }
        urls
    }
}

/// Starts `cmd`, an `iscsi-harness target` command line, and waits up to
/// `within` for the line it prints when it serves, `listening on ADDR`
/// (then one URL per LUN, see [`Launched::urls`]). That line, not a probing
/// connection, is the sign it is ready, so port 0 works too. With `log`,
/// its stdout and stderr are appended there; without, its stderr is left
/// as `cmd` has it. Used by [`HarnessTarget`] and by the tests that start
/// our target themselves.
pub fn launch(mut cmd: Command, log: Option<&Path>, within: Duration) -> Result<Launched> {
    let what = format!("start {}", tools::describe(&cmd));
    let log_path = log;
    let mut log = log.map(append_log).transpose()?;
    if let Some(f) = &log {
        cmd.stderr(f.try_clone().ctx(|| what.clone())?);
    }
    let mut child = ChildGuard::new(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .ctx(|| what.clone())?,
    );
    let stdout = child.inner().stdout.take().expect("stdout is piped");
    let (tx, lines) = mpsc::channel();
    // Drains stdout for the process's whole life, copying it to the log.
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    let not_ready = |detail: String| Error::Target {
        target: "iscsi-harness".into(),
        detail: match log_path {
            Some(p) => format!("{detail}:\n{}", file_tail(p, 20)),
            None => detail,
        },
    };
    let first = match lines.recv_timeout(within) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => {
            return Err(not_ready(format!("not listening within {within:?}")));
        }
        Err(RecvTimeoutError::Disconnected) => {
            let status = child.wait_until(Instant::now() + Duration::from_secs(1))?;
            return Err(not_ready(format!("exited at start ({status:?})")));
        }
    };
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| not_ready(format!("printed {first:?} instead of `listening on ADDR`")))?;
    Ok(Launched { child, addr, lines })
}

impl TargetUnderTest for HarnessTarget {
    fn name(&self) -> String {
        "iscsi-harness".into()
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn start(&mut self, config: &TargetConfig) -> Result<()> {
        self.stop(Stop::Graceful)?;
        config.prepare_files()?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.args(config));
        let launched = launch(cmd, Some(&self.log_path()), Duration::from_secs(15))?;
        self.child = Some(launched.child);
        self.config = Some(config.clone());
        Ok(())
    }

    fn stop(&mut self, how: Stop) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            match how {
                Stop::Graceful => child.terminate(Duration::from_secs(5)),
                Stop::Kill => child.kill(),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::target::{Credentials, Lun};

    #[test]
    fn command_line_follows_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let t = HarnessTarget::new(Path::new("/bin/sh"), dir.path(), 3999).unwrap();
        let mut c = TargetConfig::new("iqn.x:t");
        c.luns = vec![
            Lun {
                id: 1,
                backing: Backing::File {
                    path: "/tmp/l1".into(),
                    size: 1 << 20,
                },
            },
            Lun {
                id: 2,
                backing: Backing::Mem { size: 4096 },
            },
        ];
        c.chap = Some(Credentials::new("u", "s"));
        c.mutual_chap = Some(Credentials::new("mu", "ms"));
        c.params = vec![("ImmediateData".into(), "No".into())];
        assert_eq!(
            t.args(&c).join(" "),
            "target --listen 127.0.0.1:3999 --iqn iqn.x:t --lun 1=file:/tmp/l1 --lun 2=mem:4096 \
             --chap u:s --mutual-chap mu:ms --allow ALL --param ImmediateData=No"
        );
        c.allow = vec!["iqn.y:i".into(), "127.0.0.0/8".into()];
        assert!(
            t.args(&c)
                .join(" ")
                .contains("--allow iqn.y:i --allow 127.0.0.0/8 --param")
        );
    }
}
