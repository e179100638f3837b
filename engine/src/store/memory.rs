//! A thin, sparse in-memory store: blocks cost memory only once written.

use std::collections::BTreeMap;

use super::{BlockStore, StoreError, check_range};

/// Bytes per allocation chunk.
const CHUNK: u64 = 64 * 1024;
/// Mapping is tracked per 512-byte sector, the smallest logical block.
const SECTOR: u64 = 512;
const SECTORS_PER_CHUNK: u64 = CHUNK / SECTOR;

struct Chunk {
    data: Box<[u8]>,
    /// Bit `i` set: sector `i` of the chunk is mapped.
    mapped: u128,
}

/// An in-memory, thinly provisioned store. Unmapped sectors read as zeros
/// and hold no memory; a chunk is freed once none of its sectors is mapped.
pub struct MemoryStore {
    capacity: u64,
    chunks: BTreeMap<u64, Chunk>,
}

impl MemoryStore {
    /// A store of `capacity` bytes (rounded down to whole sectors).
    pub fn new(capacity: u64) -> MemoryStore {
        MemoryStore {
            capacity: capacity / SECTOR * SECTOR,
            chunks: BTreeMap::new(),
        }
    }

    /// Bytes of memory held by written chunks.
    pub fn resident_bytes(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK
    }

    /// Calls `f(chunk_index, offset_in_chunk, range_in_buffer)` for each
    /// chunk that `offset..offset+len` touches.
    fn for_each_piece(
        offset: u64,
        len: u64,
        mut f: impl FnMut(u64, usize, std::ops::Range<usize>),
    ) {
        let mut done = 0u64;
        while done < len {
            let pos = offset + done;
            let in_chunk = pos % CHUNK;
            let n = (CHUNK - in_chunk).min(len - done);
            f(
                pos / CHUNK,
                in_chunk as usize,
                done as usize..(done + n) as usize,
            );
            done += n;
        }
    }
}

/// The bitmask of the sectors covering `start..start+len` within a chunk.
fn sector_mask(start: usize, len: usize) -> u128 {
    let first = start as u64 / SECTOR;
    let last = (start + len).div_ceil(SECTOR as usize) as u64;
    let count = last - first;
    let ones = if count >= 128 {
        u128::MAX
    } else {
        (1u128 << count) - 1
    };
    ones << first
}

impl BlockStore for MemoryStore {
    fn len(&self) -> u64 {
        self.capacity
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        check_range(offset, buf.len() as u64, self.capacity)?;
        Self::for_each_piece(offset, buf.len() as u64, |index, at, range| {
            let dst = &mut buf[range];
            match self.chunks.get(&index) {
                Some(chunk) => dst.copy_from_slice(&chunk.data[at..at + dst.len()]),
                None => dst.fill(0),
            }
        });
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        check_range(offset, data.len() as u64, self.capacity)?;
        Self::for_each_piece(offset, data.len() as u64, |index, at, range| {
            let src = &data[range];
            let chunk = self.chunks.entry(index).or_insert_with(|| Chunk {
                data: vec![0u8; CHUNK as usize].into_boxed_slice(),
                mapped: 0,
            });
            chunk.data[at..at + src.len()].copy_from_slice(src);
            chunk.mapped |= sector_mask(at, src.len());
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        check_range(offset, len, self.capacity)?;
        Self::for_each_piece(offset, len, |index, at, range| {
            let n = range.len();
            if let Some(chunk) = self.chunks.get_mut(&index) {
                chunk.data[at..at + n].fill(0);
                chunk.mapped &= !sector_mask(at, n);
                if chunk.mapped == 0 {
                    self.chunks.remove(&index);
                }
            }
        });
        Ok(())
    }

    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        check_range(offset, SECTOR, self.capacity)?;
        let sector_mapped = |s: u64| -> bool {
            self.chunks
                .get(&(s / SECTORS_PER_CHUNK))
                .is_some_and(|c| c.mapped & (1u128 << (s % SECTORS_PER_CHUNK)) != 0)
        };
        let total = self.capacity / SECTOR;
        let first = offset / SECTOR;
        let state = sector_mapped(first);
        let mut s = first + 1;
        while s < total {
            // Skip whole chunks that are entirely absent or entirely mapped.
            if s % SECTORS_PER_CHUNK == 0 {
                let whole = match self.chunks.get(&(s / SECTORS_PER_CHUNK)) {
                    None => Some(false),
                    Some(c) if c.mapped == u128::MAX => Some(true),
                    Some(_) => None,
                };
                if whole == Some(state) {
                    s = (s + SECTORS_PER_CHUNK).min(total);
                    continue;
                }
            }
            if sector_mapped(s) != state {
                break;
            }
            s += 1;
        }
        Ok((state, (s - first) * SECTOR))
    }

    fn is_thin(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("mem:{}", super::format_size(self.capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_reads_zero_and_costs_nothing() {
        let mut s = MemoryStore::new(1 << 30);
        let mut buf = vec![0xffu8; 4096];
        s.read_at(12345 * 512, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        assert_eq!(s.resident_bytes(), 0);
        assert_eq!(s.allocation(0).unwrap(), (false, 1 << 30));
    }

    #[test]
    fn write_read_discard_across_chunks() {
        let mut s = MemoryStore::new(1 << 20);
        let data: Vec<u8> = (0..3 * CHUNK as usize / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let off = CHUNK - 1024;
        s.write_at(off, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        s.read_at(off, &mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(s.allocation(0).unwrap(), (false, off));
        assert_eq!(s.allocation(off).unwrap(), (true, data.len() as u64));
        s.discard(off + 512, 512).unwrap();
        assert_eq!(s.allocation(off).unwrap(), (true, 512));
        assert_eq!(s.allocation(off + 512).unwrap(), (false, 512));
        let mut one = vec![1u8; 512];
        s.read_at(off + 512, &mut one).unwrap();
        assert!(one.iter().all(|&b| b == 0));
        s.discard(0, 1 << 20).unwrap();
        assert_eq!(s.resident_bytes(), 0);
    }

    #[test]
    fn out_of_range_is_an_error_not_a_panic() {
        let mut s = MemoryStore::new(4096);
        assert!(matches!(
            s.write_at(4096, &[0; 512]),
            Err(StoreError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.read_at(u64::MAX - 10, &mut [0; 512]),
            Err(StoreError::OutOfRange { .. })
        ));
    }
}
