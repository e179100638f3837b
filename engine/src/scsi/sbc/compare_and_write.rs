//! COMPARE AND WRITE: SBC-4 §5.3.

use bytes::Bytes;

use super::{
    Extent, check_extent, check_no_protection, check_writable, first_difference, flush, miscompare,
    read_blocks, write_blocks,
};
use crate::scsi::cdb::Cdb;
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// COMPARE AND WRITE. The Data-Out holds the verify instance then the write
/// instance, NUMBER OF LOGICAL BLOCKS blocks each, and must be exactly that
/// long (anything else is INVALID FIELD IN CDB, as is a count above
/// MAXIMUM COMPARE AND WRITE LENGTH). If the medium differs from the verify
/// instance nothing is written and the command fails with MISCOMPARE,
/// INFORMATION holding the offset of the first differing byte. The caller
/// executes commands one at a time per device, which makes the read,
/// compare and write atomic.
pub fn compare_and_write(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    check_no_protection(&cdb)?;
    let ext = Extent::decode(&cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    if ext.blocks > lu.sbc.limits.max_compare_and_write_length as u64 {
        return Err(Cdb::invalid_field(ext.len_at, None).into());
    }
    let half = (ext.blocks * lu.config.block_size as u64) as usize;
    if cmd.data_out.len() != 2 * half {
        return Err(Cdb::invalid_field(ext.len_at, None).into());
    }
    if ext.blocks == 0 {
        return Ok(Bytes::new());
    }
    let (expected, new) = cmd.data_out.split_at(half);
    let current = read_blocks(lu, ext.lba, ext.blocks)?;
    #[cfg(feature = "planted-bugs")]
    let (current, expected) = if crate::planted::active(
        lu.planted,
        crate::planted::PlantedBug::CompareFirstBlockOnly,
    ) {
        let bs = lu.config.block_size as usize;
        (current.split_at(bs).0.into(), &expected[..bs])
    } else {
        (current, expected)
    };
    if let Some(offset) = first_difference(&current, expected) {
        return Err(miscompare(offset as u64).into());
    }
    write_blocks(lu, ext.lba, new)?;
    if cdb.bit(1, 3) {
        flush(lu)?;
    }
    Ok(Bytes::new())
}
