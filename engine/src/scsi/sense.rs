//! Sense data (SPC-5 §4.4): fixed (0x70) and descriptor (0x72) formats,
//! the sense keys and the additional sense codes this target reports.

use bytes::Bytes;

/// Sense keys (SPC-5 §4.4.8, table 51).
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const RECOVERED_ERROR: u8 = 0x1;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const HARDWARE_ERROR: u8 = 0x4;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const BLANK_CHECK: u8 = 0x8;
    pub const COPY_ABORTED: u8 = 0xa;
    pub const ABORTED_COMMAND: u8 = 0xb;
    pub const MISCOMPARE: u8 = 0xe;
}

/// An additional sense code and qualifier (SPC-5 §4.4.9, table 52).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asc(pub u8, pub u8);

impl Asc {
    pub const NO_ADDITIONAL_SENSE: Asc = Asc(0x00, 0x00);
    pub const NOT_READY_CAUSE_NOT_REPORTABLE: Asc = Asc(0x04, 0x00);
    pub const NOT_READY_INITIALIZING_REQUIRED: Asc = Asc(0x04, 0x02);
    pub const NOT_READY_FORMAT_IN_PROGRESS: Asc = Asc(0x04, 0x04);
    pub const NOT_READY_SANITIZE_IN_PROGRESS: Asc = Asc(0x04, 0x1b);
    pub const WRITE_ERROR: Asc = Asc(0x0c, 0x00);
    pub const UNRECOVERED_READ_ERROR: Asc = Asc(0x11, 0x00);
    pub const MISCOMPARE_DURING_VERIFY: Asc = Asc(0x1d, 0x00);
    pub const PARAMETER_LIST_LENGTH_ERROR: Asc = Asc(0x1a, 0x00);
    pub const INVALID_COMMAND_OPERATION_CODE: Asc = Asc(0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: Asc = Asc(0x21, 0x00);
    pub const INVALID_FIELD_IN_CDB: Asc = Asc(0x24, 0x00);
    pub const LOGICAL_UNIT_NOT_SUPPORTED: Asc = Asc(0x25, 0x00);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Asc = Asc(0x26, 0x00);
    pub const PARAMETER_NOT_SUPPORTED: Asc = Asc(0x26, 0x01);
    pub const PARAMETER_VALUE_INVALID: Asc = Asc(0x26, 0x02);
    pub const TOO_MANY_TARGET_DESCRIPTORS: Asc = Asc(0x26, 0x06);
    pub const UNSUPPORTED_TARGET_DESCRIPTOR_TYPE: Asc = Asc(0x26, 0x07);
    pub const TOO_MANY_SEGMENT_DESCRIPTORS: Asc = Asc(0x26, 0x08);
    pub const UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE: Asc = Asc(0x26, 0x09);
    pub const WRITE_PROTECTED: Asc = Asc(0x27, 0x00);
    pub const SPACE_ALLOCATION_FAILED_WRITE_PROTECT: Asc = Asc(0x27, 0x07);
    pub const NOT_READY_TO_READY_CHANGE: Asc = Asc(0x28, 0x00);
    pub const POWER_ON_RESET_OR_BUS_DEVICE_RESET: Asc = Asc(0x29, 0x00);
    pub const POWER_ON_OCCURRED: Asc = Asc(0x29, 0x01);
    pub const SCSI_BUS_RESET_OCCURRED: Asc = Asc(0x29, 0x02);
    pub const BUS_DEVICE_RESET_FUNCTION_OCCURRED: Asc = Asc(0x29, 0x03);
    pub const I_T_NEXUS_LOSS_OCCURRED: Asc = Asc(0x29, 0x07);
    pub const PARAMETERS_CHANGED: Asc = Asc(0x2a, 0x00);
    pub const MODE_PARAMETERS_CHANGED: Asc = Asc(0x2a, 0x01);
    pub const RESERVATIONS_PREEMPTED: Asc = Asc(0x2a, 0x03);
    pub const RESERVATIONS_RELEASED: Asc = Asc(0x2a, 0x04);
    pub const REGISTRATIONS_PREEMPTED: Asc = Asc(0x2a, 0x05);
    pub const CAPACITY_DATA_HAS_CHANGED: Asc = Asc(0x2a, 0x09);
    pub const COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: Asc = Asc(0x2f, 0x00);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Asc = Asc(0x39, 0x00);
    pub const MEDIUM_NOT_PRESENT: Asc = Asc(0x3a, 0x00);
    pub const MEDIUM_NOT_PRESENT_TRAY_CLOSED: Asc = Asc(0x3a, 0x01);
    pub const MEDIUM_NOT_PRESENT_TRAY_OPEN: Asc = Asc(0x3a, 0x02);
    pub const REPORTED_LUNS_DATA_HAS_CHANGED: Asc = Asc(0x3f, 0x0e);
    pub const INTERNAL_TARGET_FAILURE: Asc = Asc(0x44, 0x00);
    pub const MEDIUM_REMOVAL_PREVENTED: Asc = Asc(0x53, 0x02);
    pub const INSUFFICIENT_REGISTRATION_RESOURCES: Asc = Asc(0x55, 0x04);
    pub const SANITIZE_COMMAND_FAILED: Asc = Asc(0x31, 0x03);
    pub const COPY_TARGET_DEVICE_NOT_REACHABLE: Asc = Asc(0x0d, 0x02);
}

/// Where the sense-key-specific field pointer points (SPC-5 §4.4.2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPointer {
    /// C/D: the error is in the CDB (true) or the parameter list (false).
    pub in_cdb: bool,
    pub byte: u16,
    /// The bit within the byte, when known.
    pub bit: Option<u8>,
}

/// One sense condition, formatted on demand in either format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: Asc,
    /// The INFORMATION field (for example the first LBA that miscompared).
    pub information: Option<u64>,
    pub field_pointer: Option<FieldPointer>,
    /// Progress indication (sense-key-specific) for NOT READY conditions.
    pub progress: Option<u16>,
}

impl Sense {
    pub fn new(key: u8, asc: Asc) -> Sense {
        Sense {
            key,
            asc,
            information: None,
            field_pointer: None,
            progress: None,
        }
    }

    pub fn illegal_request(asc: Asc) -> Sense {
        Sense::new(key::ILLEGAL_REQUEST, asc)
    }

    pub fn with_information(mut self, information: u64) -> Sense {
        self.information = Some(information);
        self
    }

    pub fn with_field_pointer(mut self, in_cdb: bool, byte: u16, bit: Option<u8>) -> Sense {
        self.field_pointer = Some(FieldPointer { in_cdb, byte, bit });
        self
    }

    fn sense_key_specific(&self) -> Option<[u8; 3]> {
        if let Some(fp) = self.field_pointer {
            let mut b0 = 0x80;
            if fp.in_cdb {
                b0 |= 0x40;
            }
            if let Some(bit) = fp.bit {
                b0 |= 0x08 | (bit & 7);
            }
            let [hi, lo] = fp.byte.to_be_bytes();
            return Some([b0, hi, lo]);
        }
        self.progress.map(|p| {
            let [hi, lo] = p.to_be_bytes();
            [0x80, hi, lo]
        })
    }

    /// Fixed format sense data (response code 0x70), 18 bytes.
    pub fn to_fixed(&self) -> Bytes {
        let mut b = [0u8; 18];
        b[0] = 0x70;
        b[2] = self.key & 0x0f;
        if let Some(info) = self.information {
            // The fixed format's INFORMATION field holds 32 bits.
            if info <= u32::MAX as u64 {
                b[0] |= 0x80;
            }
            b[3..7].copy_from_slice(&(info as u32).to_be_bytes());
        }
        b[7] = 10;
        b[12] = self.asc.0;
        b[13] = self.asc.1;
        if let Some(sks) = self.sense_key_specific() {
            b[15..18].copy_from_slice(&sks);
        }
        Bytes::copy_from_slice(&b)
    }

    /// Descriptor format sense data (response code 0x72) with information
    /// and sense-key-specific descriptors when they apply.
    pub fn to_descriptor(&self) -> Bytes {
        let mut b = Vec::with_capacity(8 + 12 + 8);
        b.extend_from_slice(&[0x72, self.key & 0x0f, self.asc.0, self.asc.1, 0, 0, 0, 0]);
        if let Some(info) = self.information {
            b.extend_from_slice(&[0x00, 0x0a, 0x80, 0x00]);
            b.extend_from_slice(&info.to_be_bytes());
        }
        if let Some(sks) = self.sense_key_specific() {
            b.extend_from_slice(&[0x02, 0x06, 0x00, 0x00]);
            b.extend_from_slice(&sks);
            b.push(0);
        }
        b[7] = (b.len() - 8) as u8;
        Bytes::from(b)
    }

    /// Sense data in the format the control mode page's D_SENSE selects.
    pub fn encode(&self, descriptor_format: bool) -> Bytes {
        if descriptor_format {
            self.to_descriptor()
        } else {
            self.to_fixed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format_layout() {
        let s = Sense::illegal_request(Asc::LBA_OUT_OF_RANGE).with_information(7);
        let b = s.to_fixed();
        assert_eq!(b.len(), 18);
        assert_eq!(b[0], 0xf0);
        assert_eq!(b[2], key::ILLEGAL_REQUEST);
        assert_eq!(&b[3..7], &[0, 0, 0, 7]);
        assert_eq!((b[12], b[13]), (0x21, 0x00));
    }

    #[test]
    fn descriptor_format_layout() {
        let s = Sense::new(key::MISCOMPARE, Asc::MISCOMPARE_DURING_VERIFY)
            .with_information(3)
            .with_field_pointer(true, 2, Some(1));
        let b = s.to_descriptor();
        assert_eq!(b[0], 0x72);
        assert_eq!(b[1], key::MISCOMPARE);
        assert_eq!((b[2], b[3]), (0x1d, 0x00));
        assert_eq!(b[7] as usize, b.len() - 8);
        assert_eq!(&b[8..12], &[0x00, 0x0a, 0x80, 0x00]);
        assert_eq!(b[19], 3);
        assert_eq!(&b[20..24], &[0x02, 0x06, 0, 0]);
        assert_eq!(b[24], 0x80 | 0x40 | 0x08 | 1);
    }
}
