//! INQUIRY (SPC-5, "INQUIRY command"): standard data and the vital product
//! data pages a direct-access block device reports (SPC-5 and SBC-4, "Vital
//! product data parameters").

use super::super::LuConfig;
use super::super::cdb::{Cdb, put_be16, put_be32, put_be64};
use super::super::command::{Command, Outcome};
use super::super::device::LogicalUnit;
use super::super::sbc::{self, Characteristics, Limits, Provisioning};
use super::{identity, truncate};

/// VERSION of the standard INQUIRY data: 05h, SPC-3. libiscsi accepts only
/// 04h-06h; claiming SPC-3 also keeps the SPC-3 EXTENDED COPY rules
/// (reserved LU ID TYPE and NUL bit rejected) that its suite exercises.
pub(super) const VERSION: u8 = 0x05;

/// Version descriptors (SPC-5, "Version descriptor values"): SAM-5, iSCSI, SPC-3, SBC-3.
const VERSION_DESCRIPTORS: [u16; 4] = [0x00a0, 0x0960, 0x0300, 0x04c0];

/// The VPD pages we support, in ascending order (SPC-5, "Supported VPD
/// Pages VPD page").
const SUPPORTED_VPD: [u8; 7] = [0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2];

/// Peripheral device type: direct access block device (SBC-4).
const DIRECT_ACCESS: u8 = 0x00;

/// INQUIRY: EVPD selects a VPD page; CMDDT is obsolete.
pub fn inquiry(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    if cdb.u8(1) & 0xfe != 0 {
        return Err(Cdb::invalid_field(1, None).into());
    }
    let evpd = cdb.bit(1, 0);
    let page = cdb.u8(2);
    let allocation_length = cdb.be16(3) as usize;
    if !evpd {
        if page != 0 {
            return Err(Cdb::invalid_field(2, None).into());
        }
        return Ok(truncate(standard(lu.config(), 0), allocation_length));
    }
    let body = match page {
        0x00 => SUPPORTED_VPD.to_vec(),
        0x80 => identity::serial_ascii(lu.config()),
        0x83 => identity::device_identification(lu.config(), cmd.nexus),
        0x86 => extended_inquiry(),
        0xb0 => block_limits(lu.sbc.limits(), &sbc::provisioning(lu)),
        0xb1 => block_device_characteristics(&sbc::CHARACTERISTICS),
        0xb2 => logical_block_provisioning(&sbc::provisioning(lu)),
        _ => return Err(Cdb::invalid_field(2, None).into()),
    };
    Ok(truncate(
        vpd_page(DIRECT_ACCESS, page, &body),
        allocation_length,
    ))
}

/// A VPD page: peripheral byte, page code, 16-bit page length, body.
pub(super) fn vpd_page(peripheral: u8, page: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![peripheral, page, 0, 0];
    put_be16(&mut out, 2, body.len() as u16);
    out.extend_from_slice(body);
    out
}

/// Standard INQUIRY data (SPC-5, "Standard INQUIRY data"), 74 bytes through the version
/// descriptors. `peripheral` is the qualifier/device type byte.
pub(super) fn standard(config: &LuConfig, peripheral: u8) -> Vec<u8> {
    let mut out = vec![0u8; 74];
    out[0] = peripheral;
    out[1] = if config.removable { 0x80 } else { 0 };
    out[2] = VERSION;
    // HISUP, RESPONSE DATA FORMAT 2.
    out[3] = 0x10 | 0x02;
    out[4] = (out.len() - 5) as u8;
    // 3PC: the LU hosts a copy manager (EXTENDED COPY).
    out[5] = 0x08;
    out[6] = 0;
    // CMDQUE: full task management model.
    out[7] = 0x02;
    out[8..16].copy_from_slice(&identity::ascii_field(&config.vendor, 8));
    out[16..32].copy_from_slice(&identity::ascii_field(&config.product, 16));
    out[32..36].copy_from_slice(&identity::ascii_field(&config.revision, 4));
    for (i, v) in VERSION_DESCRIPTORS.iter().enumerate() {
        put_be16(&mut out, 58 + 2 * i, *v);
    }
    out
}

/// Extended INQUIRY Data VPD page body (SPC-5): simple, ordered and
/// head of queue task attributes; a volatile cache (V_SUP).
fn extended_inquiry() -> Vec<u8> {
    let mut body = vec![0u8; 60];
    // HEADSUP, ORDSUP, SIMPSUP.
    body[1] = 0x07;
    // V_SUP.
    body[2] = 0x01;
    body
}

/// Block Limits VPD page body (SBC-4), page length 3Ch, from the
/// limits the SBC side enforces. The UNMAP limits are zero without LBPU.
fn block_limits(l: &Limits, p: &Provisioning) -> Vec<u8> {
    let mut body = vec![0u8; 0x3c];
    // Offsets below are page offsets minus the 4-byte header.
    body[0] = l.wsnz as u8;
    body[1] = l.max_compare_and_write_length;
    put_be16(&mut body, 2, l.optimal_transfer_length_granularity);
    put_be32(&mut body, 4, l.max_transfer_length);
    put_be32(&mut body, 8, l.optimal_transfer_length);
    put_be32(&mut body, 12, l.max_prefetch_length);
    if p.lbpu {
        put_be32(&mut body, 16, l.max_unmap_lba_count);
        put_be32(&mut body, 20, l.max_unmap_block_descriptor_count);
        put_be32(&mut body, 24, l.optimal_unmap_granularity);
        if let Some(alignment) = l.unmap_granularity_alignment {
            put_be32(&mut body, 28, 0x8000_0000 | alignment);
        }
    }
    put_be64(&mut body, 32, l.max_write_same_length);
    put_be32(&mut body, 40, l.max_atomic_transfer_length);
    put_be32(&mut body, 44, l.atomic_alignment);
    put_be32(&mut body, 48, l.atomic_transfer_length_granularity);
    put_be32(&mut body, 52, l.max_atomic_transfer_length_with_boundary);
    put_be32(&mut body, 56, l.max_atomic_boundary_size);
    body
}

/// Block Device Characteristics VPD page body (SBC-4).
fn block_device_characteristics(c: &Characteristics) -> Vec<u8> {
    let mut body = vec![0u8; 0x3c];
    put_be16(&mut body, 0, c.medium_rotation_rate);
    body[3] = (c.wabereq & 3) << 6 | (c.wacereq & 3) << 4;
    body[4] = (c.fuab as u8) << 1 | c.vbuls as u8;
    body
}

/// Logical Block Provisioning VPD page body (SBC-4).
fn logical_block_provisioning(p: &Provisioning) -> Vec<u8> {
    let mut body = vec![0u8; 4];
    body[1] = (p.lbpu as u8) << 7
        | (p.lbpws as u8) << 6
        | (p.lbpws10 as u8) << 5
        | (p.lbprz as u8) << 2
        | (p.anc_sup as u8) << 1;
    body[2] = p.provisioning_type & 0x07;
    body
}
