//! REPORT LUNS, REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK
//! MANAGEMENT FUNCTIONS (SPC-5).
//! The operation codes come from the one command table,
//! [`super::super::commands`].

use super::super::cdb::{Cdb, put_be16, put_be32};
use super::super::command::{Command, Outcome};
use super::super::device::{CommandInfo, Device, LogicalUnit, commands};
use super::truncate;
use crate::pdu::Lun;

/// The recommended command timeout reported with RCTD, in seconds.
const RECOMMENDED_TIMEOUT: u32 = 30;

/// REPORT LUNS: every logical unit of the target, whichever LUN the
/// command was sent to (it works on absent LUNs too).
pub fn report_luns(device: &mut Device, lun: u16, cmd: &Command<'_>) -> Outcome {
    let _ = lun;
    report_luns_data(device, cmd)
}

/// REPORT LUNS parameter data. SELECT REPORT 00h and 02h list every LU,
/// 01h (well known LUs) and 10h-12h (administrative LUs) list none.
pub(super) fn report_luns_data(device: &Device, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let select = cdb.u8(2);
    let allocation_length = cdb.be32(6) as usize;
    let luns: Vec<u16> = match select {
        // Single level LUN addressing reaches indexes below 4000h.
        0x00 | 0x02 => device
            .luns()
            .keys()
            .copied()
            .filter(|&i| i < 0x4000)
            .collect(),
        0x01 | 0x10 | 0x11 | 0x12 => Vec::new(),
        _ => return Err(Cdb::invalid_field(2, None).into()),
    };
    let mut out = vec![0u8; 8];
    put_be32(&mut out, 0, (luns.len() * 8) as u32);
    for index in luns {
        out.extend_from_slice(&Lun::from_index(index).0.to_be_bytes());
    }
    Ok(truncate(out, allocation_length))
}

/// The CDB usage data of a command (SPC-5, "One_command parameter data
/// format"): its usage map with the
/// service action value in place of the mask bits.
fn usage_data(info: &CommandInfo) -> Vec<u8> {
    let mut usage = info.usage.to_vec();
    if let (Some(sa), Some(byte)) = (info.service_action, usage.get_mut(1)) {
        *byte = (*byte & 0xe0) | (sa as u8 & 0x1f);
    }
    usage
}

/// The command timeouts descriptor (SPC-5, "Command timeouts descriptor").
fn timeouts_descriptor() -> [u8; 12] {
    let mut d = [0u8; 12];
    put_be16(&mut d, 0, 0x0a);
    put_be32(&mut d, 8, RECOMMENDED_TIMEOUT);
    d
}

/// Whether the command with this opcode has service actions.
fn has_service_actions(opcode: u8) -> bool {
    commands()
        .iter()
        .any(|c| c.opcode == opcode && c.service_action.is_some())
}

/// REPORT SUPPORTED OPERATION CODES: reporting options 000b (all), 001b
/// (one opcode without service actions), 010b (opcode and service
/// action), 011b (either); RCTD adds command timeouts descriptors.
pub fn report_supported_opcodes(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let _ = lu;
    let cdb = cmd.cdb;
    let rctd = cdb.bit(2, 7);
    let options = cdb.u8(2) & 0x07;
    let opcode = cdb.u8(3);
    let sa = cdb.be16(4);
    let allocation_length = cdb.be32(6) as usize;
    if cdb.u8(2) & 0x78 != 0 {
        return Err(Cdb::invalid_field(2, None).into());
    }
    if options == 0 {
        let mut out = vec![0u8; 4];
        for info in commands() {
            let mut d = [0u8; 8];
            d[0] = info.opcode;
            if let Some(sa) = info.service_action {
                put_be16(&mut d, 2, sa);
                d[5] |= 0x01;
            }
            if rctd {
                d[5] |= 0x02;
            }
            put_be16(&mut d, 6, info.cdb_len() as u16);
            out.extend_from_slice(&d);
            if rctd {
                out.extend_from_slice(&timeouts_descriptor());
            }
        }
        let len = (out.len() - 4) as u32;
        put_be32(&mut out, 0, len);
        return Ok(truncate(out, allocation_length));
    }
    let with_sa = has_service_actions(opcode);
    let found = match options {
        0x01 if with_sa => return Err(Cdb::invalid_field(2, Some(2)).into()),
        0x02 if !with_sa => return Err(Cdb::invalid_field(2, Some(2)).into()),
        0x01 => commands().iter().find(|c| c.opcode == opcode),
        0x02 => commands()
            .iter()
            .find(|c| c.opcode == opcode && c.service_action == Some(sa)),
        0x03 if with_sa => commands()
            .iter()
            .find(|c| c.opcode == opcode && c.service_action == Some(sa)),
        0x03 => commands().iter().find(|c| c.opcode == opcode),
        _ => return Err(Cdb::invalid_field(2, Some(2)).into()),
    };
    let mut out = vec![0u8; 4];
    match found {
        None => out[1] = 0x01,
        Some(info) => {
            // SUPPORT 011b: supported as the standard describes.
            out[1] = 0x03 | if rctd { 0x80 } else { 0 };
            let usage = usage_data(info);
            put_be16(&mut out, 2, usage.len() as u16);
            out.extend(usage);
            if rctd {
                out.extend_from_slice(&timeouts_descriptor());
            }
        }
    }
    Ok(truncate(out, allocation_length))
}

/// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS: ABORT TASK, ABORT TASK SET,
/// CLEAR TASK SET and LOGICAL UNIT RESET (no ACA, no QUERY TASK; the
/// iSCSI target warm/cold resets have no bit). REPD adds the extended
/// format with no timeouts.
pub fn report_supported_tmfs(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let _ = lu;
    let cdb = cmd.cdb;
    let repd = cdb.bit(2, 7);
    let allocation_length = cdb.be32(6) as usize;
    // ATS, ATSS, CTSS, LURS.
    let mut out = vec![0x80 | 0x40 | 0x10 | 0x08, 0, 0, 0];
    if repd {
        out[3] = 0x0c;
        out.resize(16, 0);
    }
    Ok(truncate(out, allocation_length))
}
