//! VERIFY(10/12/16) and WRITE AND VERIFY(10/12/16): SBC-4 §5.38-§5.40 and
//! §5.46-§5.48.

use bytes::Bytes;

use super::{
    CHUNK_BYTES, Extent, check_extent, check_length, check_no_protection, check_writable,
    compare_medium, data_blocks, first_difference, flush, miscompare, read_blocks, write_blocks,
};
use crate::scsi::cdb::Cdb;
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::Sense;

/// The BYTCHK field (byte 1, bits 2:1).
fn bytchk(cdb: &Cdb<'_>) -> u8 {
    (cdb.u8(1) >> 1) & 0b11
}

/// VERIFY. BYTCHK 00b reads the blocks back (surfacing medium errors)
/// without Data-Out; 01b compares them with the Data-Out; 11b compares
/// each of them with the single block of Data-Out; 10b is reserved. A
/// miscompare reports the offset into the (duplicated) Data-Out Buffer.
/// Unmapped blocks compare as the zeros they read as (VBULS=1).
pub fn verify(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_no_protection(&cdb)?;
    let check = bytchk(&cdb);
    if check == 0b10 {
        return Err(Cdb::invalid_field(1, Some(2)).into());
    }
    let ext = Extent::decode(&cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    if check == 0b01 {
        check_length(
            ext.blocks,
            lu.sbc.limits.max_transfer_length as u64,
            ext.len_at,
        )?;
    }
    if ext.blocks == 0 {
        return Ok(Bytes::new());
    }
    let bs = lu.config.block_size;
    match check {
        0b00 => verify_medium(lu, ext.lba, ext.blocks)?,
        0b01 => compare_medium(lu, ext.lba, data_blocks(cmd, ext.blocks, bs), 0)?,
        _ => {
            let Some(pattern) = cmd.data_out.get(..bs as usize) else {
                return Err(Cdb::invalid_field(1, Some(2)).into());
            };
            compare_pattern(lu, ext.lba, ext.blocks, pattern)?;
        }
    }
    Ok(Bytes::new())
}

/// Reads `blocks` blocks a chunk at a time, for their medium errors only.
fn verify_medium(lu: &mut LogicalUnit, lba: u64, blocks: u64) -> Result<(), Sense> {
    let per_chunk = (CHUNK_BYTES / lu.config.block_size as u64).max(1);
    let mut done = 0;
    while done < blocks {
        let n = per_chunk.min(blocks - done);
        read_blocks(lu, lba + done, n)?;
        done += n;
    }
    Ok(())
}

/// Compares every block of `lba..lba+blocks` with `pattern` (one block).
fn compare_pattern(
    lu: &mut LogicalUnit,
    lba: u64,
    blocks: u64,
    pattern: &[u8],
) -> Result<(), Sense> {
    let bs = pattern.len() as u64;
    let per_chunk = (CHUNK_BYTES / bs).max(1);
    let mut done = 0;
    while done < blocks {
        let n = per_chunk.min(blocks - done);
        let have = read_blocks(lu, lba + done, n)?;
        for (i, block) in have.chunks(bs as usize).enumerate() {
            if let Some(pos) = first_difference(block, pattern) {
                return Err(miscompare((done + i as u64) * bs + pos as u64));
            }
        }
        done += n;
    }
    Ok(())
}

/// WRITE AND VERIFY: writes the Data-Out that arrived, makes it durable,
/// then (BYTCHK 01b) compares the medium with it. BYTCHK 10b and 11b are
/// reserved for this command.
pub fn write_and_verify(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    check_no_protection(&cdb)?;
    let check = bytchk(&cdb);
    if check & 0b10 != 0 {
        return Err(Cdb::invalid_field(1, Some(2)).into());
    }
    let ext = Extent::decode(&cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    check_length(
        ext.blocks,
        lu.sbc.limits.max_transfer_length as u64,
        ext.len_at,
    )?;
    let data = data_blocks(cmd, ext.blocks, lu.config.block_size);
    if data.is_empty() {
        return Ok(Bytes::new());
    }
    write_blocks(lu, ext.lba, data)?;
    flush(lu)?;
    if check == 0b01 {
        compare_medium(lu, ext.lba, data, 0)?;
    }
    Ok(Bytes::new())
}
