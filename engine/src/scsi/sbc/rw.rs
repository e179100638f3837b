//! READ(10/12/16) and WRITE(10/12/16): SBC-4 §5.16-§5.18 and §5.42-§5.44;
//! READ(6) and WRITE(6) as SBC-3 defines them.

use bytes::Bytes;

use super::{
    Extent, check_extent, check_length, check_no_protection, check_writable, data_blocks, flush,
    read_blocks, write_blocks,
};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// Whether the CDB is a 6-byte READ/WRITE, whose byte 1 holds LBA bits
/// rather than flags.
fn six_byte(cmd: &Command<'_>) -> bool {
    matches!(cmd.cdb.opcode(), 0x08 | 0x0a)
}

/// FUA (byte 1, bit 3) of the 10/12/16-byte forms.
fn fua(cmd: &Command<'_>) -> bool {
    !six_byte(cmd) && cmd.cdb.bit(1, 3)
}

/// READ: the Data-In is the blocks, built in one buffer with one store
/// read. A transfer length of zero reads nothing and is not an error
/// (except READ(6), where zero means 256 blocks). DPO is a cache hint and
/// ignored; FUA makes cached writes durable before the read.
pub fn read(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    if !six_byte(cmd) {
        check_no_protection(&cmd.cdb)?;
    }
    let ext = Extent::decode(&cmd.cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    check_length(
        ext.blocks,
        lu.sbc.limits.max_transfer_length as u64,
        ext.len_at,
    )?;
    if fua(cmd) {
        flush(lu)?;
    }
    if ext.blocks == 0 {
        return Ok(Bytes::new());
    }
    Ok(read_blocks(lu, ext.lba, ext.blocks)?.freeze())
}

/// WRITE: stores the whole blocks of Data-Out that arrived, up to the
/// transfer length; FUA flushes them before GOOD status.
pub fn write(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    check_writable(lu)?;
    if !six_byte(cmd) {
        check_no_protection(&cmd.cdb)?;
    }
    let ext = Extent::decode(&cmd.cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    check_length(
        ext.blocks,
        lu.sbc.limits.max_transfer_length as u64,
        ext.len_at,
    )?;
    let data = data_blocks(cmd, ext.blocks, lu.config.block_size);
    if !data.is_empty() {
        write_blocks(lu, ext.lba, data)?;
    }
    #[cfg(feature = "planted-bugs")]
    if crate::planted::active(lu.planted, crate::planted::PlantedBug::FuaIgnored) {
        return Ok(Bytes::new());
    }
    if fua(cmd) {
        flush(lu)?;
    }
    Ok(Bytes::new())
}
