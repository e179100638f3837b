//! The data the workloads write: every block names the write that
//! produced it, so that a read tells the oracle exactly which write (if
//! any) each block came from, and a torn, misplaced or corrupted block is
//! recognised as such.
//!
//! Layout of a block: `ISIMBLK1`, the write's tag (u64), the LBA (u64),
//! the LUN (u16), then a pseudo-random fill derived from all three.

/// What a block read back holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// Never written (or unmapped): zeros.
    Zero,
    /// Written by the write with this tag.
    Tag(u64),
}

const MAGIC: &[u8; 8] = b"ISIMBLK1";
const HEADER: usize = 26;

fn fill(seed: u64, out: &mut [u8]) {
    let mut x = seed | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

fn seed(tag: u64, lun: u16, lba: u64) -> u64 {
    crate::hash::mix64(tag ^ lba.rotate_left(24) ^ u64::from(lun).rotate_left(56))
}

/// Fills `out` (one block) with the content of write `tag` at `lba`.
pub fn encode_block(tag: u64, lun: u16, lba: u64, out: &mut [u8]) {
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&tag.to_le_bytes());
    out[16..24].copy_from_slice(&lba.to_le_bytes());
    out[24..26].copy_from_slice(&lun.to_le_bytes());
    fill(seed(tag, lun, lba), &mut out[HEADER..]);
}

/// The data of a write of `blocks` blocks at `lba`.
pub fn encode(tag: u64, lun: u16, lba: u64, blocks: u32, block_size: u32) -> Vec<u8> {
    let bs = block_size as usize;
    let mut data = vec![0u8; blocks as usize * bs];
    for (i, block) in data.chunks_mut(bs).enumerate() {
        encode_block(tag, lun, lba + i as u64, block);
    }
    data
}

/// What one block read from `lba` holds, or why it is garbage.
pub fn decode_block(block: &[u8], lun: u16, lba: u64) -> Result<Value, String> {
    if block.iter().all(|&b| b == 0) {
        return Ok(Value::Zero);
    }
    if block.len() < HEADER || &block[..8] != MAGIC {
        return Err("block holds data no write produced".into());
    }
    let tag = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));
    let at = u64::from_le_bytes(block[16..24].try_into().expect("8 bytes"));
    let on = u16::from_le_bytes(block[24..26].try_into().expect("2 bytes"));
    if at != lba || on != lun {
        return Err(format!(
            "block holds write #{tag}'s data for lun {on} lba {at} (misdirected)"
        ));
    }
    let mut expected = vec![0u8; block.len() - HEADER];
    fill(seed(tag, lun, lba), &mut expected);
    if block[HEADER..] != expected[..] {
        return Err(format!("block of write #{tag} is corrupted"));
    }
    Ok(Value::Tag(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_damage_is_seen() {
        let data = encode(42, 1, 100, 2, 512);
        assert_eq!(decode_block(&data[..512], 1, 100), Ok(Value::Tag(42)));
        assert_eq!(decode_block(&data[512..], 1, 101), Ok(Value::Tag(42)));
        assert!(decode_block(&data[512..], 1, 100).is_err());
        let mut bad = data[..512].to_vec();
        bad[300] ^= 1;
        assert!(decode_block(&bad, 1, 100).is_err());
        assert_eq!(decode_block(&[0u8; 512], 1, 5), Ok(Value::Zero));
    }
}
