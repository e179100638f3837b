//! Encoding and incremental decoding of PDUs (RFC 7143 §11.1-§11.2).

use bytes::{Bytes, BytesMut};

use super::{Header, Pdu};

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// Which CRC32C digests a connection uses (HeaderDigest / DataDigest keys,
/// RFC 7143 §13.1). They apply from the first PDU after login completes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digests {
    pub header: bool,
    pub data: bool,
}

/// Why bytes could not be decoded as a PDU. Every variant but
/// `HeaderDigest` and `DataSegmentTooLong` means the whole PDU was consumed
/// from the buffer, so the connection can answer with a Reject and go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header digest does not match: framing is lost and the
    /// connection must be closed (§7.8).
    #[error("header digest mismatch: expected {expected:#010x}, got {actual:#010x}")]
    HeaderDigest { expected: u32, actual: u32 },
    /// The data digest does not match. The PDU was consumed; its header is
    /// given so that the session can Reject it (reason 0x02) and recover.
    #[error("data digest mismatch on {}: expected {expected:#010x}, got {actual:#010x}", header.opcode().name())]
    DataDigest {
        header: Box<Header>,
        bhs: Box<[u8; BHS_LEN]>,
        expected: u32,
        actual: u32,
    },
    /// DataSegmentLength exceeds MaxRecvDataSegmentLength. Nothing beyond
    /// the BHS was buffered; the connection must Reject and close.
    #[error("data segment of {length} bytes exceeds MaxRecvDataSegmentLength {max}")]
    DataSegmentTooLong {
        bhs: Box<[u8; BHS_LEN]>,
        length: u32,
        max: u32,
    },
    /// An opcode RFC 7143 does not define (vendor-specific ones included).
    /// The PDU was consumed; answer with Reject "command not supported".
    #[error("unknown opcode {opcode:#04x}")]
    UnknownOpcode { opcode: u8, bhs: Box<[u8; BHS_LEN]> },
    /// A header field holds a value RFC 7143 forbids. The PDU was
    /// consumed; answer with Reject "invalid PDU field".
    #[error("invalid PDU field: {what}")]
    InvalidField {
        what: &'static str,
        bhs: Box<[u8; BHS_LEN]>,
    },
}

impl DecodeError {
    /// Whether the connection can go on after this error (the PDU was
    /// consumed whole and framing is intact).
    pub fn is_recoverable(&self) -> bool {
        !matches!(
            self,
            DecodeError::HeaderDigest { .. } | DecodeError::DataSegmentTooLong { .. }
        )
    }

    /// The raw BHS of the offending PDU, for the Reject's data segment.
    pub fn bhs(&self) -> Option<&[u8; BHS_LEN]> {
        match self {
            DecodeError::HeaderDigest { .. } => None,
            DecodeError::DataDigest { bhs, .. }
            | DecodeError::DataSegmentTooLong { bhs, .. }
            | DecodeError::UnknownOpcode { bhs, .. }
            | DecodeError::InvalidField { bhs, .. } => Some(bhs),
        }
    }
}

/// Decodes PDUs from the bytes of one connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub digests: Digests,
    /// Our declared MaxRecvDataSegmentLength (8192 during login, §13.12).
    pub max_recv_data_segment_length: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            digests: Digests::default(),
            max_recv_data_segment_length: 8192,
        }
    }
}

impl Decoder {
    /// Takes one PDU off the front of `buf`. `Ok(None)`: not enough bytes
    /// yet (nothing consumed). Never panics, never reserves more than the
    /// PDU's own bounded length.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Pdu>, DecodeError> {
        let _ = buf;
        todo!("pdu codec")
    }
}

/// Encodes PDUs for one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Encoder {
    pub digests: Digests,
}

/// Padding and data digest that follow a data segment on the wire.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trailer {
    buf: [u8; 7],
    len: u8,
}

impl AsRef<[u8]> for Trailer {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl Encoder {
    /// Appends the whole PDU to `dst`: BHS, AHS, header digest, data
    /// segment, padding and data digest.
    pub fn encode(&self, pdu: &Pdu, dst: &mut BytesMut) {
        self.encode_header(pdu, dst);
        dst.extend_from_slice(&pdu.data);
        dst.extend_from_slice(self.trailer(&pdu.data).as_ref());
    }

    /// Appends BHS, AHS and header digest only; the caller writes
    /// `pdu.data` and then [`Encoder::trailer`] itself (zero-copy sends).
    pub fn encode_header(&self, pdu: &Pdu, dst: &mut BytesMut) {
        let _ = (pdu, dst);
        todo!("pdu codec")
    }

    /// The padding to a 4-byte boundary and the data digest, if any, that
    /// follow `data`. Empty for an empty data segment.
    pub fn trailer(&self, data: &Bytes) -> Trailer {
        let _ = data;
        todo!("pdu codec")
    }
}

impl Header {
    /// The 48-byte BHS of this header (AHS not included), as a Reject
    /// quotes it.
    pub fn to_bhs(&self, data_segment_length: u32) -> [u8; BHS_LEN] {
        let _ = data_segment_length;
        todo!("pdu codec")
    }
}
