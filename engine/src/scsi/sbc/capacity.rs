//! READ CAPACITY(10) and READ CAPACITY(16): SBC-4 §5.20-§5.21.

use bytes::Bytes;

use super::provisioning;
use crate::scsi::cdb::{Cdb, put_be32, put_be64};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// The last LBA (zero for an empty medium).
fn last_lba(lu: &LogicalUnit) -> u64 {
    lu.block_count().saturating_sub(1)
}

/// READ CAPACITY(10): the last LBA (FFFF_FFFFh when it does not fit, so the
/// initiator switches to READ CAPACITY(16)) and the block length. The
/// obsolete PMI bit and LBA field are accepted; an LBA without PMI is
/// INVALID FIELD IN CDB.
pub fn read_capacity10(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let pmi = cmd.cdb.bit(8, 0);
    if !pmi && cmd.cdb.be32(2) != 0 {
        return Err(Cdb::invalid_field(2, None).into());
    }
    let mut buf = [0u8; 8];
    put_be32(&mut buf, 0, last_lba(lu).min(u32::MAX as u64) as u32);
    put_be32(&mut buf, 4, lu.config.block_size);
    Ok(Bytes::copy_from_slice(&buf))
}

/// READ CAPACITY(16): 32 bytes of parameter data cut to the allocation
/// length. No protection information (PROT_EN=0, P_TYPE=0); LBPME and
/// LBPRZ follow the store's thin provisioning.
pub fn read_capacity16(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let alloc_len = cmd.cdb.be32(10) as usize;
    let prov = provisioning(lu);
    let mut buf = [0u8; 32];
    put_be64(&mut buf, 0, last_lba(lu));
    put_be32(&mut buf, 8, lu.config.block_size);
    buf[13] = prov.lbppbe & 0x0f;
    let [hi, lo] = prov.lowest_aligned_lba.to_be_bytes();
    buf[14] = (prov.lbpme as u8) << 7 | (prov.lbprz as u8) << 6 | (hi & 0x3f);
    buf[15] = lo;
    Ok(Bytes::copy_from_slice(&buf[..alloc_len.min(buf.len())]))
}
