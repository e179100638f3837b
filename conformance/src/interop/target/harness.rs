//! Our own target, the `iscsi-harness target` command, as the target under
//! test. Its contract: `iscsi-harness target --listen ADDR --iqn IQN
//! --lun N=mem:SIZE|file:PATH [--lun ...] [--chap USER:SECRET]
//! [--mutual-chap USER:SECRET] [--allow IQN|CIDR|ALL ...] [--param Key=Value ...]`,
//! serving until SIGINT/SIGTERM.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Backing, Stop, TargetConfig, TargetUnderTest, file_tail, wait_listening};
use crate::interop::error::{Error, IoContext, Result, at};
use crate::interop::tools::ChildGuard;

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

    fn fail(&self, detail: String) -> Error {
        Error::Target {
            target: self.name(),
            detail,
        }
    }
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
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .ctx(|| at("open", &log_path))?;
        let log2 = log.try_clone().ctx(|| at("open", &log_path))?;
        let child = Command::new(&self.binary)
            .args(self.args(config))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(|| format!("start {}", self.binary.display()))?;
        self.child = Some(ChildGuard::new(child));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return Err(self.fail(format!("exited at start:\n{}", self.log_tail())));
            }
            if wait_listening(self.addr, Instant::now() + Duration::from_millis(300)) {
                self.config = Some(config.clone());
                return Ok(());
            }
        }
        Err(self.fail(format!("not listening on {} within 15 s", self.addr)))
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
