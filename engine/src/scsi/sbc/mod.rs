//! SBC-4 commands: the data path of a direct-access block device.
//!
//! One file per command family. This module holds what they share: the
//! limits the logical unit advertises (the spc side turns them into the
//! Block Limits, Block Device Characteristics and Logical Block
//! Provisioning VPD pages), the decoding of LBA and transfer length fields,
//! the range checks, and block I/O that maps store errors to sense data.
//!
//! Data-Out handling follows what iSCSI makes possible: the initiator's
//! Expected Data Transfer Length may differ from the transfer length in the
//! CDB, and the session hands over whatever arrived. Commands that transfer
//! one block per LBA (WRITE, WRITE AND VERIFY, VERIFY with BYTCHK 01b,
//! ORWRITE, WRITE ATOMIC) process the whole blocks received, never more
//! than the CDB asks for; the session reports the difference as a residual
//! (RFC 7143 §11.4.5). Commands whose Data-Out has a fixed shape (WRITE
//! SAME, COMPARE AND WRITE) reject any other length.

use bytes::BytesMut;

use super::LuConfig;
use super::cdb::Cdb;
use super::command::Command;
use super::device::LogicalUnit;
use super::sense::{Asc, Sense, key};
use crate::store::StoreError;

mod capacity;
mod compare_and_write;
mod defect;
mod format;
mod lba_status;
mod orwrite;
mod prefetch;
mod rw;
mod sanitize;
mod sync;
mod unmap;
mod verify;
mod write_atomic;
mod write_same;

#[cfg(test)]
mod tests;

pub use capacity::{read_capacity10, read_capacity16};
pub use compare_and_write::compare_and_write;
pub use defect::read_defect_data;
pub use format::format_unit;
pub use lba_status::get_lba_status;
pub use orwrite::orwrite;
pub use prefetch::pre_fetch;
pub use rw::{read, write};
pub use sanitize::sanitize;
pub use sync::synchronize_cache;
pub use unmap::unmap;
pub use verify::{verify, write_and_verify};
pub use write_atomic::write_atomic16;
pub use write_same::write_same;

/// Largest buffer a command that walks many blocks (WRITE SAME, SANITIZE,
/// VERIFY without a byte check) holds at once.
const CHUNK_BYTES: u64 = 1 << 20;

/// The limits of the Block Limits VPD page (SBC-4 §6.6.4), in logical
/// blocks unless noted. Zero means "no limit" where SBC-4 says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    /// WSNZ: a WRITE SAME with NUMBER OF LOGICAL BLOCKS zero is rejected
    /// (false: it writes to the end of the medium).
    pub wsnz: bool,
    /// MAXIMUM COMPARE AND WRITE LENGTH (1..=255).
    pub max_compare_and_write_length: u8,
    /// OPTIMAL TRANSFER LENGTH GRANULARITY.
    pub optimal_transfer_length_granularity: u16,
    /// MAXIMUM TRANSFER LENGTH: READ, WRITE, VERIFY with a byte check,
    /// WRITE AND VERIFY, ORWRITE.
    pub max_transfer_length: u32,
    /// OPTIMAL TRANSFER LENGTH.
    pub optimal_transfer_length: u32,
    /// MAXIMUM PREFETCH LENGTH (0: no limit).
    pub max_prefetch_length: u32,
    /// MAXIMUM UNMAP LBA COUNT (u32::MAX: only the parameter list limits
    /// it). Reported as zero when the logical unit cannot unmap.
    pub max_unmap_lba_count: u32,
    /// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT (reported as zero without
    /// UNMAP support).
    pub max_unmap_block_descriptor_count: u32,
    /// OPTIMAL UNMAP GRANULARITY.
    pub optimal_unmap_granularity: u32,
    /// UNMAP GRANULARITY ALIGNMENT; `Some` sets UGAVALID.
    pub unmap_granularity_alignment: Option<u32>,
    /// MAXIMUM WRITE SAME LENGTH (0: no limit).
    pub max_write_same_length: u64,
    /// MAXIMUM ATOMIC TRANSFER LENGTH (WRITE ATOMIC(16)).
    pub max_atomic_transfer_length: u32,
    /// ATOMIC ALIGNMENT (0: any LBA).
    pub atomic_alignment: u32,
    /// ATOMIC TRANSFER LENGTH GRANULARITY (0: any length).
    pub atomic_transfer_length_granularity: u32,
    /// MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY (0: the ATOMIC
    /// BOUNDARY field must be zero).
    pub max_atomic_transfer_length_with_boundary: u32,
    /// MAXIMUM ATOMIC BOUNDARY SIZE.
    pub max_atomic_boundary_size: u32,
}

impl Limits {
    /// The defaults for a logical unit with `block_size`-byte blocks:
    /// 8 MiB transfers, writes up to 64 Ki blocks for WRITE SAME, unmap
    /// limited only by the parameter list.
    pub(crate) fn for_block_size(block_size: u32) -> Limits {
        let blocks_in = |bytes: u32| (bytes / block_size.max(1)).max(1);
        let max_transfer = blocks_in(8 << 20);
        Limits {
            wsnz: false,
            max_compare_and_write_length: 255,
            optimal_transfer_length_granularity: 1,
            max_transfer_length: max_transfer,
            optimal_transfer_length: blocks_in(1 << 20),
            max_prefetch_length: 0,
            max_unmap_lba_count: u32::MAX,
            max_unmap_block_descriptor_count: 256,
            optimal_unmap_granularity: 1,
            unmap_granularity_alignment: Some(0),
            max_write_same_length: 0xffff,
            max_atomic_transfer_length: max_transfer,
            atomic_alignment: 0,
            atomic_transfer_length_granularity: 0,
            max_atomic_transfer_length_with_boundary: 0,
            max_atomic_boundary_size: 0,
        }
    }
}

/// Logical block provisioning as READ CAPACITY(16) and the Logical Block
/// Provisioning VPD page (SBC-4 §6.6.7) report it. A thin store is thin
/// provisioned with every unmap path; a thick one is fully provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Provisioning {
    /// LBPME: logical block provisioning management enabled.
    pub lbpme: bool,
    /// LBPRZ: deallocated blocks read as zeros (the VPD page's three-bit
    /// field is 001b when set).
    pub lbprz: bool,
    /// LBPU: UNMAP supported.
    pub lbpu: bool,
    /// LBPWS: WRITE SAME(16) with UNMAP supported.
    pub lbpws: bool,
    /// LBPWS10: WRITE SAME(10) with UNMAP supported.
    pub lbpws10: bool,
    /// ANC_SUP: anchored LBAs supported (never: ANCHOR is rejected).
    pub anc_sup: bool,
    /// PROVISIONING TYPE: 000b full, 010b thin.
    pub provisioning_type: u8,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ CAPACITY(16)).
    pub lbppbe: u8,
    /// LOWEST ALIGNED LOGICAL BLOCK ADDRESS (READ CAPACITY(16)).
    pub lowest_aligned_lba: u16,
}

/// The provisioning of `lu`, from its store.
pub(crate) fn provisioning(lu: &LogicalUnit) -> Provisioning {
    let thin = lu.store.is_thin();
    Provisioning {
        lbpme: thin,
        lbprz: thin,
        lbpu: thin,
        lbpws: thin,
        lbpws10: thin,
        anc_sup: false,
        provisioning_type: if thin { 0b010 } else { 0b000 },
        lbppbe: 0,
        lowest_aligned_lba: 0,
    }
}

/// Fields of the Block Device Characteristics VPD page (SBC-4 §6.6.2)
/// that describe how this module behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "read by the spc side's VPD pages")]
pub(crate) struct Characteristics {
    /// MEDIUM ROTATION RATE: 0001h, a non-rotating medium.
    pub medium_rotation_rate: u16,
    /// WABEREQ: 01b, reads after a BLOCK ERASE sanitize succeed (zeros).
    pub wabereq: u8,
    /// WACEREQ: 01b, reads after a CRYPTOGRAPHIC ERASE succeed.
    pub wacereq: u8,
    /// FUAB: FUA and SYNCHRONIZE CACHE make the same data durable.
    pub fuab: bool,
    /// VBULS: VERIFY with a byte check accepts unmapped LBAs (compared as
    /// the zeros they read as).
    pub vbuls: bool,
}

#[allow(dead_code, reason = "read by the spc side's VPD pages")]
pub(crate) const CHARACTERISTICS: Characteristics = Characteristics {
    medium_rotation_rate: 1,
    wabereq: 0b01,
    wacereq: 0b01,
    fuab: true,
    vbuls: true,
};

/// SBC state of one logical unit.
#[derive(Debug)]
pub struct State {
    pub(crate) limits: Limits,
    /// A sanitize operation the session has not completed yet (see
    /// [`State::complete_sanitize`]).
    sanitize_pending: bool,
    /// Whether SANITIZE leaves the operation pending for the session to
    /// complete later; meanwhile other commands fail with NOT READY,
    /// SANITIZE IN PROGRESS. Off: SANITIZE completes at once.
    pub(crate) defer_sanitize: bool,
}

#[allow(
    dead_code,
    reason = "accessors for the spc gate, VPD pages and the session"
)]
impl State {
    pub fn new(config: &LuConfig) -> State {
        State {
            limits: Limits::for_block_size(config.block_size),
            sanitize_pending: false,
            defer_sanitize: false,
        }
    }

    /// The Block Limits this logical unit enforces.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether a sanitize operation is in progress: the gate then answers
    /// NOT READY, SANITIZE IN PROGRESS (04h/1Bh) to commands other than
    /// INQUIRY, REPORT LUNS and REQUEST SENSE.
    pub(crate) fn sanitize_in_progress(&self) -> bool {
        self.sanitize_pending
    }

    /// Ends the pending sanitize operation (the session's timer fired).
    pub(crate) fn complete_sanitize(&mut self) {
        self.sanitize_pending = false;
    }
}

/// The LBA and transfer length fields of a block-addressed CDB, and where
/// the length field sits (for the sense-key-specific field pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    pub lba: u64,
    pub blocks: u64,
    pub len_at: u16,
}

impl Extent {
    /// Decodes the LBA and length of the SBC commands in the table.
    pub fn decode(cdb: &Cdb<'_>) -> Extent {
        let (lba, blocks, len_at) = match cdb.opcode() {
            // READ(6)/WRITE(6): 21-bit LBA; a length of zero means 256.
            0x08 | 0x0a => {
                let n = cdb.u8(4) as u64;
                (
                    cdb.be24(1) as u64 & 0x1f_ffff,
                    if n == 0 { 256 } else { n },
                    4,
                )
            }
            0x28 | 0x2a | 0x2e | 0x2f | 0x34 | 0x35 | 0x41 => {
                (cdb.be32(2) as u64, cdb.be16(7) as u64, 7)
            }
            0xa8 | 0xaa | 0xae | 0xaf => (cdb.be32(2) as u64, cdb.be32(6) as u64, 6),
            0x9c => (cdb.be64(2), cdb.be16(12) as u64, 12),
            0x89 => (cdb.be64(2), cdb.u8(13) as u64, 13),
            _ => (cdb.be64(2), cdb.be32(10) as u64, 10),
        };
        Extent {
            lba,
            blocks,
            len_at,
        }
    }
}

pub(super) fn lba_out_of_range() -> Sense {
    Sense::illegal_request(Asc::LBA_OUT_OF_RANGE)
}

/// LOGICAL BLOCK ADDRESS OUT OF RANGE unless `lba` is a valid LBA and
/// `lba + blocks` does not pass the end of the medium (SBC-4 §4.5).
pub(super) fn check_extent(lu: &LogicalUnit, lba: u64, blocks: u64) -> Result<(), Sense> {
    let capacity = lu.block_count();
    match lba.checked_add(blocks) {
        Some(end) if lba < capacity && end <= capacity => Ok(()),
        _ => Err(lba_out_of_range()),
    }
}

/// RDPROTECT/WRPROTECT/VRPROTECT/ORPROTECT (byte 1, bits 7:5) must be
/// zero: the logical unit has no protection information (SBC-4 §4.22).
pub(super) fn check_no_protection(cdb: &Cdb<'_>) -> Result<(), Sense> {
    if cdb.u8(1) & 0xe0 != 0 {
        return Err(Cdb::invalid_field(1, Some(7)));
    }
    Ok(())
}

/// INVALID FIELD IN CDB when `blocks` exceeds `max` (zero: no limit).
pub(super) fn check_length(blocks: u64, max: u64, len_at: u16) -> Result<(), Sense> {
    if max != 0 && blocks > max {
        return Err(Cdb::invalid_field(len_at, None));
    }
    Ok(())
}

/// DATA PROTECT, WRITE PROTECTED on a write-protected logical unit. The
/// spc gate already refuses commands flagged WRITES there (and under the
/// control mode page's SWP); this keeps the handlers safe on their own.
pub(super) fn check_writable(lu: &LogicalUnit) -> Result<(), Sense> {
    if lu.config.readonly {
        return Err(Sense::new(key::DATA_PROTECT, Asc::WRITE_PROTECTED));
    }
    Ok(())
}

/// The whole blocks of Data-Out available for a transfer of `blocks`
/// blocks: at most what the CDB asks for, at most what arrived.
pub(super) fn data_blocks<'a>(cmd: &Command<'a>, blocks: u64, block_size: u32) -> &'a [u8] {
    let data: &'a [u8] = cmd.data_out;
    let bs = block_size as u64;
    let wanted = blocks.saturating_mul(bs);
    let arrived = data.len() as u64 / bs * bs;
    &data[..wanted.min(arrived) as usize]
}

/// Sense data for a failed store operation: MEDIUM ERROR with the failing
/// LBA in INFORMATION (UNRECOVERED READ ERROR or WRITE ERROR), or
/// HARDWARE ERROR, INTERNAL TARGET FAILURE for other I/O errors.
pub(super) fn store_error(err: StoreError, block_size: u32, writing: bool) -> Sense {
    match err {
        StoreError::Medium { offset } => {
            let asc = if writing {
                Asc::WRITE_ERROR
            } else {
                Asc::UNRECOVERED_READ_ERROR
            };
            Sense::new(key::MEDIUM_ERROR, asc).with_information(offset / block_size as u64)
        }
        StoreError::OutOfRange { .. } => lba_out_of_range(),
        _ => Sense::new(key::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
    }
}

/// Reads `blocks` blocks from `lba` (already range-checked) with one store
/// read into one buffer.
pub(crate) fn read_blocks(lu: &mut LogicalUnit, lba: u64, blocks: u64) -> Result<BytesMut, Sense> {
    let bs = lu.config.block_size;
    let mut buf = BytesMut::zeroed((blocks * bs as u64) as usize);
    lu.store
        .read_at(lba * bs as u64, &mut buf)
        .map_err(|e| store_error(e, bs, false))?;
    Ok(buf)
}

/// Writes whole blocks at `lba` (already range-checked).
pub(crate) fn write_blocks(lu: &mut LogicalUnit, lba: u64, data: &[u8]) -> Result<(), Sense> {
    let bs = lu.config.block_size;
    debug_assert_eq!(data.len() % bs as usize, 0);
    lu.store
        .write_at(lba * bs as u64, data)
        .map_err(|e| store_error(e, bs, true))
}

/// Deallocates `blocks` blocks at `lba` (already range-checked).
pub(super) fn discard_blocks(lu: &mut LogicalUnit, lba: u64, blocks: u64) -> Result<(), Sense> {
    let bs = lu.config.block_size as u64;
    lu.store
        .discard(lba * bs, blocks * bs)
        .map_err(|e| store_error(e, bs as u32, true))
}

/// Makes completed writes durable (FUA, SYNCHRONIZE CACHE).
pub(super) fn flush(lu: &mut LogicalUnit) -> Result<(), Sense> {
    let bs = lu.config.block_size;
    lu.store.flush().map_err(|e| store_error(e, bs, true))
}

/// Writes `block` (one logical block) to every LBA of `lba..lba+blocks`,
/// a chunk at a time (WRITE SAME, SANITIZE OVERWRITE).
pub(super) fn fill_blocks(
    lu: &mut LogicalUnit,
    lba: u64,
    blocks: u64,
    block: &[u8],
) -> Result<(), Sense> {
    let bs = block.len() as u64;
    let per_chunk = (CHUNK_BYTES / bs).clamp(1, blocks.max(1));
    let chunk: Vec<u8> = block
        .iter()
        .copied()
        .cycle()
        .take((per_chunk * bs) as usize)
        .collect();
    let mut done = 0;
    while done < blocks {
        let n = per_chunk.min(blocks - done);
        write_blocks(lu, lba + done, &chunk[..(n * bs) as usize])?;
        done += n;
    }
    Ok(())
}

/// Compares the medium from `lba` with `expected` (whole blocks) a chunk
/// at a time: MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION with the
/// offset of the first differing byte (plus `base`) in INFORMATION.
pub(super) fn compare_medium(
    lu: &mut LogicalUnit,
    lba: u64,
    expected: &[u8],
    base: u64,
) -> Result<(), Sense> {
    let bs = lu.config.block_size as usize;
    let per_chunk = (CHUNK_BYTES as usize / bs).max(1) * bs;
    for (i, want) in expected.chunks(per_chunk).enumerate() {
        let at = lba + (i * per_chunk / bs) as u64;
        let have = read_blocks(lu, at, (want.len() / bs) as u64)?;
        if let Some(pos) = first_difference(&have, want) {
            return Err(miscompare(base + (i * per_chunk + pos) as u64));
        }
    }
    Ok(())
}

/// The index of the first byte where `a` and `b` differ.
pub(super) fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION with `offset` (into the
/// Data-Out Buffer) in INFORMATION.
pub(super) fn miscompare(offset: u64) -> Sense {
    Sense::new(key::MISCOMPARE, Asc::MISCOMPARE_DURING_VERIFY).with_information(offset)
}

/// The Data-Out bytes a data-out SBC command's CDB asks for, so the
/// iSCSI session can compute write residuals against the Expected Data
/// Transfer Length (RFC 7143 §11.4.5.2). `None` for commands without
/// Data-Out and for opcodes outside SBC.
#[allow(dead_code, reason = "for the iSCSI session's write residuals")]
pub(crate) fn data_out_length(cdb: &Cdb<'_>, block_size: u32) -> Option<u64> {
    let bs = block_size as u64;
    let ext = Extent::decode(cdb);
    match cdb.opcode() {
        0x0a | 0x2a | 0xaa | 0x8a | 0x2e | 0xae | 0x8e | 0x8b | 0x9c => Some(ext.blocks * bs),
        0x2f | 0xaf | 0x8f => match (cdb.u8(1) >> 1) & 3 {
            0b01 => Some(ext.blocks * bs),
            0b11 => Some(bs),
            _ => None,
        },
        0x41 => Some(bs),
        0x93 if !cdb.bit(1, 0) => Some(bs),
        0x89 => Some(2 * ext.blocks * bs),
        0x42 | 0x48 => Some(cdb.be16(7) as u64),
        _ => None,
    }
}
