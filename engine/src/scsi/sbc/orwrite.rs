//! ORWRITE(16): SBC-4 §5.10.

use bytes::Bytes;

use super::{
    Extent, check_extent, check_length, check_no_protection, check_writable, data_blocks, flush,
    read_blocks, write_blocks,
};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// ORWRITE(16): each block becomes the bitwise OR of the medium and the
/// Data-Out (the whole blocks that arrived, up to the transfer length).
/// ORPROTECT must be zero; FUA flushes before GOOD status.
pub fn orwrite(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    check_no_protection(&cdb)?;
    let ext = Extent::decode(&cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    check_length(
        ext.blocks,
        lu.sbc.limits.max_transfer_length as u64,
        ext.len_at,
    )?;
    let bs = lu.config.block_size;
    let data = data_blocks(cmd, ext.blocks, bs);
    if !data.is_empty() {
        let mut merged = read_blocks(lu, ext.lba, (data.len() / bs as usize) as u64)?;
        for (m, d) in merged.iter_mut().zip(data) {
            *m |= d;
        }
        write_blocks(lu, ext.lba, &merged)?;
    }
    if cdb.bit(1, 3) {
        flush(lu)?;
    }
    Ok(Bytes::new())
}
