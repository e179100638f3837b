//! READ DEFECT DATA(10) and READ DEFECT DATA(12): SBC-4 §5.22-§5.23.

use bytes::Bytes;

use crate::scsi::cdb::Cdb;
use crate::scsi::command::{Command, Outcome};
use crate::scsi::device::LogicalUnit;

/// READ DEFECT DATA. A virtual medium has no defects: the header echoes the
/// requested lists (PLISTV/GLISTV) and DEFECT LIST FORMAT with a DEFECT
/// LIST LENGTH of zero, cut to the allocation length. Format 111b is
/// reserved (INVALID FIELD IN CDB).
pub fn read_defect_data(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let _ = lu;
    let cdb = cmd.cdb;
    let ten = cdb.opcode() == 0x37;
    let flags_at = if ten { 2 } else { 1 };
    let flags = cdb.u8(flags_at) & 0x1f;
    if flags & 0x07 == 0x07 {
        return Err(Cdb::invalid_field(flags_at as u16, Some(2)).into());
    }
    let (header, alloc_len): (&[u8], usize) = if ten {
        (&[0, flags, 0, 0], cdb.be16(7) as usize)
    } else {
        (&[0, flags, 0, 0, 0, 0, 0, 0], cdb.be32(6) as usize)
    };
    let mut buf = header.to_vec();
    buf.truncate(alloc_len);
    Ok(Bytes::from(buf))
}
