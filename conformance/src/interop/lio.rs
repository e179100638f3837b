//! LIO, Linux's kernel target, in a QEMU guest, for the host's initiators
//! (ours, libiscsi's `iscsi-inq`/`iscsi-ls`): configured through configfs with
//! one LUN (ramdisk or file backstore) and optional CHAP, reached on a host
//! loopback port that QEMU forwards to the guest's port 3260.
//!
//! LIO under software emulation is slow: keep what runs against it short.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::{Error, IoContext, Result};
use super::image;
use super::qemu::{self, BootSpec, Guest};
use super::target::Credentials;

/// The IQN LIO serves unless told otherwise.
pub const DEFAULT_IQN: &str = "iqn.2024-01.org.iscsi-harness:lio";

/// What backs LIO's LUN 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backstore {
    /// `rd_mcp`: LIO's memory disk ("LIO-ORG RAMDISK-MCP").
    Ramdisk,
    /// `fileio` over a file in the guest's memory ("LIO-ORG FILEIO").
    File,
}

#[derive(Debug, Clone)]
pub struct LioOptions {
    pub cache_dir: PathBuf,
    pub iqn: String,
    pub size_mib: u32,
    pub backstore: Backstore,
    /// Initiators must authenticate with this (one-way CHAP).
    pub chap: Option<Credentials>,
    /// LIO authenticates itself with this (mutual CHAP; needs `chap`).
    pub mutual_chap: Option<Credentials>,
    /// Host loopback port to forward; a free one when `None`.
    pub port: Option<u16>,
    /// From starting QEMU to LIO accepting logins.
    pub ready_timeout: Duration,
    /// Echo the guest's console to stderr.
    pub echo_console: bool,
}

impl Default for LioOptions {
    fn default() -> Self {
        Self {
            cache_dir: image::default_cache_dir(),
            iqn: DEFAULT_IQN.into(),
            size_mib: 64,
            backstore: Backstore::Ramdisk,
            chap: None,
            mutual_chap: None,
            port: None,
            ready_timeout: Duration::from_secs(120),
            echo_console: false,
        }
    }
}

/// A running LIO guest; QEMU is killed when it is dropped.
pub struct LioGuest {
    guest: Guest,
    addr: SocketAddr,
    iqn: String,
    lun_bytes: u64,
    ready_after: Duration,
    _work: tempfile::TempDir,
}

/// Boots the guest and waits until LIO serves.
pub fn start(opts: &LioOptions) -> Result<LioGuest> {
    if opts.mutual_chap.is_some() && opts.chap.is_none() {
        return Err(Error::Config("mutual CHAP needs one-way CHAP too".into()));
    }
    if opts.size_mib == 0 {
        return Err(Error::Config("the LUN needs a size".into()));
    }
    let started = Instant::now();
    let image = image::ensure(&opts.cache_dir)?;
    let work = tempfile::Builder::new()
        .prefix("iscsi-harness-lio-")
        .tempdir()
        .ctx(|| "create a scratch folder".into())?;
    let port = match opts.port {
        Some(p) => p,
        None => qemu::free_port()?,
    };
    let mut spec = BootSpec::new(script(opts), work.path());
    spec.hostfwd = Some((port, 3260));
    // The ramdisk or file lives in guest memory, on top of the kernel's needs.
    spec.memory_mib = 384 + opts.size_mib;
    spec.boot_timeout = opts.ready_timeout;
    let mut guest = Guest::boot(&image, &spec)?;
    let deadline = started + opts.ready_timeout;
    loop {
        match guest.next(deadline) {
            qemu::Next::Line(l) => {
                if opts.echo_console {
                    eprintln!("lio| {l}");
                }
                if l.starts_with("@@LIO-READY") {
                    break;
                }
                if let Some(why) = l.strip_prefix("@@LIO-FAIL ") {
                    return Err(Error::Guest(format!(
                        "LIO set-up failed: {why}; console ends with:\n{}",
                        guest.console_tail(15)
                    )));
                }
            }
            qemu::Next::Timeout => {
                return Err(Error::Guest(format!(
                    "LIO not ready within {} s; console ends with:\n{}",
                    opts.ready_timeout.as_secs(),
                    guest.console_tail(15)
                )));
            }
            qemu::Next::Exited => {
                return Err(Error::Guest(format!(
                    "the LIO guest died; console ends with:\n{}",
                    guest.console_tail(15)
                )));
            }
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if !super::target::wait_listening(addr, deadline) {
        return Err(Error::Guest(format!(
            "nothing accepts connections on {addr}"
        )));
    }
    Ok(LioGuest {
        guest,
        addr,
        iqn: opts.iqn.clone(),
        lun_bytes: u64::from(opts.size_mib) << 20,
        ready_after: started.elapsed(),
        _work: work,
    })
}

impl LioGuest {
    /// The host loopback address that reaches LIO.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn iqn(&self) -> &str {
        &self.iqn
    }

    /// The size of LUN 0 in bytes.
    pub fn lun_bytes(&self) -> u64 {
        self.lun_bytes
    }

    /// libiscsi's URL of LUN 0, e.g. `iscsi://127.0.0.1:40000/iqn.../0`.
    pub fn url(&self) -> String {
        format!("iscsi://{}/{}/0", self.addr, self.iqn)
    }

    /// From starting QEMU to LIO serving.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The guest's console so far (LIO's kernel messages included).
    pub fn console_log(&self) -> String {
        self.guest.console_log()
    }

    /// LIO's kernel messages so far (`dmesg` in the guest).
    pub fn dmesg(&mut self) -> Result<String> {
        self.guest.send("dmesg")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut out = String::new();
        loop {
            match self.guest.next(deadline) {
                qemu::Next::Line(l) if l.starts_with("@@DMESG-END") => return Ok(out),
                qemu::Next::Line(l) => {
                    if let Some(m) = l.trim_start().strip_prefix("dmesg: ") {
                        out.push_str(m);
                        out.push('\n');
                    }
                }
                _ => {
                    return Err(Error::Guest(
                        "no dmesg from the LIO guest within 30 s".into(),
                    ));
                }
            }
        }
    }

    /// Asks the guest to power off, and kills it if it has not within 10 s.
    pub fn shutdown(mut self) {
        let _ = self.guest.send("quit");
        self.guest.shutdown(Duration::from_secs(10));
    }
}

/// The guest's configfs set-up, then a wait for "quit" on the console.
fn script(opts: &LioOptions) -> String {
    let bytes = u64::from(opts.size_mib) << 20;
    let mut s = format!("IQN='{}'\n", opts.iqn);
    s.push_str(
        r#"
cfg() {  # cfg VALUE FILE: write one configfs attribute or give up
    # No trailing newline: LIO keeps it as part of CHAP names and secrets.
    printf '%s' "$1" >"$2" 2>/tmp/err || { echo "@@LIO-FAIL echo $1 > $2: $(cat /tmp/err)"; return 1; }
}
lio_setup() {
load_modules lio
mount -t configfs none /sys/kernel/config || { echo "@@LIO-FAIL mount configfs"; return 1; }
C=/sys/kernel/config/target
mkdir -p $C/iscsi || { echo "@@LIO-FAIL no LIO iSCSI fabric in configfs"; return 1; }
"#,
    );
    match opts.backstore {
        Backstore::Ramdisk => s.push_str(&format!(
            "B=$C/core/rd_mcp_0/disk0\nmkdir -p $B || return 1\n\
             cfg rd_pages={} $B/control || return 1\n",
            bytes / 4096
        )),
        Backstore::File => s.push_str(&format!(
            "B=$C/core/fileio_0/disk0\nmkdir -p $B || return 1\n\
             cfg fd_dev_name=/tmp/disk0.img,fd_dev_size={bytes} $B/control || return 1\n"
        )),
    }
    s.push_str(
        r#"cfg 1 $B/enable || return 1
T=$C/iscsi/$IQN/tpgt_1
mkdir -p $T/lun/lun_0 || { echo "@@LIO-FAIL mkdir $T/lun/lun_0"; return 1; }
ln -s $B $T/lun/lun_0/disk0 || { echo "@@LIO-FAIL link the LUN"; return 1; }
mkdir $T/np/0.0.0.0:3260 || { echo "@@LIO-FAIL portal 0.0.0.0:3260"; return 1; }
cfg 1 $T/attrib/generate_node_acls || return 1
cfg 1 $T/attrib/cache_dynamic_acls || return 1
cfg 0 $T/attrib/demo_mode_write_protect || return 1
"#,
    );
    match &opts.chap {
        None => s.push_str("cfg 0 $T/attrib/authentication || return 1\n"),
        Some(c) => {
            s.push_str(&format!(
                "cfg '{}' $T/auth/userid || return 1\ncfg '{}' $T/auth/password || return 1\n",
                c.user, c.secret
            ));
            if let Some(m) = &opts.mutual_chap {
                s.push_str(&format!(
                    "cfg '{}' $T/auth/userid_mutual || return 1\n\
                     cfg '{}' $T/auth/password_mutual || return 1\n",
                    m.user, m.secret
                ));
            }
            s.push_str("cfg 1 $T/attrib/authentication || return 1\n");
        }
    }
    s.push_str(
        r#"cfg 1 $T/enable || return 1
}
if lio_setup; then
    echo "@@LIO-READY $IQN"
    # Serve until the host says quit (or kills QEMU); bounded all the same.
    while read -t 3600 line; do
        case "$line" in
            quit) break ;;
            dmesg) dmesg | sed 's/^/  dmesg: /'; echo "@@DMESG-END" ;;
        esac
    done
fi
"#,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_sets_chap_and_backstore() {
        let opts = LioOptions {
            backstore: Backstore::File,
            chap: Some(Credentials::new("u", "s")),
            mutual_chap: Some(Credentials::new("mu", "ms")),
            ..LioOptions::default()
        };
        let s = script(&opts);
        assert!(s.contains("fd_dev_size=67108864"));
        assert!(s.contains("cfg 'u' $T/auth/userid"));
        assert!(s.contains("cfg 'ms' $T/auth/password_mutual"));
        assert!(s.contains("cfg 1 $T/attrib/authentication"));
    }
}
