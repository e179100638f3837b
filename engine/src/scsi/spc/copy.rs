//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4, "EXTENDED COPY
//! (LID1) command", "RECEIVE COPY RESULTS command") for block-to-block
//! copies between the logical units of this target.
//!
//! The copy manager accepts identification descriptor CSCD descriptors
//! (E4h) that name one of our logical units by a designator of its Device
//! Identification VPD page, and block device to block device segment
//! descriptors (02h). Copies run to completion inside the command.

use std::collections::BTreeMap;

use super::super::Nexus;
use super::super::cdb::{Cdb, invalid_parameter, put_be16, put_be32};
use super::super::command::{Command, Failure, Outcome};
use super::super::device::Device;
use super::super::sense::{Asc, Sense, key};
use super::{identity, parameter_list, truncate};

/// Limits reported in the OPERATING PARAMETERS parameter data.
const MAX_CSCD_DESCRIPTORS: usize = 4;
const MAX_SEGMENT_DESCRIPTORS: usize = 16;
const MAX_DESCRIPTOR_LIST_LENGTH: usize = 1024;
/// The most bytes one segment may copy: 65535 blocks of 4096 bytes.
const MAX_SEGMENT_LENGTH: u32 = 0xffff * 4096;
/// Held copy results per logical unit.
const MAX_HELD_RESULTS: usize = 64;
/// Bytes copied per store access.
const CHUNK: u64 = 1 << 20;

const IDENTIFICATION_DESCRIPTOR: u8 = 0xe4;
const BLOCK_TO_BLOCK: u8 = 0x02;
const CSCD_DESCRIPTOR_LEN: usize = 32;
const BLOCK_TO_BLOCK_LEN: usize = 28;

/// UNREACHABLE COPY TARGET (SPC-5, ASC and ASCQ assignments).
const UNREACHABLE_COPY_TARGET: Asc = Asc(0x08, 0x04);

/// The outcome of one copy operation, held for RECEIVE COPY RESULTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CopyStatus {
    success: bool,
    segments_processed: u16,
    bytes: u64,
}

/// Held copy results of one logical unit, by I_T nexus and list
/// identifier.
#[derive(Debug, Default)]
pub(super) struct CopyResults {
    held: BTreeMap<(Nexus, u8), CopyStatus>,
}

impl CopyResults {
    fn hold(&mut self, nexus: &Nexus, list_id: u8, status: CopyStatus) {
        self.held.insert((nexus.clone(), list_id), status);
        while self.held.len() > MAX_HELD_RESULTS {
            self.held.pop_first();
        }
    }

    /// Forgets the results held for a lost nexus.
    pub(super) fn nexus_lost(&mut self, nexus: &Nexus) {
        self.held.retain(|(n, _), _| n != nexus);
    }
}

/// A parsed CSCD descriptor: the logical unit it names, if any.
struct Cscd {
    lun: Option<u16>,
}

/// A block device to block device segment descriptor (SPC-4, "Block
/// device to block device operations").
struct Segment {
    destination_count: bool,
    source: usize,
    destination: usize,
    blocks: u16,
    source_lba: u64,
    destination_lba: u64,
}

fn length_error() -> Failure {
    Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into()
}

fn copy_aborted(asc: Asc) -> Failure {
    Sense::new(key::COPY_ABORTED, asc).into()
}

/// EXTENDED COPY (LID1).
pub fn extended_copy(device: &mut Device, lun: u16, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    if cdb.u8(1) & 0x1f != 0 {
        return Err(Cdb::invalid_field(1, Some(4)).into());
    }
    let length = cdb.be32(10) as usize;
    if length == 0 {
        return Ok(Default::default());
    }
    let data = parameter_list(cmd, length);
    if length < 16 || data.len() < length {
        return Err(length_error());
    }
    let list_id = data[0];
    let list_id_usage = (data[1] >> 3) & 0x03;
    match list_id_usage {
        0b00 | 0b10 => {}
        0b11 if list_id == 0 => {}
        0b11 => return Err(invalid_parameter(0, None).into()),
        _ => return Err(invalid_parameter(1, Some(4)).into()),
    }
    let cscd_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let segments_len = u32::from_be_bytes([data[8], data[9], data[10], data[11]]) as usize;
    let inline_len = u32::from_be_bytes([data[12], data[13], data[14], data[15]]) as usize;
    let total = 16usize
        .saturating_add(cscd_len)
        .saturating_add(segments_len)
        .saturating_add(inline_len);
    if total > length || cscd_len.saturating_add(segments_len) > MAX_DESCRIPTOR_LIST_LENGTH {
        return Err(length_error());
    }
    if inline_len != 0 {
        return Err(invalid_parameter(12, None).into());
    }
    let cscds = parse_cscds(device, &data[16..16 + cscd_len])?;
    let segments = parse_segments(&data[16 + cscd_len..16 + cscd_len + segments_len])?;

    let mut status = CopyStatus {
        success: false,
        segments_processed: 0,
        bytes: 0,
    };
    let mut result = Ok(());
    for segment in &segments {
        match copy_segment(device, &cscds, segment) {
            Ok(bytes) => {
                status.segments_processed += 1;
                status.bytes += bytes;
            }
            Err(failure) => {
                result = Err(failure);
                break;
            }
        }
    }
    status.success = result.is_ok();
    if list_id_usage == 0b00 {
        if let Some(lu) = device.lun_mut(lun) {
            lu.spc.copies.hold(cmd.nexus, list_id, status);
        }
    }
    result.map(|()| Default::default())
}

/// Parses the CSCD descriptor list: identification descriptors only.
fn parse_cscds(device: &Device, list: &[u8]) -> Result<Vec<Cscd>, Failure> {
    let mut cscds = Vec::new();
    let mut at = 0;
    while at < list.len() {
        let field = (16 + at) as u16;
        if list[at] != IDENTIFICATION_DESCRIPTOR {
            return Err(
                Sense::illegal_request(Asc::UNSUPPORTED_TARGET_DESCRIPTOR_TYPE)
                    .with_field_pointer(false, field, None)
                    .into(),
            );
        }
        if cscds.len() == MAX_CSCD_DESCRIPTORS {
            return Err(Sense::illegal_request(Asc::TOO_MANY_TARGET_DESCRIPTORS).into());
        }
        let Some(d) = list.get(at..at + CSCD_DESCRIPTOR_LEN) else {
            return Err(length_error());
        };
        // LU ID TYPE other than 00b is reserved (or a proxy token) and NUL
        // unsupported (SPC-3, "Target descriptors").
        if d[1] & 0xc0 != 0 {
            return Err(invalid_parameter(field + 1, Some(7)).into());
        }
        let null_device = d[1] & 0x20 != 0;
        if d[1] & 0x1f != 0 {
            return Err(invalid_parameter(field + 1, Some(4)).into());
        }
        let association = (d[5] >> 4) & 0x03;
        let kind = d[5] & 0x0f;
        let len = d[7] as usize;
        if len > 20 {
            return Err(invalid_parameter(field + 7, None).into());
        }
        let designator = &d[8..8 + len];
        let block_length = u32::from_be_bytes([0, d[29], d[30], d[31]]);
        let lun = device
            .luns()
            .iter()
            .find(|(_, lu)| {
                association == identity::ASSOC_LU
                    && matches!(kind, identity::NAA | identity::T10_VENDOR_ID)
                    && identity::names_lu(lu.config(), kind, designator)
            })
            .map(|(index, lu)| (*index, lu.config().block_size));
        let lun = match lun {
            Some((_, size)) if size != block_length => {
                return Err(invalid_parameter(field + 29, None).into());
            }
            Some((index, _)) if !null_device => Some(index),
            _ => None,
        };
        cscds.push(Cscd { lun });
        at += CSCD_DESCRIPTOR_LEN;
    }
    Ok(cscds)
}

/// Parses the segment descriptor list: block to block only.
fn parse_segments(list: &[u8]) -> Result<Vec<Segment>, Failure> {
    let mut segments = Vec::new();
    let mut at = 0;
    while at < list.len() {
        let Some(header) = list.get(at..at + 4) else {
            return Err(length_error());
        };
        if segments.len() == MAX_SEGMENT_DESCRIPTORS {
            return Err(Sense::illegal_request(Asc::TOO_MANY_SEGMENT_DESCRIPTORS).into());
        }
        if header[0] != BLOCK_TO_BLOCK {
            return Err(Sense::illegal_request(Asc::UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE).into());
        }
        if u16::from_be_bytes([header[2], header[3]]) as usize != BLOCK_TO_BLOCK_LEN - 4 {
            return Err(invalid_parameter(0, None).into());
        }
        let Some(d) = list.get(at..at + BLOCK_TO_BLOCK_LEN) else {
            return Err(length_error());
        };
        let cdb = Cdb(d);
        segments.push(Segment {
            destination_count: cdb.bit(1, 1),
            source: cdb.be16(4) as usize,
            destination: cdb.be16(6) as usize,
            blocks: cdb.be16(10),
            source_lba: cdb.be64(12),
            destination_lba: cdb.be64(20),
        });
        at += BLOCK_TO_BLOCK_LEN;
    }
    Ok(segments)
}

/// Copies one segment; returns the bytes copied.
fn copy_segment(device: &mut Device, cscds: &[Cscd], s: &Segment) -> Result<u64, Failure> {
    let resolve = |index: usize| match cscds.get(index) {
        None => Err(copy_aborted(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE)),
        Some(Cscd { lun: None }) => Err(copy_aborted(UNREACHABLE_COPY_TARGET)),
        Some(Cscd { lun: Some(lun) }) => Ok(*lun),
    };
    let source = resolve(s.source)?;
    let destination = resolve(s.destination)?;
    let geometry = |lun: u16| {
        device
            .luns()
            .get(&lun)
            .filter(|lu| lu.spc.medium.present)
            .map(|lu| (lu.config().block_size as u64, lu.block_count()))
            .ok_or_else(|| copy_aborted(UNREACHABLE_COPY_TARGET))
    };
    let (source_size, source_blocks) = geometry(source)?;
    let (destination_size, destination_blocks) = geometry(destination)?;
    let unit = if s.destination_count {
        destination_size
    } else {
        source_size
    };
    let bytes = s.blocks as u64 * unit;
    if bytes % source_size != 0 || bytes % destination_size != 0 {
        return Err(copy_aborted(Asc::NO_ADDITIONAL_SENSE));
    }
    let in_range = |lba: u64, size: u64, capacity: u64| {
        lba.checked_add(bytes / size)
            .is_some_and(|end| end <= capacity)
    };
    if !in_range(s.source_lba, source_size, source_blocks)
        || !in_range(s.destination_lba, destination_size, destination_blocks)
    {
        return Err(copy_aborted(Asc::NO_ADDITIONAL_SENSE));
    }
    if device
        .luns()
        .get(&destination)
        .is_some_and(|lu| lu.spc.write_protected(lu.config()))
    {
        return Err(Sense::new(key::DATA_PROTECT, Asc::WRITE_PROTECTED).into());
    }
    let from = s.source_lba * source_size;
    let to = s.destination_lba * destination_size;
    // Overlapping ranges in one LU copy back to front when moving up.
    let backwards = source == destination && to > from && to < from + bytes;
    let mut buf = vec![0u8; CHUNK.min(bytes) as usize];
    let mut done = 0;
    while done < bytes {
        let n = CHUNK.min(bytes - done);
        let offset = if backwards { bytes - done - n } else { done };
        let chunk = &mut buf[..n as usize];
        if let Some(lu) = device.lun_mut(source) {
            lu.store
                .read_at(from + offset, chunk)
                .map_err(|_| Sense::new(key::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR))?;
        }
        if let Some(lu) = device.lun_mut(destination) {
            lu.store
                .write_at(to + offset, chunk)
                .map_err(|_| Sense::new(key::MEDIUM_ERROR, Asc::WRITE_ERROR))?;
        }
        done += n;
    }
    Ok(bytes)
}

/// RECEIVE COPY RESULTS: COPY STATUS (00h) of a held list identifier, and
/// OPERATING PARAMETERS (03h).
pub fn receive_copy_results(device: &mut Device, lun: u16, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let allocation_length = cdb.be32(10) as usize;
    let Some(lu) = device.lun_mut(lun) else {
        return Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED).into());
    };
    let out = match cdb.service_action() {
        0x00 => {
            let list_id = cdb.u8(2);
            let Some(status) = lu.spc.copies.held.get(&(cmd.nexus.clone(), list_id)) else {
                return Err(Cdb::invalid_field(2, None).into());
            };
            copy_status(status)
        }
        0x03 => operating_parameters(),
        _ => return Err(Cdb::invalid_field(1, Some(4)).into()),
    };
    Ok(truncate(out, allocation_length))
}

/// COPY STATUS parameter data (SPC-4, "COPY STATUS service action").
fn copy_status(status: &CopyStatus) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    put_be32(&mut out, 0, 8);
    // COPY MANAGER STATUS: 01h completed, 02h completed with errors.
    out[4] = if status.success { 0x01 } else { 0x02 };
    put_be16(&mut out, 5, status.segments_processed);
    // TRANSFER COUNT UNITS: bytes, or the power of 1024 that fits.
    let mut units = 0u8;
    let mut count = status.bytes;
    while count > u32::MAX as u64 {
        count >>= 10;
        units += 1;
    }
    out[7] = units;
    put_be32(&mut out, 8, count as u32);
    out
}

/// OPERATING PARAMETERS parameter data (SPC-4, "OPERATING PARAMETERS
/// service action").
fn operating_parameters() -> Vec<u8> {
    let descriptor_types = [BLOCK_TO_BLOCK, IDENTIFICATION_DESCRIPTOR];
    let mut out = vec![0u8; 44];
    put_be16(&mut out, 8, MAX_CSCD_DESCRIPTORS as u16);
    put_be16(&mut out, 10, MAX_SEGMENT_DESCRIPTORS as u16);
    put_be32(&mut out, 12, MAX_DESCRIPTOR_LIST_LENGTH as u32);
    put_be32(&mut out, 16, MAX_SEGMENT_LENGTH);
    // No inline data, no held data, no stream devices.
    put_be16(&mut out, 34, 1);
    out[36] = 1;
    out[43] = descriptor_types.len() as u8;
    out.extend_from_slice(&descriptor_types);
    let available = (out.len() - 4) as u32;
    put_be32(&mut out, 0, available);
    out
}
