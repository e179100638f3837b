//! The guest image: a Debian kernel and a busybox initramfs holding open-iscsi,
//! e2fsprogs, and the kernel modules of the iSCSI initiator and of LIO.
//!
//! The initramfs is built from the host's own binaries (with every library
//! `ldd` lists) or, when a package is not installed on the host, from its .deb
//! unpacked into the cache. It is cached under a key made of everything that
//! went into it, so a second run reuses it. Each boot appends a small second
//! archive holding that run's script (the kernel unpacks concatenated cpio
//! archives in order), so the big one never changes between runs.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::cpio::Archive;
use super::debian;
use super::error::{Error, IoContext, Result, at};
use super::kernel::{self, Kernel};
use super::tools;
use crate::peers;

/// Bump when the layout of the image changes, to invalidate cached images.
const LAYOUT_VERSION: u32 = 1;

/// Binaries the guest runs: guest path, program name, Debian package.
const BINARIES: &[(&str, &str, &str)] = &[
    ("bin/busybox", "busybox", "busybox-static"),
    ("sbin/iscsid", "iscsid", "open-iscsi"),
    ("sbin/iscsiadm", "iscsiadm", "open-iscsi"),
    ("sbin/mke2fs", "mke2fs", "e2fsprogs"),
    ("sbin/e2fsck", "e2fsck", "e2fsprogs"),
];

/// Module groups; the guest loads a group with `load_modules <group>`.
const MODULE_GROUPS: &[(&str, &[&str])] = &[
    ("net", &["virtio_pci", "virtio_net"]),
    (
        "initiator",
        &["iscsi_tcp", "sd_mod", "crc32c_generic", "ext4"],
    ),
    (
        "lio",
        &[
            "configfs",
            "target_core_mod",
            "iscsi_target_mod",
            "target_core_file",
            "crc32c_generic",
        ],
    ),
];

/// The initiator name every guest uses unless a run overrides it.
pub const GUEST_INITIATOR: &str = "iqn.2024-01.org.iscsi-harness:guest";

/// A built guest: what QEMU's `-kernel` and (the base of) `-initrd` take.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub kernel: Kernel,
    pub initramfs: PathBuf,
}

/// Where downloads and built images are kept: `$ISCSI_HARNESS_CACHE`, else
/// `target/iscsi-harness-cache` of the workspace.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ISCSI_HARNESS_CACHE") {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    workspace.join("target").join("iscsi-harness-cache")
}

/// One thing in the archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Dir,
    /// A host file, copied (symlinks followed).
    Host(PathBuf),
    Text(String, u32),
    CharDev(u32, u32),
}

/// How long to wait for another process that is filling the cache.
const CACHE_LOCK_WAIT: Duration = Duration::from_secs(900);

/// Builds (or finds in the cache) the guest image. Holds the cache's lock
/// while it works, so concurrent runs never unpack or build the same thing.
pub fn ensure(cache: &Path) -> Result<GuestImage> {
    fs::create_dir_all(cache).ctx(|| at("create", cache))?;
    let _lock = lock(cache)?;
    let kernel = kernel::ensure(cache)?;
    let items = plan(cache, &kernel)?;
    let key = cache_key(&kernel, &items);
    let images = cache.join("images");
    fs::create_dir_all(&images).ctx(|| at("create", &images))?;
    let initramfs = images.join(format!("initramfs-{key:016x}.cpio"));
    if !initramfs.exists() {
        let tmp = images.join(format!("initramfs-{key:016x}.tmp{}", std::process::id()));
        write_archive(&tmp, &items)?;
        fs::rename(&tmp, &initramfs).ctx(|| at("rename into", &initramfs))?;
    }
    Ok(GuestImage { kernel, initramfs })
}

/// An exclusive `flock` on `<cache>/lock`, released when dropped.
fn lock(cache: &Path) -> Result<fs::File> {
    use rustix::fs::{FlockOperation, flock};
    let path = cache.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx(|| at("open", &path))?;
    let deadline = std::time::Instant::now() + CACHE_LOCK_WAIT;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(Error::Io {
                    context: at("lock", &path),
                    source: e.into(),
                });
            }
        }
    }
}

/// Everything the initramfs holds, by guest path (sorted, so parents first).
fn plan(cache: &Path, kernel: &Kernel) -> Result<BTreeMap<String, Item>> {
    let mut items = BTreeMap::new();
    for d in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "mnt",
        "run",
        "run/lock",
        "run/lock/iscsi",
        "var",
        "var/lib",
        "etc",
        "etc/iscsi",
        "etc/iscsi/nodes",
        "etc/iscsi/send_targets",
        "etc/iscsi/ifaces",
        "etc/harness",
        "lib",
        "lib64",
        "harness",
    ] {
        items.insert(d.to_string(), Item::Dir);
    }
    items.insert("dev/console".into(), Item::CharDev(5, 1));
    items.insert("init".into(), Item::Text(INIT.into(), 0o755));
    items.insert(
        "etc/passwd".into(),
        Item::Text("root:x:0:0:root:/root:/bin/sh\n".into(), 0o644),
    );
    items.insert("etc/group".into(), Item::Text("root:x:0:\n".into(), 0o644));
    items.insert(
        "etc/iscsi/iscsid.conf".into(),
        Item::Text(ISCSID_CONF.into(), 0o600),
    );
    items.insert(
        "etc/iscsi/initiatorname.iscsi".into(),
        Item::Text(format!("InitiatorName={GUEST_INITIATOR}\n"), 0o600),
    );
    if Path::new("/etc/mke2fs.conf").exists() {
        items.insert(
            "etc/mke2fs.conf".into(),
            Item::Host("/etc/mke2fs.conf".into()),
        );
    }

    let debs = cache.join("debs");
    for (guest, name, package) in BINARIES {
        let (binary, lib_path) = locate(&debs, name, package)?;
        for lib in libraries(&binary, &lib_path)? {
            // The loader keeps its absolute path; every library goes where the
            // loader looks first, whichever tree it was found in.
            let file = lib.file_name().unwrap_or_default().to_string_lossy();
            let guest_lib = if lib.starts_with("/lib64") {
                format!("lib64/{file}")
            } else {
                format!("lib/x86_64-linux-gnu/{file}")
            };
            add_parents(&mut items, &guest_lib);
            items.insert(guest_lib, Item::Host(lib));
        }
        items.insert(guest.to_string(), Item::Host(binary));
    }

    for (group, modules) in MODULE_GROUPS {
        let order = kernel.insmod_order(modules)?;
        let mut list = String::new();
        for rel in order {
            let guest = rel.to_string_lossy().into_owned();
            add_parents(&mut items, &guest);
            items.insert(guest.clone(), Item::Host(kernel.root.join(&rel)));
            list.push('/');
            list.push_str(&guest);
            list.push('\n');
        }
        items.insert(
            format!("etc/harness/modules.{group}"),
            Item::Text(list, 0o644),
        );
    }
    Ok(items)
}

fn add_parents(items: &mut BTreeMap<String, Item>, path: &str) {
    let mut p = Path::new(path).parent();
    while let Some(dir) = p {
        if dir.as_os_str().is_empty() {
            break;
        }
        items
            .entry(dir.to_string_lossy().into_owned())
            .or_insert(Item::Dir);
        p = dir.parent();
    }
}

/// The binary `name` and extra library folders to search: the host's, or
/// those of its package (and its library dependencies that the host lacks)
/// unpacked in the cache.
fn locate(debs: &Path, name: &str, package: &str) -> Result<(PathBuf, Vec<PathBuf>)> {
    if debian::is_installed(package) {
        if let Some(p) = peers::which(name) {
            return Ok((p, Vec::new()));
        }
    }
    // The package, then (transitively) the library packages it needs that
    // the host lacks; bounded, since a library chain is short.
    let mut roots = Vec::new();
    let mut queue = vec![package.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(pkg) = queue.pop() {
        if !seen.insert(pkg.clone()) || seen.len() > 30 {
            continue;
        }
        roots.push(debian::unpacked(debs, &pkg)?);
        for dep in debian::depends(&pkg)? {
            if dep.starts_with("lib") && !debian::is_installed(&dep) {
                queue.push(dep);
            }
        }
    }
    let binary = ["sbin", "usr/sbin", "bin", "usr/bin"]
        .iter()
        .map(|d| roots[0].join(d).join(name))
        .find(|p| p.exists())
        .ok_or_else(|| Error::Config(format!("package {package} has no program {name}")))?;
    let lib_path = roots
        .iter()
        .flat_map(|r| {
            [
                r.join("lib/x86_64-linux-gnu"),
                r.join("usr/lib/x86_64-linux-gnu"),
            ]
        })
        .filter(|p| p.exists())
        .collect();
    Ok((binary, lib_path))
}

/// The shared libraries `binary` loads, as the paths `ldd` names (the dynamic
/// loader included); empty for a static binary.
fn libraries(binary: &Path, lib_path: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let ldd = peers::require("ldd", "libc-bin")?;
    let mut cmd = Command::new(ldd);
    cmd.arg(binary);
    if !lib_path.is_empty() {
        cmd.env(
            "LD_LIBRARY_PATH",
            std::env::join_paths(lib_path).unwrap_or_default(),
        );
    }
    let out = tools::run(&mut cmd, Duration::from_secs(30))?;
    if out.stdout.contains("not a dynamic executable")
        || out.stderr.contains("not a dynamic executable")
    {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in out.stdout.lines() {
        if line.contains("=> not found") {
            return Err(Error::Command {
                command: format!("ldd {}", binary.display()),
                detail: line.trim().to_string(),
            });
        }
        // "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux... (0x...)".
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

fn cache_key(kernel: &Kernel, items: &BTreeMap<String, Item>) -> u64 {
    let mut h = Fnv::new();
    h.feed(&LAYOUT_VERSION.to_le_bytes());
    h.feed(kernel.deb.as_bytes());
    for (path, item) in items {
        h.feed(path.as_bytes());
        match item {
            Item::Host(src) => {
                h.feed(src.as_os_str().as_encoded_bytes());
                if let Ok(m) = fs::metadata(src) {
                    h.feed(&m.len().to_le_bytes());
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    h.feed(&mtime.to_le_bytes());
                }
            }
            other => h.feed(format!("{other:?}").as_bytes()),
        }
    }
    h.0
}

/// FNV-1a, 64 bits: a stable hash for cache keys (std's hasher may change).
pub(crate) struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    pub fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate fields so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

fn write_archive(dest: &Path, items: &BTreeMap<String, Item>) -> Result<()> {
    let file = fs::File::create(dest).ctx(|| at("create", dest))?;
    let mut a = Archive::new(BufWriter::new(file));
    let werr = |e| Error::Io {
        context: at("write", dest),
        source: e,
    };
    for (path, item) in items {
        match item {
            Item::Dir => a.dir(path, 0o755),
            Item::Host(src) => {
                use std::os::unix::fs::PermissionsExt;
                let data = fs::read(src).ctx(|| at("read", src))?;
                let perm = fs::metadata(src)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(0o644);
                a.file(path, perm, &data)
            }
            Item::Text(text, perm) => a.file(path, *perm, text.as_bytes()),
            Item::CharDev(major, minor) => a.char_dev(path, 0o600, *major, *minor),
        }
        .map_err(werr)?;
    }
    a.finish().map_err(werr)?;
    Ok(())
}

/// The small per-boot archive appended to the cached one: `harness/run.sh`
/// and any extra files (`path` without a leading slash).
pub fn run_archive(script: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut a = Archive::new(Vec::new());
    let ok = (|| {
        a.file("harness/run.sh", 0o755, script.as_bytes())?;
        for (path, text) in extra {
            a.file(path, 0o644, text.as_bytes())?;
        }
        std::io::Result::Ok(())
    })();
    debug_assert!(ok.is_ok(), "writing to a Vec cannot fail");
    a.finish().unwrap_or_default()
}

/// PID 1: mounts, network, then the run's script, then power off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
dmesg -n 1
load_modules() {
    for m in $(cat /etc/harness/modules.$1); do
        insmod "$m" 2>/dev/null || echo "@@WARN insmod $m failed"
    done
}
load_modules net
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
stty -echo 2>/dev/null
echo "@@BOOTED $(cut -d' ' -f1 /proc/uptime)"
. /harness/run.sh
echo "@@POWEROFF"
poweroff -f
"#;

/// open-iscsi's settings in the guest: Debian's defaults, with timeouts cut to
/// what a test can wait for.
const ISCSID_CONF: &str = "\
node.startup = manual
node.leading_login = No
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
node.conn[0].timeo.noop_out_interval = 5
node.conn[0].timeo.noop_out_timeout = 5
node.session.err_timeo.abort_timeout = 15
node.session.err_timeo.lu_reset_timeout = 30
node.session.err_timeo.tgt_reset_timeout = 30
node.session.err_timeo.host_reset_timeout = 60
node.session.initial_login_retry_max = 2
node.session.cmds_max = 128
node.session.queue_depth = 32
node.session.xmit_thread_priority = -20
node.session.iscsi.InitialR2T = No
node.session.iscsi.ImmediateData = Yes
node.session.iscsi.FirstBurstLength = 262144
node.session.iscsi.MaxBurstLength = 16776192
node.conn[0].iscsi.MaxRecvDataSegmentLength = 262144
node.conn[0].iscsi.MaxXmitDataSegmentLength = 0
discovery.sendtargets.iscsi.MaxRecvDataSegmentLength = 32768
node.session.nr_sessions = 1
node.session.reopen_max = 0
node.session.iscsi.FastAbort = Yes
node.session.scan = auto
";
