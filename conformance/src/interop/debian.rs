//! Debian packages by name: resolve with `apt-cache`, fetch with
//! `apt-get download` into the cache, unpack with `dpkg-deb -x`. Nothing is
//! installed on the host; unpacked trees live under the cache folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::error::{Error, IoContext, Result, at};
use super::tools;
use crate::peers;

const APT_TIMEOUT: Duration = Duration::from_secs(300);

/// The packages `package` depends on directly (first alternative of each).
pub fn depends(package: &str) -> Result<Vec<String>> {
    let apt_cache = peers::require("apt-cache", "apt")?;
    let out = tools::run_ok(
        Command::new(apt_cache).args(["depends", "--important", package]),
        Duration::from_secs(60),
    )?;
    let mut deps = Vec::new();
    let mut alternative = false;
    for line in out.stdout.lines() {
        let line = line.trim_start();
        let is_alt = line.starts_with('|');
        let line = line.trim_start_matches('|');
        if let Some(rest) = line
            .strip_prefix("Depends:")
            .or_else(|| line.strip_prefix("PreDepends:"))
        {
            let name = rest.trim();
            if !alternative && !name.starts_with('<') {
                deps.push(name.to_string());
            }
            alternative = is_alt;
        }
    }
    Ok(deps)
}

/// Whether `package` is installed on the host.
pub fn is_installed(package: &str) -> bool {
    let Some(q) = peers::which("dpkg-query") else {
        return false;
    };
    tools::run(
        Command::new(q).args(["-W", "-f=${Status}", package]),
        Duration::from_secs(30),
    )
    .map(|o| o.status.success() && o.stdout.contains("install ok installed"))
    .unwrap_or(false)
}

/// Downloads `package` (once) into `debs` and unpacks it (once) into
/// `debs/<package>.root`; returns that folder.
pub fn unpacked(debs: &Path, package: &str) -> Result<PathBuf> {
    let root = debs.join(format!("{package}.root"));
    let stamp = root.join(".unpacked");
    if stamp.exists() {
        return Ok(root);
    }
    fs::create_dir_all(debs).ctx(|| at("create", debs))?;
    let deb = match find_deb(debs, package)? {
        Some(deb) => deb,
        None => download(debs, package)?,
    };
    if root.exists() {
        fs::remove_dir_all(&root).ctx(|| at("remove", &root))?;
    }
    let dpkg_deb = peers::require("dpkg-deb", "dpkg")?;
    tools::run_ok(
        Command::new(dpkg_deb).arg("-x").arg(&deb).arg(&root),
        APT_TIMEOUT,
    )?;
    let name = deb.file_name().unwrap_or_default().to_string_lossy();
    fs::write(&stamp, name.as_bytes()).ctx(|| at("write", &stamp))?;
    // The unpacked tree is all we need; the .deb is only a download.
    let _ = fs::remove_file(&deb);
    Ok(root)
}

/// The name of the .deb an unpacked tree came from (`pkg_version_arch.deb`).
pub fn unpacked_from(root: &Path) -> Option<String> {
    fs::read_to_string(root.join(".unpacked")).ok()
}

fn download(debs: &Path, package: &str) -> Result<PathBuf> {
    let apt_get = peers::require("apt-get", "apt")?;
    tools::run_ok(
        Command::new(apt_get)
            .current_dir(debs)
            // The cache folder belongs to root, not to apt's sandbox user.
            .args(["-q", "-o", "APT::Sandbox::User=root", "download", package]),
        APT_TIMEOUT,
    )
    .map_err(|e| match e {
        Error::Command { command, detail } => Error::Command {
            command,
            detail: format!("{detail} (is `apt-get update` done?)"),
        },
        e => e,
    })?;
    find_deb(debs, package)?.ok_or_else(|| Error::Command {
        command: format!("apt-get download {package}"),
        detail: "no .deb appeared".into(),
    })
}

fn find_deb(debs: &Path, package: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for entry in fs::read_dir(debs).ctx(|| at("list", debs))? {
        let entry = entry.ctx(|| at("list", debs))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}
