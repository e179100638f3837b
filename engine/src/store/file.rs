//! A store backed by a regular file, with positional I/O.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FallocateFlags, SeekFrom};

use super::{BlockStore, StoreError, check_range};

/// A regular file as a logical unit's medium. Thin when the file system
/// supports holes: `discard` punches them and `allocation` finds them with
/// `SEEK_DATA`/`SEEK_HOLE`.
pub struct FileStore {
    file: File,
    path: PathBuf,
    capacity: u64,
    thin: bool,
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}

impl FileStore {
    /// Opens an existing file; its length is the capacity. With `create`,
    /// a missing file is created sparse with that many bytes.
    pub fn open(path: &Path, create: Option<u64>, readonly: bool) -> Result<FileStore, StoreError> {
        let mut options = OpenOptions::new();
        options.read(true).write(!readonly);
        if create.is_some() && !readonly {
            options.create(true);
        }
        let file = options
            .open(path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        let mut capacity = file
            .metadata()
            .map_err(io_err(format!("stat {}", path.display())))?
            .len();
        if let Some(size) = create {
            if capacity == 0 && size > 0 {
                file.set_len(size)
                    .map_err(io_err(format!("sizing {}", path.display())))?;
                capacity = size;
            }
        }
        let thin = probe_holes(&file, capacity);
        Ok(FileStore {
            file,
            path: path.to_path_buf(),
            capacity,
            thin,
        })
    }

    /// Wraps an open file whose capacity the caller determined (block
    /// devices report theirs through `seek(End)`).
    pub(crate) fn from_parts(file: File, path: PathBuf, capacity: u64, thin: bool) -> FileStore {
        FileStore {
            file,
            path,
            capacity,
            thin,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn zero_fill(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(ZEROS.len() as u64) as usize;
            self.write_at(offset + done, &ZEROS[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// Whether `SEEK_DATA` works on this file (the file system supports
/// holes): it answers with an offset, or ENXIO when there is no data.
fn probe_holes(file: &File, capacity: u64) -> bool {
    capacity > 0
        && matches!(
            rustix::fs::seek(file, SeekFrom::Data(0)),
            Ok(_) | Err(rustix::io::Errno::NXIO)
        )
}

impl BlockStore for FileStore {
    fn len(&self) -> u64 {
        self.capacity
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_range(offset, buf.len() as u64, self.capacity)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| match source.raw_os_error() {
                Some(code) if code == rustix::io::Errno::IO.raw_os_error() => {
                    StoreError::Medium { offset }
                }
                _ => StoreError::Io {
                    context: format!("reading {}", self.path.display()),
                    source,
                },
            })
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        check_range(offset, data.len() as u64, self.capacity)?;
        self.file
            .write_all_at(data, offset)
            .map_err(io_err(format!("writing {}", self.path.display())))
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.file
            .sync_data()
            .map_err(io_err(format!("syncing {}", self.path.display())))
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        check_range(offset, len, self.capacity)?;
        if len == 0 {
            return Ok(());
        }
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(&self.file, flags, offset, len) {
            Ok(()) => Ok(()),
            Err(_) => self.zero_fill(offset, len),
        }
    }

    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        check_range(offset, 1, self.capacity)?;
        if !self.thin {
            return Ok((true, self.capacity - offset));
        }
        let data = match rustix::fs::seek(&self.file, SeekFrom::Data(offset)) {
            Ok(pos) => pos.min(self.capacity),
            Err(rustix::io::Errno::NXIO) => self.capacity,
            Err(e) => {
                return Err(StoreError::Io {
                    context: format!("SEEK_DATA on {}", self.path.display()),
                    source: e.into(),
                });
            }
        };
        if data > offset {
            return Ok((false, data - offset));
        }
        let hole = match rustix::fs::seek(&self.file, SeekFrom::Hole(offset)) {
            Ok(pos) => pos.min(self.capacity),
            Err(_) => self.capacity,
        };
        Ok((true, hole.max(offset + 1) - offset))
    }

    fn is_thin(&self) -> bool {
        self.thin
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("iscsi-engine-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn create_write_read_flush_discard() {
        let path = temp_path("store.img");
        let _ = std::fs::remove_file(&path);
        let mut s = FileStore::open(&path, Some(1 << 20), false).unwrap();
        assert_eq!(s.len(), 1 << 20);
        let data = vec![0x5au8; 8192];
        s.write_at(65536, &data).unwrap();
        s.flush().unwrap();
        let mut back = vec![0u8; 8192];
        s.read_at(65536, &mut back).unwrap();
        assert_eq!(back, data);
        s.discard(65536, 4096).unwrap();
        s.read_at(65536, &mut back[..4096]).unwrap();
        assert!(back[..4096].iter().all(|&b| b == 0));
        assert!(matches!(
            s.read_at(1 << 20, &mut back),
            Err(StoreError::OutOfRange { .. })
        ));
        if s.is_thin() {
            let (mapped, _) = s.allocation(0).unwrap();
            assert!(!mapped);
            let (mapped, run) = s.allocation(65536 + 4096).unwrap();
            assert!(mapped);
            assert!(run >= 4096);
        }
        std::fs::remove_file(&path).unwrap();
    }
}
