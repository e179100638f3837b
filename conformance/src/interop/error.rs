//! The one error type of the interop layer: every failure says what was being
//! done and, where a host tool is missing, which Debian package brings it.

use std::path::Path;

/// What went wrong while preparing or running a real peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host program is not installed.
    #[error(transparent)]
    MissingTool(#[from] crate::peers::Missing),
    /// A host command ran and failed.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    /// A host command did not finish in time and was killed.
    #[error("`{command}` timed out after {secs} s and was killed")]
    Timeout { command: String, secs: u64 },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The QEMU guest misbehaved (died, never became ready, ...).
    #[error("guest: {0}")]
    Guest(String),
    /// The target under test could not be started, configured or stopped.
    #[error("target {target}: {detail}")]
    Target { target: String, detail: String },
    /// The caller asked for something impossible.
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches "what was being done" to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

/// `"<verb> <path>"`, the usual context of a file operation.
pub(crate) fn at(verb: &str, path: &Path) -> String {
    format!("{verb} {}", path.display())
}
