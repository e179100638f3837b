//! UNMAP: SBC-4 §5.37.

use bytes::Bytes;

use super::{check_writable, discard_blocks, lba_out_of_range, provisioning};
use crate::scsi::cdb::{Cdb, invalid_parameter};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::{Asc, Sense};

/// Bytes in the parameter list header and in one block descriptor.
const HEADER: usize = 8;
const DESCRIPTOR: usize = 16;

/// UNMAP. Validates the whole parameter list before deallocating anything:
///
/// - PARAMETER LIST LENGTH zero: nothing to do; 1..=7: PARAMETER LIST
///   LENGTH ERROR.
/// - The descriptors are those within the UNMAP BLOCK DESCRIPTOR DATA
///   LENGTH, the PARAMETER LIST LENGTH and the Data-Out received; an
///   incomplete last descriptor is ignored. An UNMAP DATA LENGTH too small
///   to cover the descriptor data is INVALID FIELD IN PARAMETER LIST.
/// - More descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT, or more
///   LBAs than MAXIMUM UNMAP LBA COUNT: INVALID FIELD IN PARAMETER LIST.
/// - A descriptor whose LBA plus count passes the end of the medium: LBA
///   OUT OF RANGE (a count of zero is fine, even at the capacity).
///
/// Fully provisioned logical units do not support UNMAP (LBPU=0). ANCHOR
/// needs ANC_SUP, which is zero.
pub fn unmap(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    let prov = provisioning(lu);
    if !prov.lbpu {
        return Err(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE).into());
    }
    if cdb.bit(1, 0) && !prov.anc_sup {
        return Err(Cdb::invalid_field(1, Some(0)).into());
    }
    let list_len = cdb.be16(7) as usize;
    if list_len == 0 {
        return Ok(Bytes::new());
    }
    let data = &cmd.data_out[..list_len.min(cmd.data_out.len())];
    if list_len < HEADER || data.len() < HEADER {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let header = Cdb(data);
    let data_len = header.be16(0) as usize;
    let descriptor_len = header.be16(2) as usize;
    if data_len + 2 < descriptor_len + HEADER {
        return Err(invalid_parameter(0, None).into());
    }
    let available = descriptor_len.min(data.len() - HEADER);
    let descriptors = &data[HEADER..HEADER + available / DESCRIPTOR * DESCRIPTOR];

    let limits = &lu.sbc.limits;
    let count = descriptors.len() / DESCRIPTOR;
    if count as u64 > limits.max_unmap_block_descriptor_count as u64 {
        return Err(invalid_parameter(2, None).into());
    }
    let capacity = lu.block_count();
    let mut extents = Vec::with_capacity(count);
    let mut total: u64 = 0;
    for (i, d) in descriptors.chunks_exact(DESCRIPTOR).enumerate() {
        let (lba, blocks) = (Cdb(d).be64(0), Cdb(d).be32(8) as u64);
        if lba.checked_add(blocks).is_none_or(|end| end > capacity) {
            return Err(lba_out_of_range().into());
        }
        total += blocks;
        if total > limits.max_unmap_lba_count as u64 {
            return Err(invalid_parameter((HEADER + i * DESCRIPTOR + 8) as u16, None).into());
        }
        if blocks > 0 {
            extents.push((lba, blocks));
        }
    }
    for (lba, blocks) in extents {
        discard_blocks(lu, lba, blocks)?;
    }
    Ok(Bytes::new())
}
