//! CDBs and parameter lists the scenarios send as raw commands (SBC-4,
//! SPC-5), for the checks the initiator's convenience calls hide (unit
//! attentions, reservation conflicts, COMPARE AND WRITE miscompares).

use bytes::Bytes;

/// TEST UNIT READY (SPC-5 §6.47).
pub const TEST_UNIT_READY: [u8; 6] = [0, 0, 0, 0, 0, 0];

/// READ(10) or WRITE(10) (SBC-4 §5.16, §5.40); `fua` sets FUA.
pub fn rw10(write: bool, lba: u64, blocks: u16, fua: bool) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = if write { 0x2a } else { 0x28 };
    c[1] = if fua { 0x08 } else { 0 };
    c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
    c[7..9].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// COMPARE AND WRITE (SBC-4 §5.3) of `blocks` blocks at `lba`.
pub fn compare_and_write(lba: u64, blocks: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x89;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[13] = blocks;
    c
}

/// PERSISTENT RESERVE OUT service actions (SPC-5 §6.17.2).
pub mod pr_action {
    pub const REGISTER: u8 = 0x00;
    pub const RESERVE: u8 = 0x01;
    pub const RELEASE: u8 = 0x02;
    pub const CLEAR: u8 = 0x03;
    pub const PREEMPT: u8 = 0x04;
}

/// Persistent reservation types (SPC-5 §6.16.3.3).
pub mod pr_type {
    pub const WRITE_EXCLUSIVE: u8 = 0x01;
    pub const EXCLUSIVE_ACCESS: u8 = 0x03;
    pub const WRITE_EXCLUSIVE_REGISTRANTS_ONLY: u8 = 0x05;
    pub const EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: u8 = 0x06;
}

/// PERSISTENT RESERVE OUT with its basic 24-byte parameter list.
pub fn pr_out(action: u8, kind: u8, key: u64, sa_key: u64) -> ([u8; 10], Bytes) {
    let mut c = [0u8; 10];
    c[0] = 0x5f;
    c[1] = action & 0x1f;
    c[2] = kind & 0x0f;
    c[5..9].copy_from_slice(&24u32.to_be_bytes());
    let mut p = vec![0u8; 24];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    (c, Bytes::from(p))
}

/// PERSISTENT RESERVE IN, READ RESERVATION (SPC-5 §6.16.3).
pub fn pr_in_read_reservation() -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = 0x5e;
    c[1] = 0x01;
    c[7..9].copy_from_slice(&64u16.to_be_bytes());
    c
}

/// The holder's key and the type from READ RESERVATION data, if reserved.
pub fn parse_reservation(data: &[u8]) -> Option<(u64, u8)> {
    let len = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
    if len < 16 {
        return None;
    }
    let key = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
    Some((key, data.get(21)? & 0x0f))
}

/// The INFORMATION field of fixed or descriptor sense data (SPC-5 §4.4).
pub fn sense_information(sense: &[u8]) -> Option<u64> {
    match sense.first()? & 0x7f {
        0x70 | 0x71 => Some(u64::from(u32::from_be_bytes(
            sense.get(3..7)?.try_into().ok()?,
        ))),
        0x72 | 0x73 => {
            let mut at = 8;
            while at + 1 < sense.len() {
                let (kind, len) = (sense[at], sense[at + 1] as usize);
                if kind == 0 && len >= 10 {
                    return Some(u64::from_be_bytes(
                        sense.get(at + 4..at + 12)?.try_into().ok()?,
                    ));
                }
                at += 2 + len;
            }
            None
        }
        _ => None,
    }
}

/// A raw command whose unit attentions (from logins, resets, reservation
/// changes) are retried, as the SCSI mid-layer does; any other status is
/// returned.
pub async fn command<N: iscsi_engine::net::Network>(
    s: &iscsi_engine::net::initiator::Session<N>,
    lun: u16,
    cdb: &[u8],
    data: Bytes,
    expected_in: u32,
) -> Result<iscsi_engine::net::initiator::ScsiOutcome, iscsi_engine::net::initiator::InitiatorError>
{
    let mut tries = 0;
    loop {
        let outcome = s.command(lun, cdb, data.clone(), expected_in).await?;
        let unit_attention = outcome.sense.as_ref().is_some_and(|s| s.key == 0x06);
        if unit_attention && tries < 4 {
            tries += 1;
            continue;
        }
        return Ok(outcome);
    }
}
