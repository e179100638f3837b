//! Who a logical unit and a target port are: the designators of the Device
//! Identification VPD page (SPC-5, "Device Identification VPD page"),
//! derived deterministically from `LuConfig::serial`, the vendor and the I_T
//! nexus.

use super::super::{LuConfig, Nexus};
use super::pad4;

/// The IEEE company identifier placed in NAA designators. A fixed value in
/// the CID range (IEEE CID format: second nibble Ah), the same for every
/// logical unit; the serial number supplies the uniqueness.
const COMPANY_ID: u32 = 0x0a_7e_57;

/// PROTOCOL IDENTIFIER for iSCSI (SPC-5, "Protocol specific parameters").
pub(super) const PROTOCOL_ISCSI: u8 = 0x5;

/// Code sets (SPC-5, CODE SET field).
const BINARY: u8 = 1;
const ASCII: u8 = 2;
const UTF8: u8 = 3;

/// Designator types (SPC-5, DESIGNATOR TYPE field).
pub(super) const T10_VENDOR_ID: u8 = 1;
pub(super) const NAA: u8 = 3;
const RELATIVE_TARGET_PORT: u8 = 4;
const SCSI_NAME_STRING: u8 = 8;

/// Associations (SPC-5, ASSOCIATION field).
pub(super) const ASSOC_LU: u8 = 0;
const ASSOC_TARGET_PORT: u8 = 1;
const ASSOC_TARGET_DEVICE: u8 = 2;

/// FNV-1a, 64 bits: a stable hash (unlike `DefaultHasher`).
fn fnv1a(salt: u8, data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&salt).chain(data) {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The 16-byte NAA IEEE Registered Extended designator (NAA 6h, SPC-5
/// "NAA IEEE Registered Extended designator format") of the logical unit
/// with this serial number.
pub(super) fn naa(serial: &str) -> [u8; 16] {
    let vendor_specific = fnv1a(1, serial.as_bytes()) & 0xf_ffff_ffff;
    let extension = fnv1a(2, serial.as_bytes());
    let high: u64 = 0x6 << 60 | (COMPANY_ID as u64) << 36 | vendor_specific;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&high.to_be_bytes());
    out[8..].copy_from_slice(&extension.to_be_bytes());
    out
}

/// `text` as ASCII padded with spaces (or cut) to `len` bytes; characters
/// outside 20h..7Eh become spaces (SPC-5, "ASCII data field requirements").
pub(super) fn ascii_field(text: &str, len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = text
        .bytes()
        .map(|b| if (0x20..=0x7e).contains(&b) { b } else { b' ' })
        .take(len)
        .collect();
    out.resize(len, b' ');
    out
}

/// The unit serial number as VPD page 80h carries it: printable ASCII.
pub(super) fn serial_ascii(config: &LuConfig) -> Vec<u8> {
    let len = config.serial.len().min(250);
    ascii_field(&config.serial, len)
}

/// The relative target port identifier of the nexus's target port: its
/// portal group tag (0 is not a valid identifier and maps to 1).
pub(super) fn relative_port(nexus: &Nexus) -> u16 {
    nexus.target_portal_group_tag.max(1)
}

/// One designation descriptor (SPC-5, "Device Identification VPD page").
fn descriptor(out: &mut Vec<u8>, code_set: u8, piv: bool, assoc: u8, kind: u8, designator: &[u8]) {
    let protocol = if piv { PROTOCOL_ISCSI << 4 } else { 0 };
    out.push(protocol | code_set);
    out.push((piv as u8) << 7 | assoc << 4 | kind);
    out.push(0);
    out.push(designator.len() as u8);
    out.extend_from_slice(designator);
}

/// The designators of the logical unit itself: NAA and T10 vendor ID.
pub(super) fn lu_designators(config: &LuConfig) -> Vec<u8> {
    let mut out = Vec::new();
    descriptor(&mut out, BINARY, false, ASSOC_LU, NAA, &naa(&config.serial));
    let mut t10 = ascii_field(&config.vendor, 8);
    t10.extend(serial_ascii(config).iter().take(200));
    descriptor(&mut out, ASCII, false, ASSOC_LU, T10_VENDOR_ID, &t10);
    out
}

/// A SCSI name string designator value: UTF-8, null-terminated, padded to
/// a multiple of four bytes (SPC-5, "SCSI name string designator format").
fn name_string(name: &str) -> Vec<u8> {
    let mut out: Vec<u8> = name.bytes().take(250).collect();
    out.push(0);
    pad4(&mut out);
    out
}

/// The full designation descriptor list of VPD page 83h as seen through
/// `nexus`: the LU, its target port and the target device.
pub(super) fn device_identification(config: &LuConfig, nexus: &Nexus) -> Vec<u8> {
    let mut out = lu_designators(config);
    let rel = relative_port(nexus).to_be_bytes();
    descriptor(
        &mut out,
        BINARY,
        true,
        ASSOC_TARGET_PORT,
        RELATIVE_TARGET_PORT,
        &[0, 0, rel[0], rel[1]],
    );
    descriptor(
        &mut out,
        UTF8,
        true,
        ASSOC_TARGET_PORT,
        SCSI_NAME_STRING,
        &name_string(&nexus.target_port_name()),
    );
    descriptor(
        &mut out,
        UTF8,
        true,
        ASSOC_TARGET_DEVICE,
        SCSI_NAME_STRING,
        &name_string(&nexus.target_name),
    );
    out
}

/// Whether a designator (type, value) names the logical unit with this
/// configuration; the EXTENDED COPY identification descriptor uses it.
pub(super) fn names_lu(config: &LuConfig, kind: u8, value: &[u8]) -> bool {
    let ours = lu_designators(config);
    let mut at = 0;
    while at + 4 <= ours.len() {
        let len = ours[at + 3] as usize;
        let Some(designator) = ours.get(at + 4..at + 4 + len) else {
            break;
        };
        if ours[at + 1] & 0x0f == kind && designator == value {
            return true;
        }
        at += 4 + len;
    }
    false
}
