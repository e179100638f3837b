//! Reading CDB and parameter-list fields, with errors that carry the
//! sense-key-specific field pointer.

use super::sense::{Asc, Sense};

/// A CDB with bounds-checked big-endian field accessors. Reading past the
/// end yields zero (a short CDB is caught by the length check in dispatch).
#[derive(Debug, Clone, Copy)]
pub struct Cdb<'a>(pub &'a [u8]);

impl<'a> Cdb<'a> {
    pub fn opcode(&self) -> u8 {
        self.u8(0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }

    pub fn bit(&self, at: usize, bit: u8) -> bool {
        self.u8(at) & (1 << bit) != 0
    }

    pub fn be16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.u8(at), self.u8(at + 1)])
    }

    pub fn be24(&self, at: usize) -> u32 {
        u32::from_be_bytes([0, self.u8(at), self.u8(at + 1), self.u8(at + 2)])
    }

    pub fn be32(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.u8(at),
            self.u8(at + 1),
            self.u8(at + 2),
            self.u8(at + 3),
        ])
    }

    pub fn be64(&self, at: usize) -> u64 {
        (self.be32(at) as u64) << 32 | self.be32(at + 4) as u64
    }

    /// The service action (low five bits of byte 1) of 0x9E/0xA3/0x5E/...
    pub fn service_action(&self) -> u8 {
        self.u8(1) & 0x1f
    }

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit`, if known).
    pub fn invalid_field(byte: u16, bit: Option<u8>) -> Sense {
        Sense::illegal_request(Asc::INVALID_FIELD_IN_CDB).with_field_pointer(true, byte, bit)
    }
}

/// INVALID FIELD IN PARAMETER LIST pointing at `byte` of the Data-Out.
pub fn invalid_parameter(byte: u16, bit: Option<u8>) -> Sense {
    Sense::illegal_request(Asc::INVALID_FIELD_IN_PARAMETER_LIST)
        .with_field_pointer(false, byte, bit)
}

/// Big-endian helpers for building Data-In.
pub fn put_be16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub fn put_be32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

pub fn put_be64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_be_bytes());
}
