//! The iSCSI PDU wire format (RFC 7143 §11): the 48-byte Basic Header
//! Segment, Additional Header Segments, the data segment with its padding,
//! and the optional CRC32C header and data digests (§13.1, RFC 3385).
//!
//! Decoding is incremental and never panics: [`Decoder::decode`] tells
//! "need more bytes" (`Ok(None)`) apart from invalid input (`Err`), and it
//! refuses a data segment longer than the negotiated
//! MaxRecvDataSegmentLength before buffering any of it. Data segments are
//! zero-copy [`Bytes`] slices of the receive buffer.

mod codec;
mod digest;
#[cfg(test)]
mod tests;
mod types;

pub use codec::{
    BHS_LEN, DIGEST_LEN, DecodeError, Decoder, Digests, Encoder, MAX_DATA_SEGMENT_LENGTH,
    MAX_TOTAL_AHS_LEN, Trailer,
};
pub use digest::crc32c;
pub use types::*;

use bytes::Bytes;

/// One iSCSI PDU: a typed header and its data segment (without padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub header: Header,
    pub data: Bytes,
}

impl Pdu {
    pub fn new(header: Header, data: Bytes) -> Pdu {
        Pdu { header, data }
    }

    /// A PDU without a data segment.
    pub fn bare(header: Header) -> Pdu {
        Pdu {
            header,
            data: Bytes::new(),
        }
    }

    pub fn opcode(&self) -> Opcode {
        self.header.opcode()
    }
}
