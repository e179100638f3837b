//! The guest kernel: Debian's `linux-image-<abi>-amd64`, unpacked into the
//! cache, with `depmod` run over its modules so that `modprobe --show-depends`
//! can tell the insmod order of each module the guest needs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::debian;
use super::error::{Error, IoContext, Result, at};
use super::tools;
use crate::peers;

/// The meta package whose one dependency names the current kernel.
const META: &str = "linux-image-amd64";

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The package it came from, e.g. `linux-image-6.1.0-56-amd64`.
    pub package: String,
    /// The .deb it was unpacked from (names the exact version).
    pub deb: String,
    /// The module folder name, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// The unpacked tree (`boot/`, `lib/modules/`).
    pub root: PathBuf,
    pub vmlinuz: PathBuf,
}

/// Resolves, downloads (once) and prepares the kernel under `cache`.
pub fn ensure(cache: &Path) -> Result<Kernel> {
    let debs = cache.join("debs");
    let package = match resolve() {
        Ok(p) => p,
        // Offline: any kernel we unpacked before will do.
        Err(e) => cached_package(&debs).ok_or(e)?,
    };
    let root = debian::unpacked(&debs, &package)?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_string();
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.exists() {
        return Err(Error::Config(format!(
            "{package} has no {}",
            vmlinuz.display()
        )));
    }
    let depmod_stamp = root.join(".depmod");
    if !depmod_stamp.exists() {
        let depmod = peers::require("depmod", "kmod")?;
        tools::run_ok(
            Command::new(depmod).arg("-b").arg(&root).arg(&release),
            Duration::from_secs(120),
        )?;
        fs::write(&depmod_stamp, b"").ctx(|| at("write", &depmod_stamp))?;
    }
    Ok(Kernel {
        deb: debian::unpacked_from(&root).unwrap_or_default(),
        package,
        release,
        root,
        vmlinuz,
    })
}

/// `linux-image-amd64` → `linux-image-<abi>-amd64`.
fn resolve() -> Result<String> {
    debian::depends(META)?
        .into_iter()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or_else(|| Error::Command {
            command: format!("apt-cache depends {META}"),
            detail: "no linux-image dependency listed (is `apt-get update` done?)".into(),
        })
}

fn cached_package(debs: &Path) -> Option<String> {
    let mut found: Vec<String> = fs::read_dir(debs)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("linux-image-") && n.ends_with(".root"))
        .filter(|n| debs.join(n).join(".depmod").exists())
        .map(|n| n.trim_end_matches(".root").to_string())
        .collect();
    found.sort();
    found.pop()
}

impl Kernel {
    /// The `.ko` files (relative to the tree's root, e.g.
    /// `lib/modules/<rel>/kernel/fs/ext4/ext4.ko`) to insmod, in order, so
    /// that every module in `modules` is loaded; each file appears once.
    pub fn insmod_order(&self, modules: &[&str]) -> Result<Vec<PathBuf>> {
        let modprobe = peers::require("modprobe", "kmod")?;
        let mut order: Vec<PathBuf> = Vec::new();
        for m in modules {
            let out = tools::run_ok(
                Command::new(&modprobe).arg("-d").arg(&self.root).args([
                    "-S",
                    &self.release,
                    "--show-depends",
                    m,
                ]),
                Duration::from_secs(30),
            )?;
            for line in out.stdout.lines() {
                // "insmod /abs/path.ko [params]" or "builtin name".
                let Some(path) = line.strip_prefix("insmod ") else {
                    continue;
                };
                let path = path.split_whitespace().next().unwrap_or_default();
                let rel = Path::new(path)
                    .strip_prefix(&self.root)
                    .map_err(|_| {
                        Error::Config(format!("modprobe named {path}, outside the kernel tree"))
                    })?
                    .to_path_buf();
                if !order.contains(&rel) {
                    order.push(rel);
                }
            }
        }
        Ok(order)
    }
}
