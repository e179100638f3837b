//! Real peers on this host (tgtd, libiscsi's tools, QEMU and the tools that
//! build its guest): finding their programs, naming the Debian package that
//! brings a missing one, and the one policy for an absent peer — a skip on
//! a developer's machine, a failure where `ISCSI_HARNESS_REQUIRE_PEERS=1`
//! (CI sets it after installing every peer, so a peer that went missing
//! cannot pass for a green run).

use std::path::{Path, PathBuf};

/// The variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_PEERS: &str = "ISCSI_HARNESS_REQUIRE_PEERS";

/// A program and the Debian package that installs it.
pub type Need = (&'static str, &'static str);

/// libiscsi's command-line tools, used to check targets from the host.
pub const LIBISCSI: &[Need] = &[("iscsi-inq", "libiscsi-bin"), ("iscsi-ls", "libiscsi-bin")];

/// Folders searched after `$PATH`: CI shells do not always have the sbin ones.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Where `program` is installed, if it is.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A program that is not installed, and how to install it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{program} not installed (apt-get install {package})")]
pub struct Missing {
    pub program: String,
    pub package: String,
}

/// Like [`which`], but a missing program is an error naming its package.
pub fn require(program: &str, package: &str) -> Result<PathBuf, Missing> {
    which(program).ok_or_else(|| Missing {
        program: program.to_string(),
        package: package.to_string(),
    })
}

/// The programs of `needs` that are not installed, in order.
pub fn missing<'a>(needs: impl IntoIterator<Item = &'a Need>) -> Vec<Missing> {
    needs
        .into_iter()
        .filter_map(|(program, package)| require(program, package).err())
        .collect()
}

/// Whether a missing peer must fail the run instead of skipping it.
pub fn required() -> bool {
    std::env::var(REQUIRE_PEERS).as_deref() == Ok("1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_the_package() {
        let gone = missing(&[("sh", "dash"), ("no-such-program-here", "nothing")]);
        assert_eq!(
            gone,
            [Missing {
                program: "no-such-program-here".into(),
                package: "nothing".into(),
            }]
        );
        assert_eq!(
            gone[0].to_string(),
            "no-such-program-here not installed (apt-get install nothing)"
        );
    }
}
