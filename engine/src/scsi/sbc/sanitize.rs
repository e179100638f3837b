//! SANITIZE: SBC-4 §5.32, and the sanitize operation model of SBC-4 clause 4.

use bytes::Bytes;

use super::{check_writable, discard_blocks, fill_blocks, flush};
use crate::scsi::cdb::{Cdb, invalid_parameter};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;
use crate::scsi::sense::{Asc, Sense};

/// Service actions (byte 1, bits 4:0).
pub(crate) const OVERWRITE: u8 = 0x01;
pub(crate) const BLOCK_ERASE: u8 = 0x02;
pub(crate) const CRYPTOGRAPHIC_ERASE: u8 = 0x03;
pub(crate) const EXIT_FAILURE_MODE: u8 = 0x1f;

/// SANITIZE. Byte 1 bit 6 and bytes 2-6 are reserved and must be zero.
///
/// - OVERWRITE: the parameter list (5 to block length + 4 bytes) holds
///   INVERT, TEST (must be 00b), OVERWRITE COUNT (nonzero) and an
///   initialization pattern of 1 to block length bytes that fits the list;
///   each block is filled with the pattern repeated, inverted when INVERT
///   is set and the count is even (the last pass is what remains).
/// - BLOCK ERASE and CRYPTOGRAPHIC ERASE take no parameter list and
///   deallocate every block: reads return zeros (WABEREQ = WACEREQ = 01b).
/// - EXIT FAILURE MODE: no parameter list; there is never a failed
///   sanitize to leave, so it completes at once.
///
/// Bad CDB fields are INVALID FIELD IN CDB, bad parameters INVALID FIELD
/// IN PARAMETER LIST. IMMED and AUSE are accepted. The erase is done when
/// the command returns; with `defer_sanitize` the operation then stays "in
/// progress" until the session calls `complete_sanitize`.
pub fn sanitize(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    check_writable(lu)?;
    if cdb.bit(1, 6) {
        return Err(Cdb::invalid_field(1, Some(6)).into());
    }
    if let Some(at) = (2..=6).find(|&at| cdb.u8(at) != 0) {
        return Err(Cdb::invalid_field(at as u16, None).into());
    }
    let list_len = cdb.be16(7) as usize;
    match cdb.service_action() {
        OVERWRITE => overwrite(lu, cmd, list_len)?,
        BLOCK_ERASE | CRYPTOGRAPHIC_ERASE | EXIT_FAILURE_MODE if list_len != 0 => {
            return Err(Cdb::invalid_field(7, None).into());
        }
        BLOCK_ERASE | CRYPTOGRAPHIC_ERASE => {
            let blocks = lu.block_count();
            if blocks > 0 {
                discard_blocks(lu, 0, blocks)?;
            }
        }
        EXIT_FAILURE_MODE => return Ok(Bytes::new()),
        _ => return Err(Cdb::invalid_field(1, Some(4)).into()),
    }
    flush(lu)?;
    if lu.sbc.defer_sanitize {
        lu.sbc.sanitize_pending = true;
    }
    Ok(Bytes::new())
}

/// Validates the OVERWRITE parameter list and writes the final pass.
fn overwrite(lu: &mut LogicalUnit, cmd: &Command<'_>, list_len: usize) -> Result<(), Sense> {
    let bs = lu.config.block_size as usize;
    if list_len < 5 || list_len > bs + 4 {
        return Err(Cdb::invalid_field(7, None));
    }
    let Some(list) = cmd.data_out.get(..list_len) else {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
    };
    let header = Cdb(list);
    let invert = header.bit(0, 7);
    if header.u8(0) & 0x60 != 0 {
        return Err(invalid_parameter(0, Some(6)));
    }
    let count = header.u8(0) & 0x1f;
    if count == 0 {
        return Err(invalid_parameter(0, Some(4)));
    }
    let pattern_len = header.be16(2) as usize;
    if pattern_len == 0 || pattern_len > bs || pattern_len > list_len - 4 {
        return Err(invalid_parameter(2, None));
    }
    let flip = if invert && count % 2 == 0 { 0xff } else { 0x00 };
    let block: Vec<u8> = list[4..4 + pattern_len]
        .iter()
        .cycle()
        .take(bs)
        .map(|b| b ^ flip)
        .collect();
    let blocks = lu.block_count();
    fill_blocks(lu, 0, blocks, &block)
}
