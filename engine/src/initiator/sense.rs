//! Reading the sense data of a SCSI Response (RFC 7143 §11.4.7.2; the
//! formats are SPC-5's fixed and descriptor sense data).

use bytes::Bytes;

use crate::scsi::{sense::key, status};

/// The fields of sense data an initiator acts on, and the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenseInfo {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    pub raw: Bytes,
}

impl SenseInfo {
    /// Decodes fixed (response code 0x70/0x71) or descriptor (0x72/0x73)
    /// sense data; `None` when it is neither or too short.
    pub fn parse(raw: Bytes) -> Option<SenseInfo> {
        let code = raw.first()? & 0x7f;
        let (k, asc, ascq) = match code {
            0x70 | 0x71 => {
                let k = raw.get(2)? & 0x0f;
                (
                    k,
                    raw.get(12).copied().unwrap_or(0),
                    raw.get(13).copied().unwrap_or(0),
                )
            }
            0x72 | 0x73 => (raw.get(1)? & 0x0f, *raw.get(2)?, *raw.get(3)?),
            _ => return None,
        };
        Some(SenseInfo {
            key: k,
            asc,
            ascq,
            raw,
        })
    }

    /// Whether this is a UNIT ATTENTION (SAM-5 §5.14), which a retry of
    /// the command clears.
    pub fn is_unit_attention(&self) -> bool {
        self.key == key::UNIT_ATTENTION
    }
}

/// Splits a SCSI Response data segment into its sense data (§11.4.7:
/// a 2-byte SenseLength, the sense data, then response data).
pub fn sense_of_response(data: &Bytes) -> Option<Bytes> {
    if data.len() < 2 {
        return None;
    }
    let len = u16::from_be_bytes([data[0], data[1]]) as usize;
    if len == 0 {
        return None;
    }
    Some(data.slice(2..(2 + len).min(data.len())))
}

/// The SPC-5 name of a sense key.
pub fn key_name(k: u8) -> &'static str {
    match k {
        key::NO_SENSE => "NO SENSE",
        key::RECOVERED_ERROR => "RECOVERED ERROR",
        key::NOT_READY => "NOT READY",
        key::MEDIUM_ERROR => "MEDIUM ERROR",
        key::HARDWARE_ERROR => "HARDWARE ERROR",
        key::ILLEGAL_REQUEST => "ILLEGAL REQUEST",
        key::UNIT_ATTENTION => "UNIT ATTENTION",
        key::DATA_PROTECT => "DATA PROTECT",
        key::BLANK_CHECK => "BLANK CHECK",
        key::COPY_ABORTED => "COPY ABORTED",
        key::ABORTED_COMMAND => "ABORTED COMMAND",
        key::MISCOMPARE => "MISCOMPARE",
        _ => "reserved",
    }
}

/// The SAM-5 name of a status code.
pub fn status_name(s: u8) -> &'static str {
    match s {
        status::GOOD => "GOOD",
        status::CHECK_CONDITION => "CHECK CONDITION",
        status::CONDITION_MET => "CONDITION MET",
        status::BUSY => "BUSY",
        status::RESERVATION_CONFLICT => "RESERVATION CONFLICT",
        status::TASK_SET_FULL => "TASK SET FULL",
        status::ACA_ACTIVE => "ACA ACTIVE",
        status::TASK_ABORTED => "TASK ABORTED",
        _ => "unknown status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::sense::{Asc, Sense};

    #[test]
    fn fixed_and_descriptor() {
        let s = Sense::illegal_request(Asc::LBA_OUT_OF_RANGE);
        let fixed = SenseInfo::parse(s.to_fixed()).unwrap();
        let desc = SenseInfo::parse(s.to_descriptor()).unwrap();
        for info in [fixed, desc] {
            assert_eq!(
                (info.key, info.asc, info.ascq),
                (key::ILLEGAL_REQUEST, 0x21, 0)
            );
        }
        assert!(SenseInfo::parse(Bytes::from_static(&[0x12])).is_none());
        assert!(SenseInfo::parse(Bytes::new()).is_none());
    }

    #[test]
    fn response_segment() {
        let data = Bytes::from_static(&[0, 3, 0x70, 0, 6, 9]);
        assert_eq!(sense_of_response(&data).unwrap().as_ref(), &[0x70, 0, 6]);
        assert!(sense_of_response(&Bytes::from_static(&[0, 0])).is_none());
        assert_eq!(
            sense_of_response(&Bytes::from_static(&[0, 9, 0x70]))
                .unwrap()
                .as_ref(),
            &[0x70]
        );
    }
}
