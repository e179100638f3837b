//! WRITE SAME(10) and WRITE SAME(16): SBC-4 §5.54-§5.55, with the UNMAP,
//! ANCHOR and NDOB bits of logical block provisioning (SBC-4 §4.7).

use bytes::Bytes;

use super::{
    Extent, check_extent, check_length, check_no_protection, check_writable, discard_blocks,
    fill_blocks, lba_out_of_range, provisioning,
};
use crate::scsi::cdb::Cdb;
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::{Asc, Sense};

/// WRITE SAME. Writes the one block of Data-Out (zeros with NDOB) to each
/// LBA of the range; a NUMBER OF LOGICAL BLOCKS of zero means "to the end
/// of the medium" (WSNZ=0). With UNMAP (only on a thin logical unit) the
/// blocks are deallocated whatever the Data-Out holds, and read as zeros
/// (LBPRZ=1), as SBC-4 table "ANCHOR bit, UNMAP bit and ANC_SUP bit
/// relationships" asks and libiscsi's WriteSame10.UnmapUntilEnd checks.
/// ANCHOR needs ANC_SUP and UNMAP, so it is always rejected; the obsolete
/// PBDATA/LBDATA bits likewise. A Data-Out of any length other than one
/// block is rejected (ILLEGAL REQUEST, INVALID FIELD IN CDB).
pub fn write_same(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    check_no_protection(&cdb)?;
    let ws16 = cdb.opcode() == 0x93;
    let anchor = cdb.bit(1, 4);
    let unmap = cdb.bit(1, 3);
    let ndob = ws16 && cdb.bit(1, 0);
    if cdb.u8(1) & 0b110 != 0 {
        return Err(Cdb::invalid_field(1, Some(2)).into());
    }
    let prov = provisioning(lu);
    if anchor && (!unmap || !prov.anc_sup) {
        return Err(Cdb::invalid_field(1, Some(4)).into());
    }
    if unmap && !(if ws16 { prov.lbpws } else { prov.lbpws10 }) {
        return Err(Cdb::invalid_field(1, Some(3)).into());
    }
    let ext = Extent::decode(&cdb);
    let capacity = lu.block_count();
    if ext.lba >= capacity {
        return Err(lba_out_of_range().into());
    }
    let limits = &lu.sbc.limits;
    let blocks = if ext.blocks == 0 {
        if limits.wsnz {
            return Err(Cdb::invalid_field(ext.len_at, None).into());
        }
        capacity - ext.lba
    } else {
        ext.blocks
    };
    check_extent(lu, ext.lba, blocks)?;
    check_length(blocks, limits.max_write_same_length, ext.len_at)?;

    let bs = lu.config.block_size as usize;
    let zeros;
    let block: &[u8] = if ndob {
        zeros = vec![0u8; bs];
        &zeros
    } else if cmd.data_out.len() == bs {
        cmd.data_out
    } else {
        return Err(Sense::illegal_request(Asc::INVALID_FIELD_IN_CDB).into());
    };
    if unmap {
        discard_blocks(lu, ext.lba, blocks)?;
    } else {
        fill_blocks(lu, ext.lba, blocks, block)?;
    }
    Ok(Bytes::new())
}
