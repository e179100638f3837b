//! Encoding and incremental decoding of PDUs (RFC 7143 §11.1-§11.2).
//!
//! Byte offsets below are the "Byte" rows of the RFC's PDU diagrams; bit 0
//! of a byte in the RFC is its most significant bit.

use bytes::{BufMut, BytesMut};

use super::Pdu;
use super::digest::{crc32c, crc32c_append, from_wire, to_wire};
use super::types::*;

/// Length of the Basic Header Segment (§11.2.1).
pub const BHS_LEN: usize = 48;
/// Length of a header or data digest (§11.1).
pub const DIGEST_LEN: usize = 4;
/// TotalAHSLength is one byte counting 4-byte words (§11.2.1.2).
pub const MAX_TOTAL_AHS_LEN: usize = 255 * 4;
/// DataSegmentLength is a 3-byte field (§11.2.1.3).
pub const MAX_DATA_SEGMENT_LENGTH: u32 = 0x00ff_ffff;

/// Byte 0: the I (immediate delivery) bit (§11.2.1.1).
const I_BIT: u8 = 0x40;
/// Byte 0: the opcode (§11.2.1.1).
const OPCODE_MASK: u8 = 0x3f;
/// Byte 1: the F (final) bit; always 1 on opcodes without a real F bit.
const F_BIT: u8 = 0x80;

/// AHSType codes (§11.2.2.2).
const AHS_EXTENDED_CDB: u8 = 1;
const AHS_BIDI_READ_LENGTH: u8 = 2;
/// AHSLength of the Expected Bidirectional Read-Data Length AHS (§11.2.2.4).
const AHS_BIDI_READ_LENGTH_LEN: u16 = 5;

/// `n` rounded up to a whole number of 4-byte words (§11.1).
fn padded(n: usize) -> usize {
    n.next_multiple_of(4)
}

/// The number of padding bytes after `n` bytes of a segment (§11.1).
fn pad_len(n: usize) -> usize {
    padded(n) - n
}

fn be16(b: &[u8; BHS_LEN], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8; BHS_LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8; BHS_LEN], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

fn put16(b: &mut [u8; BHS_LEN], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8; BHS_LEN], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(b: &mut [u8; BHS_LEN], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn flag(b: &[u8; BHS_LEN], at: usize, mask: u8) -> bool {
    b[at] & mask != 0
}

fn bit(on: bool, mask: u8) -> u8 {
    if on { mask } else { 0 }
}

/// DataSegmentLength, bytes 5-7 of the BHS (§11.2.1.3).
fn data_segment_length(b: &[u8; BHS_LEN]) -> u32 {
    u32::from_be_bytes([0, b[5], b[6], b[7]])
}

/// Which CRC32C digests a connection uses (HeaderDigest / DataDigest keys,
/// RFC 7143 §13.1). They apply from the first PDU after login completes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digests {
    pub header: bool,
    pub data: bool,
}

/// Why bytes could not be decoded as a PDU. Every variant but
/// `HeaderDigest` and `DataSegmentTooLong` means the whole PDU was consumed
/// from the buffer, so the connection can answer with a Reject and go on;
/// after those two nothing was consumed and the connection must close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header digest does not match: framing is lost and the
    /// connection must be closed (§7.8). `expected` is the digest the PDU
    /// carries, `actual` the one computed over its BHS and AHS.
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
    /// Takes one PDU off the front of `buf` (§11.1). `Ok(None)`: not enough
    /// bytes yet (nothing consumed). Never panics, never reserves: the
    /// caller owns the buffer's growth, and a data segment longer than
    /// MaxRecvDataSegmentLength is refused as soon as the BHS is in.
    ///
    /// The checks run in wire order, so that the outcome does not depend on
    /// how the bytes were split into reads: DataSegmentLength (on the BHS
    /// alone), the header digest (once BHS, AHS and digest are in), then,
    /// with the whole PDU in, the opcode, the header fields, the data
    /// digest. The returned `data` is split off `buf` without a copy.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Pdu>, DecodeError> {
        let Some(bhs) = buf.first_chunk::<BHS_LEN>() else {
            return Ok(None);
        };
        let bhs: [u8; BHS_LEN] = *bhs;

        let dsl = data_segment_length(&bhs);
        if dsl > self.max_recv_data_segment_length {
            return Err(DecodeError::DataSegmentTooLong {
                bhs: Box::new(bhs),
                length: dsl,
                max: self.max_recv_data_segment_length,
            });
        }

        let ahs_len = usize::from(bhs[4]) * 4;
        let covered = BHS_LEN + ahs_len;
        let header_len = covered + if self.digests.header { DIGEST_LEN } else { 0 };
        if self.digests.header {
            if let Some(wire) = buf.get(covered..header_len) {
                let expected = from_wire([wire[0], wire[1], wire[2], wire[3]]);
                let actual = crc32c(&buf[..covered]);
                if expected != actual {
                    return Err(DecodeError::HeaderDigest { expected, actual });
                }
            }
        }

        // `dsl` is bounded by the 24-bit field and by the negotiated max.
        let data_len = dsl as usize;
        let data_digest = self.digests.data && data_len > 0;
        let total = header_len + padded(data_len) + if data_digest { DIGEST_LEN } else { 0 };
        if buf.len() < total {
            return Ok(None);
        }

        let mut frame = buf.split_to(total);
        let header_bytes = frame.split_to(header_len);
        let data = frame.split_to(data_len).freeze();
        // `frame` now holds the padding and the data digest, if any.
        debug_assert_eq!(frame.len(), total - header_len - data_len);

        let opcode = bhs[0] & OPCODE_MASK;
        let Some(opcode) = Opcode::from_u8(opcode) else {
            return Err(DecodeError::UnknownOpcode {
                opcode,
                bhs: Box::new(bhs),
            });
        };
        let header = match parse(opcode, &bhs, &header_bytes[BHS_LEN..covered]) {
            Ok(header) => header,
            Err(what) => {
                return Err(DecodeError::InvalidField {
                    what,
                    bhs: Box::new(bhs),
                });
            }
        };

        if data_digest {
            let pad = pad_len(data_len);
            let wire = &frame[pad..];
            let expected = from_wire([wire[0], wire[1], wire[2], wire[3]]);
            let actual = crc32c_append(crc32c(&data), &frame[..pad]);
            if expected != actual {
                return Err(DecodeError::DataDigest {
                    header: Box::new(header),
                    bhs: Box::new(bhs),
                    expected,
                    actual,
                });
            }
        }

        debug_assert!(data.len() <= self.max_recv_data_segment_length as usize);
        Ok(Some(Pdu { header, data }))
    }
}

/// Encodes PDUs for one connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Encoder {
    pub digests: Digests,
}

/// Padding and data digest that follow a data segment on the wire (§11.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Trailer {
    buf: [u8; 7],
    len: u8,
}

impl AsRef<[u8]> for Trailer {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl Encoder {
    /// Appends the whole PDU to `dst`: BHS, AHS, header digest, data
    /// segment, padding and data digest (§11.1).
    ///
    /// # Panics
    /// As [`Encoder::encode_header`].
    pub fn encode(&self, pdu: &Pdu, dst: &mut BytesMut) {
        let trailer = self.trailer(&pdu.data);
        dst.reserve(self.header_len(&pdu.header) + pdu.data.len() + trailer.as_ref().len());
        self.encode_header(pdu, dst);
        dst.extend_from_slice(&pdu.data);
        dst.extend_from_slice(trailer.as_ref());
    }

    /// Appends BHS, AHS and header digest only; the caller writes
    /// `pdu.data` and then [`Encoder::trailer`] itself (zero-copy sends).
    /// Writes straight into `dst`: no allocation beyond its growth.
    ///
    /// # Panics
    /// If `pdu.data` is longer than the 24-bit DataSegmentLength allows, or
    /// a SCSI Command's AHS exceed TotalAHSLength's 1020 bytes (an
    /// extended CDB of more than 1016 bytes, 1008 with a bidirectional
    /// read length). Both are caller bugs: every decoded PDU fits.
    pub fn encode_header(&self, pdu: &Pdu, dst: &mut BytesMut) {
        let dsl = u32::try_from(pdu.data.len())
            .ok()
            .filter(|&n| n <= MAX_DATA_SEGMENT_LENGTH);
        let Some(dsl) = dsl else {
            panic!(
                "data segment of {} bytes does not fit DataSegmentLength",
                pdu.data.len()
            );
        };
        let ahs_len = pdu.header.ahs_len();
        assert!(
            ahs_len <= MAX_TOTAL_AHS_LEN,
            "AHS of {ahs_len} bytes exceed TotalAHSLength"
        );

        dst.reserve(self.header_len(&pdu.header));
        let start = dst.len();
        dst.extend_from_slice(&pdu.header.to_bhs(dsl));
        pdu.header.put_ahs(dst);
        debug_assert_eq!(dst.len() - start, BHS_LEN + ahs_len);
        if self.digests.header {
            let digest = crc32c(&dst[start..]);
            dst.extend_from_slice(&to_wire(digest));
        }
    }

    /// The padding to a 4-byte boundary and the data digest, if any, that
    /// follow `data` (§11.1, §13.1). Empty for an empty data segment.
    pub fn trailer(&self, data: &[u8]) -> Trailer {
        const ZEROS: [u8; 3] = [0; 3];
        let pad = pad_len(data.len());
        let mut trailer = Trailer {
            buf: [0; 7],
            len: pad as u8,
        };
        if self.digests.data && !data.is_empty() {
            let digest = crc32c_append(crc32c(data), &ZEROS[..pad]);
            trailer.buf[pad..pad + DIGEST_LEN].copy_from_slice(&to_wire(digest));
            trailer.len += DIGEST_LEN as u8;
        }
        trailer
    }

    /// Bytes [`Encoder::encode_header`] writes for `header`.
    pub fn header_len(&self, header: &Header) -> usize {
        BHS_LEN + header.ahs_len() + if self.digests.header { DIGEST_LEN } else { 0 }
    }
}

impl Header {
    /// The 48-byte BHS of this header (§11.2.1), AHS not included, as a
    /// Reject quotes it (§11.17). TotalAHSLength counts this header's AHS;
    /// reserved fields are zero.
    pub fn to_bhs(&self, data_segment_length: u32) -> [u8; BHS_LEN] {
        debug_assert!(data_segment_length <= MAX_DATA_SEGMENT_LENGTH);
        let ahs_len = self.ahs_len();
        debug_assert!(ahs_len <= MAX_TOTAL_AHS_LEN && ahs_len % 4 == 0);

        let mut b = [0u8; BHS_LEN];
        b[0] = self.opcode() as u8;
        let b = &mut b;
        match self {
            // §11.18
            Header::NopOut(h) => {
                b[0] |= bit(h.immediate, I_BIT);
                b[1] = F_BIT;
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
            }
            // §11.3
            Header::ScsiCommand(h) => {
                b[0] |= bit(h.immediate, I_BIT);
                b[1] = bit(h.final_, F_BIT)
                    | bit(h.read, 0x40)
                    | bit(h.write, 0x20)
                    | (h.attr as u8 & 0x07);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.expected_data_transfer_length);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
                b[32..48].copy_from_slice(&h.cdb.base);
            }
            // §11.5
            Header::TaskMgmtRequest(h) => {
                debug_assert!(h.function < 0x80, "TMF function is 7 bits");
                b[0] |= bit(h.immediate, I_BIT);
                b[1] = F_BIT | (h.function & 0x7f);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.referenced_task_tag);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
                put32(b, 32, h.ref_cmd_sn);
                put32(b, 36, h.exp_data_sn);
            }
            // §11.12: the I bit is always 1.
            Header::LoginRequest(h) => {
                b[0] |= I_BIT;
                b[1] = login_flags(h.transit, h.continue_, h.csg, h.nsg);
                b[2] = h.version_max;
                b[3] = h.version_min;
                b[8..14].copy_from_slice(&h.isid.0);
                put16(b, 14, h.tsih);
                put32(b, 16, h.itt);
                put16(b, 20, h.cid);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
            }
            // §11.10
            Header::TextRequest(h) => {
                b[0] |= bit(h.immediate, I_BIT);
                b[1] = bit(h.final_, F_BIT) | bit(h.continue_, 0x40);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
            }
            // §11.7
            Header::DataOut(h) => {
                b[1] = bit(h.final_, F_BIT);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 28, h.exp_stat_sn);
                put32(b, 36, h.data_sn);
                put32(b, 40, h.buffer_offset);
            }
            // §11.14
            Header::LogoutRequest(h) => {
                debug_assert!(h.reason < 0x80, "logout reason is 7 bits");
                b[0] |= bit(h.immediate, I_BIT);
                b[1] = F_BIT | (h.reason & 0x7f);
                put32(b, 16, h.itt);
                put16(b, 20, h.cid);
                put32(b, 24, h.cmd_sn);
                put32(b, 28, h.exp_stat_sn);
            }
            // §11.16
            Header::SnackRequest(h) => {
                debug_assert!(h.snack_type < 0x10, "SNACK type is 4 bits");
                b[1] = F_BIT | (h.snack_type & 0x0f);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 28, h.exp_stat_sn);
                put32(b, 40, h.beg_run);
                put32(b, 44, h.run_length);
            }
            // §11.19
            Header::NopIn(h) => {
                b[1] = F_BIT;
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
            }
            // §11.4
            Header::ScsiResponse(h) => {
                b[1] = F_BIT
                    | bit(h.bidi_overflow, 0x10)
                    | bit(h.bidi_underflow, 0x08)
                    | bit(h.overflow, 0x04)
                    | bit(h.underflow, 0x02);
                b[2] = h.response;
                b[3] = h.status;
                put32(b, 16, h.itt);
                put32(b, 20, h.snack_tag);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                put32(b, 36, h.exp_data_sn);
                put32(b, 40, h.bidi_read_residual_count);
                put32(b, 44, h.residual_count);
            }
            // §11.6
            Header::TaskMgmtResponse(h) => {
                b[1] = F_BIT;
                b[2] = h.response;
                put32(b, 16, h.itt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
            }
            // §11.13
            Header::LoginResponse(h) => {
                b[1] = login_flags(h.transit, h.continue_, h.csg, h.nsg);
                b[2] = h.version_max;
                b[3] = h.version_active;
                b[8..14].copy_from_slice(&h.isid.0);
                put16(b, 14, h.tsih);
                put32(b, 16, h.itt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                b[36] = h.status_class;
                b[37] = h.status_detail;
            }
            // §11.11
            Header::TextResponse(h) => {
                b[1] = bit(h.final_, F_BIT) | bit(h.continue_, 0x40);
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
            }
            // §11.7
            Header::DataIn(h) => {
                b[1] = bit(h.final_, F_BIT)
                    | bit(h.ack, 0x40)
                    | bit(h.overflow, 0x04)
                    | bit(h.underflow, 0x02)
                    | bit(h.status_present, 0x01);
                b[3] = h.status;
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                put32(b, 36, h.data_sn);
                put32(b, 40, h.buffer_offset);
                put32(b, 44, h.residual_count);
            }
            // §11.15
            Header::LogoutResponse(h) => {
                b[1] = F_BIT;
                b[2] = h.response;
                put32(b, 16, h.itt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                put16(b, 40, h.time2wait);
                put16(b, 42, h.time2retain);
            }
            // §11.8
            Header::R2t(h) => {
                b[1] = F_BIT;
                put64(b, 8, h.lun.0);
                put32(b, 16, h.itt);
                put32(b, 20, h.ttt);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                put32(b, 36, h.r2t_sn);
                put32(b, 40, h.buffer_offset);
                put32(b, 44, h.desired_data_transfer_length);
            }
            // §11.9: the ITT field is 0xffffffff.
            Header::AsyncMessage(h) => {
                b[1] = F_BIT;
                put64(b, 8, h.lun.0);
                put32(b, 16, RESERVED_TAG);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                b[36] = h.async_event;
                b[37] = h.async_vcode;
                put16(b, 38, h.parameter1);
                put16(b, 40, h.parameter2);
                put16(b, 42, h.parameter3);
            }
            // §11.17: the ITT field is 0xffffffff.
            Header::Reject(h) => {
                b[1] = F_BIT;
                b[2] = h.reason;
                put32(b, 16, RESERVED_TAG);
                put32(b, 24, h.stat_sn);
                put32(b, 28, h.exp_cmd_sn);
                put32(b, 32, h.max_cmd_sn);
                put32(b, 36, h.data_sn_r2t_sn);
            }
        }
        b[4] = (ahs_len / 4) as u8;
        b[5..8].copy_from_slice(&data_segment_length.to_be_bytes()[1..]);
        *b
    }

    /// Bytes of AHS this header carries, padding included (§11.2.2).
    pub fn ahs_len(&self) -> usize {
        match self {
            Header::ScsiCommand(h) => {
                extended_cdb_ahs_len(h.cdb.extended.len())
                    + if h.bidi_read_length.is_some() { 8 } else { 0 }
            }
            _ => 0,
        }
    }

    /// Appends this header's AHS to `dst` (§11.2.2): the Extended CDB AHS
    /// (§11.2.2.3), then the Expected Bidirectional Read-Data Length AHS
    /// (§11.2.2.4).
    fn put_ahs(&self, dst: &mut BytesMut) {
        let Header::ScsiCommand(h) = self else {
            return;
        };
        let ext = &h.cdb.extended;
        if !ext.is_empty() {
            // AHSLength = CDBLength - 15: the extension plus reserved byte 3.
            dst.put_u16(ext.len() as u16 + 1);
            dst.put_u8(AHS_EXTENDED_CDB);
            dst.put_u8(0);
            dst.extend_from_slice(ext);
            dst.put_bytes(0, pad_len(ext.len()));
        }
        if let Some(len) = h.bidi_read_length {
            dst.put_u16(AHS_BIDI_READ_LENGTH_LEN);
            dst.put_u8(AHS_BIDI_READ_LENGTH);
            dst.put_u8(0);
            dst.put_u32(len);
        }
    }
}

/// Bytes of an Extended CDB AHS for `n` CDB bytes past the first 16.
fn extended_cdb_ahs_len(n: usize) -> usize {
    if n == 0 { 0 } else { padded(4 + n) }
}

/// Byte 1 of Login Request and Response: T, C, CSG, NSG (§11.12.1-4).
fn login_flags(transit: bool, continue_: bool, csg: Stage, nsg: Stage) -> u8 {
    bit(transit, 0x80) | bit(continue_, 0x40) | ((csg as u8) << 2) | nsg as u8
}

/// The typed header of a PDU with a known opcode, from its BHS and AHS.
/// Reserved fields are ignored; so are the F bit where it is always 1 and
/// the I bit where it is reserved (§11.2.1.1).
fn parse(opcode: Opcode, b: &[u8; BHS_LEN], ahs: &[u8]) -> Result<Header, &'static str> {
    if opcode != Opcode::ScsiCommand && !ahs.is_empty() {
        return Err("AHS on a PDU other than SCSI Command");
    }
    let immediate = flag(b, 0, I_BIT);
    let final_ = flag(b, 1, F_BIT);
    let lun = Lun(be64(b, 8));
    let itt = be32(b, 16);
    Ok(match opcode {
        Opcode::NopOut => Header::NopOut(NopOut {
            immediate,
            lun,
            itt,
            ttt: be32(b, 20),
            cmd_sn: be32(b, 24),
            exp_stat_sn: be32(b, 28),
        }),
        Opcode::ScsiCommand => {
            let mut cmd = ScsiCommand {
                immediate,
                final_,
                read: flag(b, 1, 0x40),
                write: flag(b, 1, 0x20),
                attr: TaskAttr::from_bits(b[1]),
                lun,
                itt,
                expected_data_transfer_length: be32(b, 20),
                cmd_sn: be32(b, 24),
                exp_stat_sn: be32(b, 28),
                cdb: Cdb {
                    base: [0; 16],
                    extended: Vec::new(),
                },
                bidi_read_length: None,
            };
            cmd.cdb.base.copy_from_slice(&b[32..48]);
            parse_scsi_command_ahs(ahs, &mut cmd)?;
            Header::ScsiCommand(cmd)
        }
        Opcode::TaskMgmtRequest => Header::TaskMgmtRequest(TaskMgmtRequest {
            immediate,
            function: b[1] & 0x7f,
            lun,
            itt,
            referenced_task_tag: be32(b, 20),
            cmd_sn: be32(b, 24),
            exp_stat_sn: be32(b, 28),
            ref_cmd_sn: be32(b, 32),
            exp_data_sn: be32(b, 36),
        }),
        Opcode::LoginRequest => Header::LoginRequest(LoginRequest {
            transit: flag(b, 1, 0x80),
            continue_: flag(b, 1, 0x40),
            csg: Stage::from_bits(b[1] >> 2),
            nsg: Stage::from_bits(b[1]),
            version_max: b[2],
            version_min: b[3],
            isid: isid(b),
            tsih: be16(b, 14),
            itt,
            cid: be16(b, 20),
            cmd_sn: be32(b, 24),
            exp_stat_sn: be32(b, 28),
        }),
        Opcode::TextRequest => Header::TextRequest(TextRequest {
            immediate,
            final_,
            continue_: flag(b, 1, 0x40),
            lun,
            itt,
            ttt: be32(b, 20),
            cmd_sn: be32(b, 24),
            exp_stat_sn: be32(b, 28),
        }),
        Opcode::DataOut => Header::DataOut(DataOut {
            final_,
            lun,
            itt,
            ttt: be32(b, 20),
            exp_stat_sn: be32(b, 28),
            data_sn: be32(b, 36),
            buffer_offset: be32(b, 40),
        }),
        Opcode::LogoutRequest => Header::LogoutRequest(LogoutRequest {
            immediate,
            reason: b[1] & 0x7f,
            itt,
            cid: be16(b, 20),
            cmd_sn: be32(b, 24),
            exp_stat_sn: be32(b, 28),
        }),
        Opcode::SnackRequest => Header::SnackRequest(SnackRequest {
            snack_type: b[1] & 0x0f,
            lun,
            itt,
            ttt: be32(b, 20),
            exp_stat_sn: be32(b, 28),
            beg_run: be32(b, 40),
            run_length: be32(b, 44),
        }),
        Opcode::NopIn => Header::NopIn(NopIn {
            lun,
            itt,
            ttt: be32(b, 20),
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
        }),
        Opcode::ScsiResponse => Header::ScsiResponse(ScsiResponse {
            bidi_overflow: flag(b, 1, 0x10),
            bidi_underflow: flag(b, 1, 0x08),
            overflow: flag(b, 1, 0x04),
            underflow: flag(b, 1, 0x02),
            response: b[2],
            status: b[3],
            itt,
            snack_tag: be32(b, 20),
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            exp_data_sn: be32(b, 36),
            bidi_read_residual_count: be32(b, 40),
            residual_count: be32(b, 44),
        }),
        Opcode::TaskMgmtResponse => Header::TaskMgmtResponse(TaskMgmtResponse {
            response: b[2],
            itt,
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
        }),
        Opcode::LoginResponse => Header::LoginResponse(LoginResponse {
            transit: flag(b, 1, 0x80),
            continue_: flag(b, 1, 0x40),
            csg: Stage::from_bits(b[1] >> 2),
            nsg: Stage::from_bits(b[1]),
            version_max: b[2],
            version_active: b[3],
            isid: isid(b),
            tsih: be16(b, 14),
            itt,
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            status_class: b[36],
            status_detail: b[37],
        }),
        Opcode::TextResponse => Header::TextResponse(TextResponse {
            final_,
            continue_: flag(b, 1, 0x40),
            lun,
            itt,
            ttt: be32(b, 20),
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
        }),
        Opcode::DataIn => Header::DataIn(DataIn {
            final_,
            ack: flag(b, 1, 0x40),
            overflow: flag(b, 1, 0x04),
            underflow: flag(b, 1, 0x02),
            status_present: flag(b, 1, 0x01),
            status: b[3],
            lun,
            itt,
            ttt: be32(b, 20),
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            data_sn: be32(b, 36),
            buffer_offset: be32(b, 40),
            residual_count: be32(b, 44),
        }),
        Opcode::LogoutResponse => Header::LogoutResponse(LogoutResponse {
            response: b[2],
            itt,
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            time2wait: be16(b, 40),
            time2retain: be16(b, 42),
        }),
        Opcode::R2t => Header::R2t(R2t {
            lun,
            itt,
            ttt: be32(b, 20),
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            r2t_sn: be32(b, 36),
            buffer_offset: be32(b, 40),
            desired_data_transfer_length: be32(b, 44),
        }),
        Opcode::AsyncMessage => Header::AsyncMessage(AsyncMessage {
            lun,
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            async_event: b[36],
            async_vcode: b[37],
            parameter1: be16(b, 38),
            parameter2: be16(b, 40),
            parameter3: be16(b, 42),
        }),
        Opcode::Reject => Header::Reject(Reject {
            reason: b[2],
            stat_sn: be32(b, 24),
            exp_cmd_sn: be32(b, 28),
            max_cmd_sn: be32(b, 32),
            data_sn_r2t_sn: be32(b, 36),
        }),
    })
}

fn isid(b: &[u8; BHS_LEN]) -> Isid {
    Isid([b[8], b[9], b[10], b[11], b[12], b[13]])
}

/// Parses the AHS of a SCSI Command (§11.2.2): each one at most once, an
/// Extended CDB only for a CDB of 17 bytes or more, and together they fill
/// TotalAHSLength exactly.
fn parse_scsi_command_ahs(mut ahs: &[u8], cmd: &mut ScsiCommand) -> Result<(), &'static str> {
    while !ahs.is_empty() {
        let [len_hi, len_lo, ahs_type, ..] = *ahs else {
            return Err("truncated AHS");
        };
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        let Some(specific) = ahs.get(3..3 + len) else {
            return Err("AHSLength exceeds TotalAHSLength");
        };
        // AHSType bits 0-1 are reserved (§11.2.2.2).
        match ahs_type & 0x3f {
            AHS_EXTENDED_CDB => {
                if !cmd.cdb.extended.is_empty() {
                    return Err("duplicate Extended CDB AHS");
                }
                // Byte 3 is reserved; at least one CDB byte must follow.
                if len < 2 {
                    return Err("Extended CDB AHS for a CDB of 16 bytes or less");
                }
                cmd.cdb.extended = specific[1..].to_vec();
            }
            AHS_BIDI_READ_LENGTH => {
                if cmd.bidi_read_length.is_some() {
                    return Err("duplicate Expected Bidirectional Read-Data Length AHS");
                }
                let [_, b0, b1, b2, b3] = *specific else {
                    return Err("Expected Bidirectional Read-Data Length AHSLength is not 5");
                };
                cmd.bidi_read_length = Some(u32::from_be_bytes([b0, b1, b2, b3]));
            }
            _ => return Err("unknown AHSType"),
        }
        // The AHS is padded to whole words; TotalAHSLength covers the padding.
        let Some(rest) = ahs.get(padded(3 + len)..) else {
            return Err("AHS padding exceeds TotalAHSLength");
        };
        ahs = rest;
    }
    Ok(())
}
