//! Block stores: where a logical unit's blocks live.
//!
//! - [`MemoryStore`]: thin and sparse; unmapped blocks read as zeros and
//!   cost no memory.
//! - [`FileStore`]: a regular file with positional I/O; `flush` is
//!   `fdatasync`, `discard` punches holes.
//! - [`DeviceStore`]: a block device node, sized by the kernel.
//!
//! The simulator wraps [`MemoryStore`] with faults (latency, media errors,
//! a volatile write cache lost on crash).

mod device;
mod file;
mod memory;

pub use device::DeviceStore;
pub use file::FileStore;
pub use memory::MemoryStore;

/// Errors from a block store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The medium could not be read or written at `offset` (reported to
    /// the initiator as MEDIUM ERROR).
    #[error("medium error at byte offset {offset}")]
    Medium { offset: u64 },
    /// The range lies outside the store.
    #[error("range {offset}+{len} is beyond the end of the store ({capacity} bytes)")]
    OutOfRange {
        offset: u64,
        len: u64,
        capacity: u64,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Byte-addressed storage behind a logical unit. Offsets and lengths are
/// always multiples of the logical unit's block size and within `len()`;
/// implementations still check the range and return
/// [`StoreError::OutOfRange`] rather than panic.
pub trait BlockStore: Send {
    /// Capacity in bytes.
    fn len(&self) -> u64;

    /// Whether the capacity is zero.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError>;

    /// Stores `data` at `offset`. The write may sit in a volatile cache
    /// until [`BlockStore::flush`].
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError>;

    /// Makes every completed write durable (SYNCHRONIZE CACHE, FUA).
    fn flush(&mut self) -> Result<(), StoreError>;

    /// Deallocates a range (UNMAP, WRITE SAME with UNMAP, SANITIZE):
    /// afterwards it reads as zeros. A store that cannot deallocate writes
    /// zeros instead.
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError>;

    /// Whether the block at `offset` is mapped, and the number of bytes
    /// from `offset` that share that state (GET LBA STATUS). A thick store
    /// answers `(true, len() - offset)`.
    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError>;

    /// Whether the store is thinly provisioned (reported as LBPME).
    fn is_thin(&self) -> bool;

    /// A short description for logs, such as `mem:1GiB` or `file:/a/b`.
    fn describe(&self) -> String;
}

/// Checks that `offset..offset+len` lies within a store of `capacity` bytes.
pub(crate) fn check_range(offset: u64, len: u64, capacity: u64) -> Result<(), StoreError> {
    match offset.checked_add(len) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(StoreError::OutOfRange {
            offset,
            len,
            capacity,
        }),
    }
}

/// Formats a byte count the way `--lun N=mem:SIZE` accepts it back.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, scale) in UNITS {
        if bytes >= scale && bytes % scale == 0 {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Parses a size such as `1GiB`, `512MiB`, `4096`, `10G` or `2T`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(scale)
}
