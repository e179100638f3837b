//! SYNCHRONIZE CACHE(10) and SYNCHRONIZE CACHE(16): SBC-4 §5.35-§5.36.

use bytes::Bytes;

use super::{Extent, check_extent, flush};
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// SYNCHRONIZE CACHE. Checks the range (NUMBER OF LOGICAL BLOCKS zero means
/// to the end of the medium), then makes every completed write durable: the
/// stores flush as a whole. IMMED and the obsolete SYNC_NV are accepted.
pub fn synchronize_cache(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let ext = Extent::decode(&cmd.cdb);
    let blocks = if ext.blocks == 0 {
        lu.block_count().saturating_sub(ext.lba)
    } else {
        ext.blocks
    };
    check_extent(lu, ext.lba, blocks)?;
    #[cfg(feature = "planted-bugs")]
    if crate::planted::active(
        lu.planted,
        crate::planted::PlantedBug::UnflushedCacheDurable,
    ) {
        return Ok(Bytes::new());
    }
    flush(lu)?;
    Ok(Bytes::new())
}
