//! PRE-FETCH(10) and PRE-FETCH(16): SBC-4 §5.13-§5.14.

use bytes::Bytes;

use super::{Extent, check_extent, check_length};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// PRE-FETCH. The stores have no read cache to populate, so after the range
/// check the command completes with GOOD status, which SBC-4 specifies when
/// the cache cannot hold the blocks (CONDITION MET would claim they are
/// cached). IMMED and GROUP NUMBER change nothing.
pub fn pre_fetch(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let ext = Extent::decode(&cmd.cdb);
    check_extent(lu, ext.lba, ext.blocks)?;
    check_length(
        ext.blocks,
        lu.sbc.limits.max_prefetch_length as u64,
        ext.len_at,
    )?;
    Ok(Bytes::new())
}
