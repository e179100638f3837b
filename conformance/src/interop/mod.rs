//! Real peers inside a QEMU guest: Linux open-iscsi (kernel initiator) and
//! LIO (kernel target), built from Debian packages and booted under TCG.
//!
//! - [`image`] builds and caches the guest (kernel + initramfs),
//! - [`qemu`] boots it with a per-run script and reads its console,
//! - [`target`] starts and configures the target under test (tgtd or ours),
//! - [`proxy`] sits between the guest and the target and can cut connections,
//! - [`open_iscsi`] is the suite the guest's initiator runs against a target,
//! - [`lio`] boots LIO as a target for the host's initiators.
//!
//! Results go in a [`crate::report::Report`], as every suite's do.
//!
//! Entry points: [`open_iscsi::run`] (the `interop open-iscsi` suite) and
//! [`lio::start`] (a LIO guest for `interop lio`).
//!
//! Host needs (Debian packages): `qemu-system-x86 busybox-static kmod dpkg apt
//! libc-bin`, plus `tgt` for the tgtd target and `libiscsi-bin` for the LIO
//! checks. `open-iscsi` and `e2fsprogs` are taken from the host when
//! installed, else downloaded (`apt-get download`) with their missing
//! libraries. The kernel (`linux-image-<abi>-amd64`, resolved from
//! `linux-image-amd64`) is always downloaded once, into the cache
//! (`$ISCSI_HARNESS_CACHE`, default `target/iscsi-harness-cache`), where the
//! built initramfs is kept too, keyed by everything that went into it.

pub mod cpio;
pub mod debian;
pub mod error;
pub mod image;
pub mod kernel;
pub mod lio;
pub mod open_iscsi;
pub mod proxy;
pub mod qemu;
pub mod target;
pub mod tools;

pub use error::{Error, Result};

/// The host programs that build and boot the guest (the rest are taken
/// from the host when there, else downloaded): what a run checks for
/// before it decides whether it can start one.
pub const GUEST_NEEDS: &[crate::peers::Need] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("modprobe", "kmod"),
];
