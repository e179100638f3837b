//! The simulated disk: a [`BlockStore`] over [`MemoryStore`] with the
//! faults of real media — a volatile write cache that a crash loses unless
//! it was flushed, writes torn at sector granularity by a crash, and
//! unreadable sectors (MEDIUM ERROR). Latency is the backend's business
//! ([`crate::backend`]), since the store is called synchronously under the
//! target's lock.
//!
//! Why not turmoil's `unstable-fs`: that feature simulates a *file system*
//! (a `std::fs` shim per host, durability by `fsync` of files) behind an
//! unstable flag, while the target's logical unit talks to a block store,
//! synchronously, by byte offset. What the oracle needs to reason about is
//! block-level: which sectors of an acknowledged but unflushed write
//! survive a crash, which sectors are unreadable. A store of our own keeps
//! those rules explicit and small, lets the disk outlive the target host
//! (it is shared by `Arc`, so a crashed and restarted target finds its
//! medium), and draws its crash outcomes from the run's seeded RNG.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use iscsi_engine::store::{BlockStore, MemoryStore, StoreError};
use rand::Rng;

/// The unit of tearing and of media errors.
pub const SECTOR: u64 = 512;

/// What the disk does besides storing blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    pub capacity: u64,
    /// Writes go to a volatile cache until a flush (SYNCHRONIZE CACHE,
    /// FUA); a crash keeps a random subset of the cached sectors.
    pub volatile_cache: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskStats {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub media_errors: u64,
    /// Cached sectors lost by crashes.
    pub lost_sectors: u64,
    /// Cached sectors a crash happened to keep.
    pub kept_sectors: u64,
}

struct State {
    config: DiskConfig,
    durable: MemoryStore,
    /// Dirty sectors by sector index.
    cache: BTreeMap<u64, Box<[u8]>>,
    /// Unreadable sectors; writing one repairs it (as a drive reallocates).
    bad: BTreeSet<u64>,
    /// Every sector that was ever unreadable.
    ever_bad: BTreeSet<u64>,
    stats: DiskStats,
}

/// A handle on one simulated disk. Clones share the medium.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl SimDisk {
    pub fn new(config: DiskConfig) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(State {
                config,
                durable: MemoryStore::new(config.capacity),
                cache: BTreeMap::new(),
                bad: BTreeSet::new(),
                ever_bad: BTreeSet::new(),
                stats: DiskStats::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The power fails: each dirty sector independently reaches the medium
    /// or is lost, so a multi-sector write may be torn.
    pub fn crash(&self, rng: &mut impl Rng) {
        let mut s = self.lock();
        let cache = std::mem::take(&mut s.cache);
        for (sector, data) in cache {
            if rng.random_bool(0.5) {
                s.stats.kept_sectors += 1;
                let _ = s.durable.write_at(sector * SECTOR, &data);
            } else {
                s.stats.lost_sectors += 1;
            }
        }
    }

    /// Makes the sector holding byte `offset` unreadable.
    pub fn add_bad_sector(&self, offset: u64) {
        let mut s = self.lock();
        s.bad.insert(offset / SECTOR);
        s.ever_bad.insert(offset / SECTOR);
    }

    /// Whether any sector of `offset..offset+len` was ever unreadable.
    pub fn was_bad(&self, offset: u64, len: u64) -> bool {
        let s = self.lock();
        let first = offset / SECTOR;
        let last = (offset + len).div_ceil(SECTOR);
        s.ever_bad.range(first..last).next().is_some()
    }

    /// Whether any sector of `offset..offset+len` is unreadable.
    pub fn has_bad(&self, offset: u64, len: u64) -> bool {
        let s = self.lock();
        let first = offset / SECTOR;
        let last = (offset + len).div_ceil(SECTOR);
        s.bad.range(first..last).next().is_some()
    }

    pub fn bad_sectors(&self) -> Vec<u64> {
        self.lock().bad.iter().copied().collect()
    }

    pub fn dirty_sectors(&self) -> usize {
        self.lock().cache.len()
    }

    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }

    pub fn capacity(&self) -> u64 {
        self.lock().config.capacity
    }
}

impl BlockStore for SimDisk {
    fn len(&self) -> u64 {
        self.lock().durable.len()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.stats.reads += 1;
        let first = offset / SECTOR;
        let last = (offset + buf.len() as u64).div_ceil(SECTOR);
        if let Some(&bad) = s.bad.range(first..last).next() {
            s.stats.media_errors += 1;
            return Err(StoreError::Medium {
                offset: (bad * SECTOR).max(offset),
            });
        }
        s.durable.read_at(offset, buf)?;
        for (&sector, data) in s.cache.range(first..last) {
            let at = sector * SECTOR;
            let (from, to) = (at.max(offset), (at + SECTOR).min(offset + buf.len() as u64));
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.stats.writes += 1;
        let len = s.durable.len();
        match offset.checked_add(data.len() as u64) {
            Some(end) if end <= len => {}
            _ => {
                return Err(StoreError::OutOfRange {
                    offset,
                    len: data.len() as u64,
                    capacity: len,
                });
            }
        }
        let first = offset / SECTOR;
        let last = (offset + data.len() as u64).div_ceil(SECTOR);
        let repaired: Vec<u64> = s.bad.range(first..last).copied().collect();
        for sector in repaired {
            s.bad.remove(&sector);
        }
        if !s.config.volatile_cache {
            return s.durable.write_at(offset, data);
        }
        for sector in first..last {
            let at = sector * SECTOR;
            let (from, to) = (
                at.max(offset),
                (at + SECTOR).min(offset + data.len() as u64),
            );
            let piece = &data[(from - offset) as usize..(to - offset) as usize];
            if piece.len() as u64 == SECTOR {
                s.cache.insert(sector, piece.into());
            } else {
                // A partial sector: merge with what the sector holds now.
                let mut whole = vec![0u8; SECTOR as usize];
                match s.cache.get(&sector) {
                    Some(old) => whole.copy_from_slice(old),
                    None => s.durable.read_at(at, &mut whole)?,
                }
                whole[(from - at) as usize..(to - at) as usize].copy_from_slice(piece);
                s.cache.insert(sector, whole.into_boxed_slice());
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.stats.flushes += 1;
        let cache = std::mem::take(&mut s.cache);
        for (sector, data) in cache {
            s.durable.write_at(sector * SECTOR, &data)?;
        }
        Ok(())
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        let mut s = self.lock();
        let first = offset / SECTOR;
        let last = (offset + len).div_ceil(SECTOR);
        let dropped: Vec<u64> = s.cache.range(first..last).map(|(k, _)| *k).collect();
        for sector in dropped {
            s.cache.remove(&sector);
        }
        s.durable.discard(offset, len)
    }

    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        // Cached sectors are reported with the medium's state: GET LBA
        // STATUS is advisory, and the workloads do not use it.
        self.lock().durable.allocation(offset)
    }

    fn is_thin(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let s = self.lock();
        format!(
            "sim:{}{}",
            iscsi_engine::store::format_size(s.config.capacity),
            if s.config.volatile_cache {
                ",write-cache"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn disk(cache: bool) -> SimDisk {
        SimDisk::new(DiskConfig {
            capacity: 1 << 20,
            volatile_cache: cache,
        })
    }

    #[test]
    fn cached_writes_read_back_and_flush_makes_them_survive() {
        let mut d = disk(true);
        d.write_at(512, &[7u8; 1024]).unwrap();
        let mut buf = [0u8; 1536];
        d.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..512], &[0u8; 512]);
        assert_eq!(&buf[512..], &[7u8; 1024]);
        d.flush().unwrap();
        d.crash(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        d.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[512..], &[7u8; 1024]);
    }

    #[test]
    fn a_crash_tears_unflushed_writes_by_sector() {
        let mut d = disk(true);
        d.write_at(0, &[9u8; 64 * 512]).unwrap();
        d.crash(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let stats = d.stats();
        assert_eq!(stats.kept_sectors + stats.lost_sectors, 64);
        assert!(stats.kept_sectors > 0 && stats.lost_sectors > 0);
        let mut buf = vec![0u8; 64 * 512];
        d.read_at(0, &mut buf).unwrap();
        for sector in buf.chunks(512) {
            assert!(sector.iter().all(|&b| b == 9) || sector.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn bad_sectors_fail_reads_until_rewritten() {
        let mut d = disk(false);
        d.add_bad_sector(4096);
        let mut buf = [0u8; 8192];
        assert!(matches!(
            d.read_at(0, &mut buf),
            Err(StoreError::Medium { offset: 4096 })
        ));
        d.write_at(4096, &[1u8; 512]).unwrap();
        d.read_at(0, &mut buf).unwrap();
        assert!(!d.has_bad(0, 8192));
    }
}
