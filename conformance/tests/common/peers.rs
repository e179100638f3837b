//! Tests that need a real peer: one way to skip them, saying why, on a
//! machine without it, and to fail them instead where
//! `ISCSI_HARNESS_REQUIRE_PEERS=1` (CI), so that a peer that went missing
//! cannot pass for a green run; and a tgtd of the test's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use iscsi_conformance::interop::qemu;
use iscsi_conformance::interop::target::{Backing, Lun, TargetConfig, TargetUnderTest, Tgtd};
use iscsi_conformance::peers::{self, Need, REQUIRE_PEERS};
use tempfile::TempDir;

/// Whether every program of `needs` is installed. When some are not, this
/// has already skipped `test` or failed it (see [`skip`]), and the test
/// should return.
pub fn peers_present<'a>(test: &str, needs: impl IntoIterator<Item = &'a Need>) -> bool {
    let missing = peers::missing(needs);
    if missing.is_empty() {
        return true;
    }
    let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
    skip(test, &list.join(", "));
    false
}

/// Skips `test` because of `why`, a peer missing or not working; a failure
/// when peers are required.
pub fn skip(test: &str, why: &str) {
    assert!(
        !peers::required(),
        "{test}: {why}, and {REQUIRE_PEERS}=1 makes that a failure"
    );
    eprintln!("SKIPPED: {test}: {why}; set {REQUIRE_PEERS}=1 to make this a failure");
}

/// A tgtd of one test's own serving LUN 1, a 64 MiB file in a scratch
/// folder — in /dev/shm where there is one, so that its speed is tgtd's and
/// not the disk's — which goes when it does.
pub struct ScratchTgtd {
    pub tgtd: Tgtd,
    pub dir: TempDir,
}

impl ScratchTgtd {
    /// The bytes LUN 1 serves.
    pub const LUN_BYTES: u64 = 64 << 20;

    /// The portal.
    pub fn addr(&self) -> SocketAddr {
        self.tgtd.addr()
    }

    /// LUN 1's backing file.
    pub fn lun_file(&self) -> PathBuf {
        self.dir.path().join("lun1.img")
    }

    /// `iscsi://ADDR/IQN/1`, LUN 1's URL.
    pub fn url(&self) -> String {
        let iqn = &self.tgtd.config().expect("started").iqn;
        format!("iscsi://{}/{iqn}/1", self.addr())
    }
}

/// Starts tgtd with target `iqn`, LUN 1 and the negotiation values
/// `params` (e.g. `("HeaderDigest", "CRC32C")`). `None` once [`skip`] said
/// why there is none: tgtd is not installed, or did not start three times.
pub fn tgtd_or_skip(test: &str, iqn: &str, params: &[(&str, &str)]) -> Option<ScratchTgtd> {
    if !peers_present(test, Tgtd::NEEDS) {
        return None;
    }
    let mut last = String::new();
    for _ in 0..3 {
        match start_tgtd(iqn, params) {
            Ok(t) => return Some(t),
            Err(e) => last = e,
        }
    }
    skip(test, &format!("tgtd could not be started: {last}"));
    None
}

fn start_tgtd(iqn: &str, params: &[(&str, &str)]) -> Result<ScratchTgtd, String> {
    let shm = Path::new("/dev/shm");
    let mut dir = tempfile::Builder::new();
    dir.prefix("iscsi-harness-tgtd-");
    let dir = if shm.is_dir() {
        dir.tempdir_in(shm)
    } else {
        dir.tempdir()
    }
    .map_err(|e| format!("scratch folder: {e}"))?;
    let port = qemu::free_port().map_err(|e| e.to_string())?;
    let mut tgtd = Tgtd::new(dir.path(), port).map_err(|e| e.to_string())?;
    let mut config = TargetConfig::new(iqn);
    config.luns = vec![Lun {
        id: 1,
        backing: Backing::File {
            path: dir.path().join("lun1.img"),
            size: ScratchTgtd::LUN_BYTES,
        },
    }];
    config.params = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tgtd.start(&config).map_err(|e| e.to_string())?;
    if !tgtd.is_running() {
        return Err(format!("tgtd exited during set-up: {}", tgtd.log_tail()));
    }
    Ok(ScratchTgtd { tgtd, dir })
}
