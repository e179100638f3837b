//! Boots the guest under `qemu-system-x86_64 -accel tcg` and talks to it over
//! its serial console: the guest prints `@@` markers on stdout, the host
//! answers on stdin. Every wait has a deadline; the QEMU process is killed
//! when the [`Guest`] is dropped. The whole console is kept for reports.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::error::{Error, IoContext, Result, at};
use super::image::{self, GuestImage};
use super::tools::ChildGuard;
use crate::peers;

/// The address the guest dials to reach the host's forwarded port.
pub const GUEST_PORTAL: &str = "10.0.2.100:3260";

/// How to boot one guest.
#[derive(Debug, Clone)]
pub struct BootSpec {
    /// Shell code run by the guest's init (sourced, after network set-up).
    pub script: String,
    /// Extra files for the run archive, e.g. `("etc/iscsi/initiatorname.iscsi", ..)`.
    pub extra_files: Vec<(String, String)>,
    /// Guest connections to [`GUEST_PORTAL`] go to this host loopback port.
    pub guestfwd: Option<u16>,
    /// `(host loopback port, guest port)`: host connections reach the guest.
    pub hostfwd: Option<(u16, u16)>,
    pub memory_mib: u32,
    /// Until the guest prints `@@BOOTED`.
    pub boot_timeout: Duration,
    /// Where the per-boot initrd is written.
    pub workdir: PathBuf,
}

impl BootSpec {
    pub fn new(script: String, workdir: &Path) -> Self {
        Self {
            script,
            extra_files: Vec::new(),
            guestfwd: None,
            hostfwd: None,
            memory_mib: 512,
            boot_timeout: Duration::from_secs(90),
            workdir: workdir.to_path_buf(),
        }
    }
}

/// What the console said next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Line(String),
    /// Nothing before the deadline.
    Timeout,
    /// QEMU exited (the guest powered off or died).
    Exited,
}

/// A running guest.
pub struct Guest {
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    console: Arc<Mutex<Vec<String>>>,
    /// How long from starting QEMU to `@@BOOTED`.
    pub boot_time: Duration,
}

impl Guest {
    /// Starts QEMU and waits for the guest's init to print `@@BOOTED`.
    pub fn boot(image: &GuestImage, spec: &BootSpec) -> Result<Self> {
        let qemu = peers::require("qemu-system-x86_64", "qemu-system-x86")?;
        let initrd = spec.workdir.join("initrd.cpio");
        fs::copy(&image.initramfs, &initrd).ctx(|| at("copy to", &initrd))?;
        {
            let extra: Vec<(&str, &str)> = spec
                .extra_files
                .iter()
                .map(|(p, t)| (p.as_str(), t.as_str()))
                .collect();
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&initrd)
                .ctx(|| at("open", &initrd))?;
            f.write_all(&image::run_archive(&spec.script, &extra))
                .ctx(|| at("append to", &initrd))?;
        }

        let mut netdev = String::from("user,id=n0,restrict=on");
        if let Some(port) = spec.guestfwd {
            let busybox = peers::require("busybox", "busybox-static")?;
            // A fresh `nc` per guest connection, so reconnects get a new one.
            let (ip, gport) = GUEST_PORTAL
                .split_once(':')
                .unwrap_or(("10.0.2.100", "3260"));
            netdev.push_str(&format!(
                ",guestfwd=tcp:{ip}:{gport}-cmd:{} nc 127.0.0.1 {port}",
                busybox.display()
            ));
        }
        if let Some((host, guest)) = spec.hostfwd {
            netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        let mut cmd = Command::new(qemu);
        cmd.args(["-accel", "tcg", "-cpu", "max", "-smp", "1", "-m"])
            .arg(spec.memory_mib.to_string())
            .args(["-nographic", "-no-reboot", "-kernel"])
            .arg(&image.kernel.vmlinuz)
            .arg("-initrd")
            .arg(&initrd)
            .args([
                "-append",
                "console=ttyS0 quiet loglevel=3 panic=-1",
                "-netdev",
                &netdev,
                "-device",
                "virtio-net-pci,netdev=n0",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = ChildGuard::new(cmd.spawn().ctx(|| "start qemu-system-x86_64".into())?);
        let console = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.inner().stdout.take();
        let stderr = child.inner().stderr.take();
        spawn_reader(stdout, tx.clone(), console.clone(), "");
        spawn_reader(stderr, tx, console.clone(), "qemu: ");
        let stdin = child.inner().stdin.take();
        let mut guest = Guest {
            child,
            stdin,
            lines,
            console,
            boot_time: Duration::ZERO,
        };
        guest.expect("@@BOOTED", started + spec.boot_timeout)?;
        guest.boot_time = started.elapsed();
        Ok(guest)
    }

    /// The next console line (markers are cut from any noise before `@@`).
    pub fn next(&mut self, deadline: Instant) -> Next {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(line) => Next::Line(match line.find("@@") {
                Some(i) => line[i..].to_string(),
                None => line,
            }),
            Err(RecvTimeoutError::Timeout) => Next::Timeout,
            Err(RecvTimeoutError::Disconnected) => Next::Exited,
        }
    }

    /// Reads until a line starting with `prefix`, which it returns.
    pub fn expect(&mut self, prefix: &str, deadline: Instant) -> Result<String> {
        loop {
            match self.next(deadline) {
                Next::Line(l) if l.starts_with(prefix) => return Ok(l),
                Next::Line(_) => {}
                Next::Timeout => {
                    return Err(Error::Guest(format!(
                        "no `{prefix}` in time; console ends with:\n{}",
                        self.console_tail(15)
                    )));
                }
                Next::Exited => {
                    return Err(Error::Guest(format!(
                        "QEMU exited before `{prefix}`; console ends with:\n{}",
                        self.console_tail(15)
                    )));
                }
            }
        }
    }

    /// Sends one line to the guest's console (its shell reads it).
    pub fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::Guest("console input closed".into()))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| stdin.flush())
            .ctx(|| "write to the guest console".into())
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> String {
        let log = self.console.lock().unwrap_or_else(|e| e.into_inner());
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// The whole console so far.
    pub fn console_log(&self) -> String {
        self.console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Waits up to `grace` for the guest to power off by itself, then kills it.
    pub fn shutdown(&mut self, grace: Duration) {
        let _ = self.child.wait_until(Instant::now() + grace);
        self.child.kill();
    }

    /// Kills QEMU now.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Copies a pipe into the console log and the line channel.
fn spawn_reader<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
    tx: mpsc::Sender<String>,
    console: Arc<Mutex<Vec<String>>>,
    tag: &'static str,
) {
    let Some(pipe) = pipe else { return };
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = clean(&String::from_utf8_lossy(&buf));
            let line = format!("{tag}{line}");
            console
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

/// Drops terminal escapes and control characters.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ params letter, or ESC + one char.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// A free loopback port (bound then released; a small race we accept).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ctx(|| "bind 127.0.0.1:0".into())?;
    Ok(l.local_addr().ctx(|| "local address".into())?.port())
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_strips_escapes() {
        assert_eq!(clean("\x1b[2J\x1b[01;01Hhello\r\n"), "hello");
        assert_eq!(clean("\x1bcSeaBIOS"), "SeaBIOS");
    }
}
