//! How much Data-Out a CDB asks for: the iSCSI layer reports write
//! residuals against it (RFC 7143 §11.4.5).

use super::cdb::Cdb;
use super::sbc;

/// The Data-Out length `cdb` asks for, in bytes, for commands that take
/// Data-Out (SBC data commands, and SPC parameter lists); `None` for
/// commands that take none.
pub fn data_out_length(cdb: &[u8], block_size: u32) -> Option<u32> {
    let c = Cdb(cdb);
    let len = match c.opcode() {
        0x15 => c.u8(4) as u64,
        0x55 => c.be16(7) as u64,
        0x5f => c.be32(5) as u64,
        0x83 => c.be32(10) as u64,
        _ => sbc::data_out_length(&c, block_size)?,
    };
    Some(u32::try_from(len).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parameter_lists() {
        assert_eq!(
            data_out_length(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0], 512),
            Some(1024)
        );
        assert_eq!(
            data_out_length(&[0x0a, 0, 0, 0, 0, 0], 512),
            Some(256 * 512)
        );
        let mut w16 = [0u8; 16];
        w16[0] = 0x8a;
        w16[13] = 8;
        assert_eq!(data_out_length(&w16, 4096), Some(32768));
        let mut caw = [0u8; 16];
        caw[0] = 0x89;
        caw[13] = 1;
        assert_eq!(data_out_length(&caw, 512), Some(1024));
        assert_eq!(
            data_out_length(&[0x41, 0, 0, 0, 0, 0, 0, 0, 9, 0], 512),
            Some(512)
        );
        assert_eq!(
            data_out_length(&[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0], 512),
            None
        );
        assert_eq!(
            data_out_length(&[0x2f, 0, 0, 0, 0, 0, 0, 0, 2, 0], 512),
            None
        );
        assert_eq!(
            data_out_length(&[0x2f, 0x02, 0, 0, 0, 0, 0, 0, 2, 0], 512),
            Some(1024)
        );
        assert_eq!(data_out_length(&[0x15, 0x10, 0, 0, 24, 0], 512), Some(24));
    }
}
