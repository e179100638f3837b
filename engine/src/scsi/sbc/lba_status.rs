//! GET LBA STATUS(16): SBC-4 §5.6.

use bytes::Bytes;

use super::lba_out_of_range;
use crate::scsi::cdb::{put_be32, put_be64};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::Sense;

/// PROVISIONING STATUS values of an LBA status descriptor.
const MAPPED: u8 = 0x0;
const DEALLOCATED: u8 = 0x1;

/// The most descriptors one command returns, whatever the allocation
/// length (bounds the work per command).
const MAX_DESCRIPTORS: usize = 1024;

/// GET LBA STATUS. Returns one descriptor per run of mapped or deallocated
/// blocks from the STARTING LOGICAL BLOCK ADDRESS (so the first descriptor
/// starts there), as many as the allocation length holds, the last run
/// ending at the end of the medium. A block is mapped if any byte of it is.
/// A starting LBA past the last LBA is LBA OUT OF RANGE.
pub fn get_lba_status(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let start = cmd.cdb.be64(2);
    let alloc_len = cmd.cdb.be32(10) as usize;
    let capacity = lu.block_count();
    if start >= capacity {
        return Err(lba_out_of_range().into());
    }
    let wanted = (alloc_len.saturating_sub(8) / 16).clamp(1, MAX_DESCRIPTORS);
    let mut runs: Vec<(u64, u64, u8)> = Vec::with_capacity(wanted);
    let mut lba = start;
    while lba < capacity {
        let (mapped, end) = next_run(lu, lba, capacity)?;
        let status = if mapped { MAPPED } else { DEALLOCATED };
        let full = runs.len() == wanted;
        match runs.last_mut() {
            Some(last) if last.2 == status && last.1 < u32::MAX as u64 => {
                let grow = (end - lba).min(u32::MAX as u64 - last.1);
                last.1 += grow;
                lba += grow;
            }
            _ if full => break,
            _ => {
                let n = (end - lba).min(u32::MAX as u64);
                runs.push((lba, n, status));
                lba += n;
            }
        }
    }
    let mut buf = vec![0u8; 8 + runs.len() * 16];
    put_be32(&mut buf, 0, (4 + runs.len() * 16) as u32);
    for (i, &(lba, blocks, status)) in runs.iter().enumerate() {
        let d = 8 + i * 16;
        put_be64(&mut buf, d, lba);
        put_be32(&mut buf, d + 8, blocks as u32);
        buf[d + 12] = status;
    }
    buf.truncate(alloc_len);
    Ok(Bytes::from(buf))
}

/// The mapping state of block `lba` and the end of the run of blocks that
/// share it, from the store's byte-granular answer.
fn next_run(lu: &mut LogicalUnit, lba: u64, capacity: u64) -> Result<(bool, u64), Sense> {
    let bs = lu.config.block_size as u64;
    let (mapped, len) = lu
        .store
        .allocation(lba * bs)
        .map_err(|e| super::store_error(e, bs as u32, false))?;
    let end_byte = lba * bs + len;
    let end = if mapped {
        end_byte.div_ceil(bs)
    } else {
        end_byte / bs
    };
    if end <= lba {
        // The block starts deallocated but is partly mapped.
        return Ok((true, lba + 1));
    }
    Ok((mapped, end.min(capacity)))
}
