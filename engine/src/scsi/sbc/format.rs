//! FORMAT UNIT: SBC-4 §5.4.

use bytes::Bytes;

use super::{check_writable, discard_blocks};
use crate::scsi::cdb::{Cdb, invalid_parameter};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::{Asc, Sense};

/// FORMAT UNIT. Formatting a virtual medium deallocates every block (they
/// read as zeros afterwards); the block length does not change. Without
/// FMTDATA there is no parameter list. With it, only a bare short or long
/// header is accepted: no defect list, no initialization pattern (IP), no
/// protection information (FMTPINFO, PROTECTION FIELD USAGE).
pub fn format_unit(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    if cdb.u8(1) & 0xc0 != 0 {
        return Err(Cdb::invalid_field(1, Some(7)).into());
    }
    let fmtdata = cdb.bit(1, 4);
    if !fmtdata && cdb.u8(1) & 0x0f != 0 {
        return Err(Cdb::invalid_field(1, Some(3)).into());
    }
    if fmtdata {
        let long = cdb.bit(1, 5);
        let header_len = if long { 8 } else { 4 };
        let data: &[u8] = cmd.data_out;
        if data.len() < header_len {
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
        }
        let header = Cdb(data);
        if header.u8(0) & 0x07 != 0 {
            return Err(invalid_parameter(0, Some(2)).into());
        }
        if header.bit(1, 3) {
            return Err(invalid_parameter(1, Some(3)).into());
        }
        let defect_list_len = if long {
            header.be32(4)
        } else {
            header.be16(2) as u32
        };
        if defect_list_len != 0 {
            return Err(invalid_parameter(if long { 4 } else { 2 }, None).into());
        }
    }
    let blocks = lu.block_count();
    if blocks > 0 {
        discard_blocks(lu, 0, blocks)?;
    }
    super::flush(lu)?;
    Ok(Bytes::new())
}
