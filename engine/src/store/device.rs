//! A store backed by a block device node.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::{BlockStore, FileStore, StoreError};

/// A block device (`/dev/...`) as a logical unit's medium. Its capacity is
/// the device's size; `discard` punches holes, which Linux turns into
/// discards or zeroing on block devices.
pub struct DeviceStore(FileStore);

impl DeviceStore {
    pub fn open(path: &Path, readonly: bool) -> Result<DeviceStore, StoreError> {
        let ctx = |what: &str| format!("{what} {}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(|source| StoreError::Io {
                context: ctx("opening"),
                source,
            })?;
        let meta = file.metadata().map_err(|source| StoreError::Io {
            context: ctx("stat"),
            source,
        })?;
        if !meta.file_type().is_block_device() {
            return Err(StoreError::Io {
                context: ctx("opening"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a block device"),
            });
        }
        let capacity = file
            .seek(SeekFrom::End(0))
            .map_err(|source| StoreError::Io {
                context: ctx("sizing"),
                source,
            })?;
        Ok(DeviceStore(FileStore::from_parts(
            file,
            path.to_path_buf(),
            capacity,
            false,
        )))
    }
}

impl BlockStore for DeviceStore {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.0.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.0.flush()
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        self.0.discard(offset, len)
    }
    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        self.0.allocation(offset)
    }
    fn is_thin(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        format!("dev:{}", self.0.path().display())
    }
}
