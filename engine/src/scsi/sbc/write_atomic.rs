//! WRITE ATOMIC(16): SBC-4 §5.50 and the atomic write limits of the Block
//! Limits VPD page (SBC-4 §6.6.4).

use bytes::Bytes;

use super::{
    Extent, check_extent, check_length, check_no_protection, check_writable, data_blocks, flush,
    write_blocks,
};
use crate::scsi::cdb::Cdb;
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// WRITE ATOMIC(16). Every write here is atomic already (one store write
/// while the device is held), so this is WRITE(16) with the atomic limits
/// enforced: the transfer length within MAXIMUM ATOMIC TRANSFER LENGTH and a
/// multiple of ATOMIC TRANSFER LENGTH GRANULARITY, the LBA a multiple of
/// ATOMIC ALIGNMENT, and no ATOMIC BOUNDARY (not supported). Violations are
/// INVALID FIELD IN CDB; the LBA range is checked first.
pub fn write_atomic16(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    check_no_protection(&cdb)?;
    let ext = Extent::decode(&cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    let limits = &lu.sbc.limits;
    let boundary = cdb.be16(10) as u32;
    if boundary != 0 && boundary > limits.max_atomic_boundary_size {
        return Err(Cdb::invalid_field(10, None).into());
    }
    check_length(
        ext.blocks,
        limits.max_atomic_transfer_length as u64,
        ext.len_at,
    )?;
    let align = limits.atomic_alignment as u64;
    if align > 1 && ext.lba % align != 0 {
        return Err(Cdb::invalid_field(2, None).into());
    }
    let granularity = limits.atomic_transfer_length_granularity as u64;
    if granularity > 1 && ext.blocks % granularity != 0 {
        return Err(Cdb::invalid_field(ext.len_at, None).into());
    }
    let data = data_blocks(cmd, ext.blocks, lu.config.block_size);
    if !data.is_empty() {
        write_blocks(lu, ext.lba, data)?;
    }
    if cdb.bit(1, 3) {
        flush(lu)?;
    }
    Ok(Bytes::new())
}
