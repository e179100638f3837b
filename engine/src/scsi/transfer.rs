//! How much Data-Out a CDB asks for (SBC-4, SPC-5): the iSCSI layer
//! reports write residuals against it (RFC 7143 §11.4.5).

use super::cdb::Cdb;

/// The Data-Out length `cdb` asks for, in bytes, for commands that take
/// Data-Out; `None` for commands that take none.
pub fn data_out_length(cdb: &[u8], block_size: u32) -> Option<u32> {
    let c = Cdb(cdb);
    let blocks = |n: u64| u32::try_from(n.saturating_mul(block_size as u64)).unwrap_or(u32::MAX);
    let len = match c.opcode() {
        // WRITE(6): a transfer length of 0 means 256 blocks.
        0x0a => blocks(match c.u8(4) {
            0 => 256,
            n => n as u64,
        }),
        0x2a | 0x2e | 0x41 if c.opcode() != 0x41 => blocks(c.be16(7) as u64),
        0xaa | 0xae => blocks(c.be32(6) as u64),
        0x8a | 0x8e | 0x8b | 0x9c => blocks(c.be32(10) as u64),
        // VERIFY: BYTCHK 01b compares every block, 11b one block.
        0x2f | 0xaf | 0x8f => {
            let n = match c.opcode() {
                0x2f => c.be16(7) as u64,
                0xaf => c.be32(6) as u64,
                _ => c.be32(10) as u64,
            };
            match (c.u8(1) >> 1) & 3 {
                1 => blocks(n),
                3 => blocks(1),
                _ => return None,
            }
        }
        // WRITE SAME: one block, none with NDOB.
        0x41 => blocks(1),
        0x93 => {
            if c.bit(1, 0) {
                0
            } else {
                blocks(1)
            }
        }
        // COMPARE AND WRITE: the verify data and the write data.
        0x89 => blocks(2 * c.u8(13) as u64),
        0x15 | 0x16 => c.u8(4) as u32,
        0x55 | 0x42 => c.be16(7) as u32,
        0x5f => c.be32(5),
        0x83 => c.be32(10),
        0x48 => c.be16(7) as u32,
        _ => return None,
    };
    Some(len)
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
