//! Mode parameters (SPC-5, "Mode parameters"; SBC-4): the pages a
//! direct-access block device reports, MODE SENSE(6)/(10) and MODE
//! SELECT(6)/(10).
//!
//! Each page has default values and a changeable mask; current values
//! start at the defaults and return to them on a logical unit reset (SAM-5
//! "Logical unit reset"). Saved values are not implemented.

use super::super::cdb::{Cdb, invalid_parameter, put_be16, put_be32, put_be64};
use super::super::command::{Command, Outcome};
use super::super::device::LogicalUnit;
use super::super::sense::{Asc, Sense};
use super::{parameter_list, truncate};

/// One mode page (SPC-5, "Mode page format"): the page code byte and page length lead
/// each array; subpages are not used.
struct PageDef {
    code: u8,
    default: &'static [u8],
    changeable: &'static [u8],
}

/// Read-Write Error Recovery (SBC-4): AWRE, ARRE.
const RW_ERROR_RECOVERY: PageDef = PageDef {
    code: 0x01,
    default: &[0x01, 0x0a, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    changeable: &[0; 12],
};

/// Caching (SBC-4): WCE set and changeable.
const CACHING: PageDef = PageDef {
    code: 0x08,
    default: &[
        0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    changeable: &[
        0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
};

/// Control (SPC-5): GLTSD set; D_SENSE and SWP changeable; no
/// limit on the busy timeout.
const CONTROL: PageDef = PageDef {
    code: 0x0a,
    default: &[0x0a, 0x0a, 0x02, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0],
    changeable: &[0, 0, 0x04, 0, 0x08, 0, 0, 0, 0, 0, 0, 0],
};

/// Informational Exceptions Control (SPC-5): DEXCPT set, nothing
/// reported.
const INFORMATIONAL_EXCEPTIONS: PageDef = PageDef {
    code: 0x1c,
    default: &[0x1c, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    changeable: &[0; 12],
};

/// Every page, in page code order (the order MODE SENSE returns them).
const PAGES: [&PageDef; 4] = [
    &RW_ERROR_RECOVERY,
    &CACHING,
    &CONTROL,
    &INFORMATIONAL_EXCEPTIONS,
];

/// Page code 3Fh: all pages.
const ALL_PAGES: u8 = 0x3f;

/// The current mode page values of one logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ModePages {
    current: Vec<Vec<u8>>,
}

impl ModePages {
    pub(super) fn new() -> ModePages {
        ModePages {
            current: PAGES.iter().map(|p| p.default.to_vec()).collect(),
        }
    }

    /// Back to the defaults (SAM-5, "Logical unit reset").
    pub(super) fn reset(&mut self) {
        *self = ModePages::new();
    }

    fn page(&self, code: u8) -> &[u8] {
        let i = PAGES.iter().position(|p| p.code == code).unwrap_or(0);
        &self.current[i]
    }

    pub(super) fn descriptor_sense(&self) -> bool {
        self.page(CONTROL.code)[2] & 0x04 != 0
    }

    pub(super) fn software_write_protect(&self) -> bool {
        self.page(CONTROL.code)[4] & 0x08 != 0
    }

    #[allow(dead_code, reason = "read through State::write_cache_enabled")]
    pub(super) fn write_cache_enabled(&self) -> bool {
        self.page(CACHING.code)[2] & 0x04 != 0
    }
}

/// Page control (SPC-5, PC field of MODE SENSE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PageControl {
    Current,
    Changeable,
    Default,
}

/// MODE SENSE(6) and MODE SENSE(10) (SPC-5).
pub fn mode_sense(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let ten = cdb.opcode() == 0x5a;
    let dbd = cdb.bit(1, 3);
    let llbaa = ten && cdb.bit(1, 4);
    let pc = match cdb.u8(2) >> 6 {
        0 => PageControl::Current,
        1 => PageControl::Changeable,
        2 => PageControl::Default,
        _ => {
            return Err(Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED)
                .with_field_pointer(true, 2, Some(7))
                .into());
        }
    };
    let code = cdb.u8(2) & 0x3f;
    let subpage = cdb.u8(3);
    let allocation_length = if ten {
        cdb.be16(7) as usize
    } else {
        cdb.u8(4) as usize
    };
    // Subpage 00h is the page itself; FFh asks for all its subpages, and
    // ours have none beyond 00h.
    if subpage != 0 && subpage != 0xff {
        return Err(Cdb::invalid_field(3, None).into());
    }
    let mut pages = Vec::new();
    for (def, current) in PAGES.iter().zip(&lu.spc.mode.current) {
        if code != ALL_PAGES && code != def.code {
            continue;
        }
        let values = match pc {
            PageControl::Current => current,
            PageControl::Changeable => def.changeable,
            PageControl::Default => def.default,
        };
        // Page code and length, then the values (or the changeable mask).
        pages.extend_from_slice(&def.default[..2]);
        pages.extend_from_slice(&values[2..]);
    }
    if pages.is_empty() {
        return Err(Cdb::invalid_field(2, Some(5)).into());
    }

    let block_descriptor = if dbd {
        Vec::new()
    } else {
        block_descriptor(lu, llbaa, pc == PageControl::Changeable)
    };
    // WP (SBC-4, "Mode parameters overview"), and DPOFUA: DPO and FUA are supported.
    let mut device_specific = 0x10;
    if pc == PageControl::Current && lu.spc.write_protected(&lu.config) {
        device_specific |= 0x80;
    }
    let mut out;
    if ten {
        out = vec![0u8; 8];
        out[3] = device_specific;
        out[4] = if llbaa && !dbd { 0x01 } else { 0 };
        put_be16(&mut out, 6, block_descriptor.len() as u16);
    } else {
        out = vec![0u8; 4];
        out[2] = device_specific;
        out[3] = block_descriptor.len() as u8;
    }
    out.extend_from_slice(&block_descriptor);
    out.extend_from_slice(&pages);
    if ten {
        let len = out.len() - 2;
        put_be16(&mut out, 0, len.min(0xffff) as u16);
    } else {
        out[0] = (out.len() - 1).min(0xff) as u8;
    }
    Ok(truncate(out, allocation_length))
}

/// The mode parameter block descriptor (SBC-4): short (8 bytes) or,
/// with LLBAA, long (16 bytes). Changeable values: nothing.
fn block_descriptor(lu: &LogicalUnit, long: bool, changeable: bool) -> Vec<u8> {
    let (blocks, block_size) = if changeable {
        (0, 0)
    } else {
        (lu.block_count(), lu.config.block_size)
    };
    if long {
        let mut d = vec![0u8; 16];
        put_be64(&mut d, 0, blocks);
        put_be32(&mut d, 12, block_size);
        d
    } else {
        let mut d = vec![0u8; 8];
        put_be32(&mut d, 0, blocks.min(0xffff_ffff) as u32);
        put_be32(&mut d, 4, block_size & 0x00ff_ffff);
        d
    }
}

/// MODE SELECT(6) and MODE SELECT(10) (SPC-5): validates every
/// page against the changeable mask before applying any. A change
/// establishes MODE PARAMETERS CHANGED for the other I_T nexuses (SPC-5
/// "Unit attention conditions").
pub fn mode_select(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let ten = cdb.opcode() == 0x55;
    if cdb.bit(1, 0) {
        // SP: saved pages are not implemented.
        return Err(Cdb::invalid_field(1, Some(0)).into());
    }
    let length = if ten {
        cdb.be16(7) as usize
    } else {
        cdb.u8(4) as usize
    };
    if length == 0 {
        return Ok(Default::default());
    }
    let data = parameter_list(cmd, length);
    let header_len = if ten { 8 } else { 4 };
    if data.len() < length || data.len() < header_len {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let descriptors_len = if ten {
        u16::from_be_bytes([data[6], data[7]]) as usize
    } else {
        data[3] as usize
    };
    let descriptor_at = if ten { 6 } else { 3 };
    let pages_at = header_len + descriptors_len;
    if pages_at > data.len() {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let long = ten && data[4] & 0x01 != 0;
    check_block_descriptors(lu, &data[header_len..pages_at], long, descriptor_at as u16)?;

    let mut updated = lu.spc.mode.clone();
    let mut at = pages_at;
    while at < data.len() {
        if data[at] & 0x40 != 0 {
            // SPF: no subpages are implemented.
            return Err(invalid_parameter(at as u16, Some(6)).into());
        }
        let code = data[at] & 0x3f;
        let Some(index) = PAGES.iter().position(|p| p.code == code) else {
            return Err(invalid_parameter(at as u16, Some(5)).into());
        };
        let def = PAGES[index];
        let Some(&page_length) = data.get(at + 1) else {
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
        };
        if page_length as usize != def.default.len() - 2 {
            return Err(invalid_parameter(at as u16 + 1, None).into());
        }
        let Some(page) = data.get(at..at + def.default.len()) else {
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
        };
        let current = &mut updated.current[index];
        // Byte 0 holds PS (reserved here) and the page code; compare the
        // rest against the changeable mask.
        for i in 2..page.len() {
            let differs = (page[i] ^ current[i]) & !def.changeable[i];
            if differs != 0 {
                let bit = 7 - differs.leading_zeros() as u8;
                return Err(invalid_parameter((at + i) as u16, Some(bit)).into());
            }
        }
        current[2..].copy_from_slice(&page[2..]);
        at += def.default.len();
    }
    if updated != lu.spc.mode {
        lu.spc.mode = updated;
        lu.spc
            .ua
            .establish_others(Some(cmd.nexus), Asc::MODE_PARAMETERS_CHANGED);
    }
    Ok(Default::default())
}

/// Block descriptors in MODE SELECT may restate the capacity and block
/// size, not change them (the number of blocks may be zero: "unchanged").
fn check_block_descriptors(
    lu: &LogicalUnit,
    descriptors: &[u8],
    long: bool,
    length_field: u16,
) -> Result<(), Sense> {
    let size = if long { 16 } else { 8 };
    if descriptors.len() % size != 0 {
        return Err(invalid_parameter(length_field, None));
    }
    for (n, d) in descriptors.chunks(size).enumerate() {
        let (blocks, block_size, block_size_at) = if long {
            (
                u64::from_be_bytes(d[0..8].try_into().unwrap_or([0; 8])),
                u32::from_be_bytes([d[12], d[13], d[14], d[15]]),
                12,
            )
        } else {
            (
                u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64,
                u32::from_be_bytes([0, d[5], d[6], d[7]]),
                5,
            )
        };
        let base = if long { 8 } else { 4 } + n * size;
        let max_blocks = if long {
            lu.block_count()
        } else {
            lu.block_count().min(0xffff_ffff)
        };
        if blocks != 0 && blocks != max_blocks {
            return Err(invalid_parameter(base as u16, None));
        }
        if block_size != 0 && block_size != lu.config.block_size {
            return Err(invalid_parameter((base + block_size_at) as u16, None));
        }
    }
    Ok(())
}
