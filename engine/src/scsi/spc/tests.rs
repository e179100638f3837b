//! Tests of the SPC side through `Device::execute`, `task_management` and
//! `nexus_lost`, with two I_T nexuses over a memory store. They check what
//! libiscsi's iscsi-test-cu checks: status, sense key/ASC/ASCQ, data bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::super::cdb::Cdb;
use super::super::command::{Command, Failure};
use super::super::device::{Device, LogicalUnit, lookup};
use super::super::sense::{Asc, key};
use super::super::{CommandRequest, CommandResult, LuConfig, Nexus, TaskManagement, status};
use super::gate;
use crate::pdu::{Isid, Lun, TaskAttr};
use crate::store::MemoryStore;

const TARGET: &str = "iqn.2024-01.test.harness:disk";
const BLOCKS: u64 = 8192;

fn config(serial: &str) -> LuConfig {
    LuConfig {
        block_size: 512,
        vendor: "HARNESS".into(),
        product: "MEMDISK".into(),
        revision: "0.1".into(),
        serial: serial.into(),
        removable: true,
        readonly: false,
    }
}

fn device_with(configs: &[(u16, LuConfig)]) -> Device {
    let mut luns = BTreeMap::new();
    for (index, config) in configs {
        let store = Box::new(MemoryStore::new(BLOCKS * config.block_size as u64));
        luns.insert(*index, LogicalUnit::new(config.clone(), store));
    }
    Device::new(luns)
}

fn device() -> Device {
    device_with(&[(0, config("SN-0001"))])
}

fn nexus(initiator: &str, isid: u8) -> Nexus {
    Nexus {
        initiator_name: Arc::from(initiator),
        isid: Isid([0x80, 0, 0, 0, 0, isid]),
        target_name: Arc::from(TARGET),
        target_portal_group_tag: 1,
    }
}

fn i1() -> Nexus {
    nexus("iqn.2024-01.test:init1", 1)
}

fn i2() -> Nexus {
    nexus("iqn.2024-01.test:init2", 2)
}

fn run(dev: &mut Device, n: &Nexus, lun: u16, cdb: &[u8], data: &[u8]) -> CommandResult {
    let mut padded = cdb.to_vec();
    padded.resize(16, 0);
    dev.execute(
        Lun::from_index(lun),
        CommandRequest {
            nexus: n,
            cdb: &padded,
            data_out: Bytes::copy_from_slice(data),
            expected_in_len: 0x10000,
            attr: TaskAttr::Simple,
        },
    )
}

fn exec(dev: &mut Device, n: &Nexus, cdb: &[u8]) -> CommandResult {
    run(dev, n, 0, cdb, &[])
}

fn exec_out(dev: &mut Device, n: &Nexus, cdb: &[u8], data: &[u8]) -> CommandResult {
    run(dev, n, 0, cdb, data)
}

/// Sends TEST UNIT READY until it stops reporting unit attentions (as
/// libiscsi does after login); returns how many it saw.
fn clear_ua(dev: &mut Device, n: &Nexus) -> usize {
    for count in 0..10 {
        let r = exec(dev, n, &TUR);
        if sense(&r).map(|s| s.0) != Some(key::UNIT_ATTENTION) {
            return count;
        }
    }
    panic!("unit attentions do not clear");
}

/// (key, ASC, ASCQ) of a CHECK CONDITION, fixed or descriptor format.
fn sense(r: &CommandResult) -> Option<(u8, u8, u8)> {
    let s = r.sense.as_ref()?;
    Some(match s[0] & 0x7f {
        0x70 | 0x71 => (s[2] & 0x0f, s[12], s[13]),
        _ => (s[1] & 0x0f, s[2], s[3]),
    })
}

fn assert_good(r: &CommandResult) {
    assert_eq!(r.status, status::GOOD, "sense {:?}", sense(r));
}

fn assert_check(r: &CommandResult, k: u8, asc: Asc) {
    assert_eq!(r.status, status::CHECK_CONDITION);
    assert_eq!(sense(r), Some((k, asc.0, asc.1)));
}

fn assert_conflict(r: &CommandResult) {
    assert_eq!(
        r.status,
        status::RESERVATION_CONFLICT,
        "sense {:?}",
        sense(r)
    );
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

const TUR: [u8; 6] = [0x00, 0, 0, 0, 0, 0];

fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
    let [hi, lo] = alloc.to_be_bytes();
    [0x12, evpd as u8, page, hi, lo, 0]
}

fn mode_sense6(pc: u8, page: u8, subpage: u8, alloc: u8) -> [u8; 6] {
    [0x1a, 0, pc << 6 | page, subpage, alloc, 0]
}

/// The result of running the gate for a CDB (handlers not run).
fn gate_for(dev: &mut Device, n: &Nexus, cdb: &[u8]) -> Result<(), Failure> {
    let mut padded = cdb.to_vec();
    padded.resize(16, 0);
    let data = Bytes::new();
    let cmd = Command {
        nexus: n,
        cdb: Cdb(&padded),
        data_out: &data,
        expected_in_len: 0,
        attr: TaskAttr::Simple,
    };
    let info = lookup(&cmd.cdb).expect("known command");
    gate(dev.lun_mut(0).unwrap(), info, &cmd)
}

const READ10: [u8; 10] = [0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0];
const WRITE10: [u8; 10] = [0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0];

// ---- INQUIRY and VPD -------------------------------------------------

#[test]
fn standard_inquiry_data() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(false, 0, 260));
    assert_good(&r);
    let d = &r.data_in;
    assert!(d.len() >= 36);
    assert_eq!(d[0], 0x00, "qualifier 0, direct access");
    assert_eq!(d[1], 0x80, "RMB");
    assert!((4..=6).contains(&d[2]), "libiscsi accepts versions 4-6");
    assert_eq!(d[3] & 0x0f, 2, "response data format");
    assert_eq!(d[3] & 0xc0, 0, "AERC and TRMTSK clear");
    assert_eq!(d[4] as usize, d.len() - 5, "additional length");
    assert_eq!(&d[8..16], b"HARNESS ");
    assert_eq!(&d[16..32], b"MEMDISK         ");
    assert_eq!(&d[32..36], b"0.1 ");
    let descriptors: Vec<u16> = (0..8).map(|i| be16(d, 58 + 2 * i)).collect();
    assert!(descriptors.contains(&0x04c0), "claims SBC-3");
    assert!(descriptors.contains(&0x0960), "claims iSCSI");
    assert_ne!(d[5] & 0x08, 0, "3PC");
}

#[test]
fn inquiry_allocation_lengths() {
    let mut dev = device();
    let full = exec(&mut dev, &i1(), &inquiry(false, 0, 255)).data_in;
    for alloc in 0..300u16 {
        let r = exec(&mut dev, &i1(), &inquiry(false, 0, alloc));
        assert_good(&r);
        assert_eq!(r.data_in.len(), (alloc as usize).min(full.len()));
        assert_eq!(&r.data_in[..], &full[..r.data_in.len()]);
    }
    let a = exec(&mut dev, &i1(), &inquiry(false, 0, 511)).data_in;
    let b = exec(&mut dev, &i1(), &inquiry(false, 0, 512)).data_in;
    assert_eq!(a, b);
}

#[test]
fn inquiry_page_code_without_evpd_is_invalid() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(false, 1, 256));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let s = r.sense.unwrap();
    assert_eq!(s[15], 0x80 | 0x40, "field pointer in the CDB");
    assert_eq!(be16(&s, 16), 2);
    let r = exec(&mut dev, &i1(), &[0x12, 0x02, 0, 0, 255, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &inquiry(true, 0x99, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn supported_vpd_pages_are_sorted_and_readable() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(true, 0, 255));
    assert_good(&r);
    let d = r.data_in;
    assert_eq!(d[1], 0x00);
    let pages = &d[4..4 + be16(&d, 2) as usize];
    assert_eq!(pages, &[0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2]);
    for &page in pages {
        let r = exec(&mut dev, &i1(), &inquiry(true, page, 255));
        assert_good(&r);
        assert_eq!(r.data_in[1], page);
        assert_eq!(r.data_in.len(), be16(&r.data_in, 2) as usize + 4);
    }
}

#[test]
fn unit_serial_number_page() {
    let mut dev = device();
    let d = exec(&mut dev, &i1(), &inquiry(true, 0x80, 255)).data_in;
    assert_eq!(&d[..4], &[0, 0x80, 0, 7]);
    assert_eq!(&d[4..], b"SN-0001");
}

/// Walks the designation descriptors of a Device Identification page.
fn designators(page: &[u8]) -> Vec<(u8, u8, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at < page.len() {
        let len = page[at + 3] as usize;
        out.push((
            page[at] & 0x0f,
            (page[at + 1] >> 4) & 3,
            page[at + 1] & 0x0f,
            page[at + 4..at + 4 + len].to_vec(),
        ));
        at += 4 + len;
    }
    out
}

#[test]
fn device_identification_page() {
    let mut dev = device_with(&[(0, config("SN-0001")), (1, config("SN-0002"))]);
    let a = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let again = exec(&mut dev, &i2(), &inquiry(true, 0x83, 255)).data_in;
    let b = run(&mut dev, &i1(), 1, &inquiry(true, 0x83, 255), &[]).data_in;
    assert_eq!(be16(&a, 2) as usize + 4, a.len());
    let da = designators(&a);
    let naa = &da.iter().find(|d| d.1 == 0 && d.2 == 3).unwrap().3;
    assert_eq!(naa.len(), 16);
    assert_eq!(naa[0] >> 4, 6, "NAA IEEE Registered Extended");
    assert_eq!(da, designators(&again), "stable, and the same target port");
    let naa_b = &designators(&b).into_iter().find(|d| d.2 == 3).unwrap().3;
    assert_ne!(naa, naa_b, "unique per serial");
    let t10 = &da.iter().find(|d| d.1 == 0 && d.2 == 1).unwrap().3;
    assert_eq!(&t10[..8], b"HARNESS ");
    let rel = &da.iter().find(|d| d.1 == 1 && d.2 == 4).unwrap().3;
    assert_eq!(rel, &[0, 0, 0, 1]);
    let port = &da.iter().find(|d| d.1 == 1 && d.2 == 8).unwrap();
    assert_eq!(port.0, 3, "UTF-8");
    assert_eq!(port.3.len() % 4, 0);
    let name = format!("{TARGET},t,0x0001");
    assert_eq!(&port.3[..name.len()], name.as_bytes());
    assert_eq!(port.3[name.len()], 0);
    let device_name = &da.iter().find(|d| d.1 == 2 && d.2 == 8).unwrap().3;
    assert_eq!(&device_name[..TARGET.len()], TARGET.as_bytes());
}

#[test]
fn block_vpd_pages() {
    let mut dev = device();
    let b0 = exec(&mut dev, &i1(), &inquiry(true, 0xb0, 255)).data_in;
    assert_eq!(b0.len(), 64);
    assert_eq!(b0[3], 0x3c);
    assert_ne!(be32(&b0, 20), 0, "MAXIMUM UNMAP LBA COUNT on a thin LU");
    let max_unmap = be32(&b0, 20);
    assert!(max_unmap == u32::MAX || max_unmap <= 1024 * 1024);
    assert_ne!(be32(&b0, 24), 0, "MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT");
    assert!(be32(&b0, 44) <= be32(&b0, 8), "atomic <= max transfer");
    let b1 = exec(&mut dev, &i1(), &inquiry(true, 0xb1, 255)).data_in;
    assert_eq!(be16(&b1, 4), 1, "non-rotating");
    let b2 = exec(&mut dev, &i1(), &inquiry(true, 0xb2, 255)).data_in;
    assert_eq!(b2[5] & 0xe0, 0xe0, "LBPU LBPWS LBPWS10");
    assert_eq!((b2[5] >> 2) & 7, 1, "LBPRZ");
    assert_eq!(b2[6] & 7, 2, "thin provisioned");
}

// ---- unit attentions -------------------------------------------------

#[test]
fn first_contact_reports_power_on_once() {
    let mut dev = device();
    // INQUIRY, REPORT LUNS and REQUEST SENSE's peers do not consume it.
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(
        &mut dev,
        &i1(),
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ));
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_good(&exec(&mut dev, &i1(), &TUR));
    // Another nexus has its own.
    assert_eq!(clear_ua(&mut dev, &i2()), 1);
}

#[test]
fn request_sense_returns_and_clears_unit_attention() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 252, 0]);
    assert_good(&r);
    assert_eq!(r.data_in[0], 0x70);
    assert_eq!(r.data_in[2], key::UNIT_ATTENTION);
    assert_eq!((r.data_in[12], r.data_in[13]), (0x29, 0x00));
    let r = exec(&mut dev, &i1(), &[0x03, 1, 0, 0, 252, 0]);
    assert_eq!(
        &r.data_in[..4],
        &[0x72, 0, 0, 0],
        "descriptor format, no sense"
    );
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 8, 0]);
    assert_eq!(r.data_in.len(), 8);
}

#[test]
fn lun_reset_unit_attention_reaches_every_nexus() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset);
    for n in [i1(), i2()] {
        let r = exec(&mut dev, &n, &TUR);
        assert_check(
            &r,
            key::UNIT_ATTENTION,
            Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
        );
        assert_good(&exec(&mut dev, &n, &TUR));
    }
    // A reset of another LUN leaves this one alone.
    dev.task_management(&i1(), Lun::from_index(5), TaskManagement::LogicalUnitReset);
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn clear_task_set_tells_the_other_nexuses() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::ClearTaskSet);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR,
    );
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::AbortTaskSet);
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::ClearAca);
    assert_good(&exec(&mut dev, &i2(), &TUR));
}

#[test]
fn reset_supersedes_pending_unit_attentions() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    set_control_bit(&mut dev, &i1(), 2, 0x04, true);
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset);
    let lu = dev.lun_mut(0).unwrap();
    assert_eq!(
        lu.spc.ua.pending(&i2()),
        vec![Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET]
    );
    assert!(!lu.spc.descriptor_sense(), "mode pages back to defaults");
}

#[test]
fn nexus_loss_is_reported_when_the_nexus_returns() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    dev.nexus_lost(&i1());
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::I_T_NEXUS_LOSS_OCCURRED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

// ---- mode pages ------------------------------------------------------

/// (page code, page bytes) of MODE SENSE(6) data.
fn mode_pages(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut at = 4 + data[3] as usize;
    let mut out = Vec::new();
    while at + 2 <= data.len() {
        let len = data[at + 1] as usize + 2;
        out.push((data[at] & 0x3f, data[at..at + len].to_vec()));
        at += len;
    }
    out
}

fn control_page(dev: &mut Device, n: &Nexus, pc: u8) -> Vec<u8> {
    let r = exec(dev, n, &mode_sense6(pc, 0x0a, 0, 255));
    assert_good(&r);
    let pages = mode_pages(&r.data_in);
    assert_eq!(pages.len(), 1);
    pages[0].1.clone()
}

/// MODE SELECT(6) of the control page with one bit changed.
fn set_control_bit(dev: &mut Device, n: &Nexus, byte: usize, mask: u8, on: bool) -> CommandResult {
    let mut page = control_page(dev, n, 0);
    if on {
        page[byte] |= mask;
    } else {
        page[byte] &= !mask;
    }
    let mut data = vec![0u8; 4];
    data.extend(page);
    exec_out(dev, n, &[0x15, 0x10, 0, 0, data.len() as u8, 0], &data)
}

#[test]
fn mode_sense_all_pages() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(d[0] as usize, d.len() - 1, "mode data length");
    assert_eq!(d[2], 0x10, "DPOFUA, not write protected");
    assert_eq!(d[3], 8, "one short block descriptor");
    assert_eq!(be32(d, 4) as u64, BLOCKS);
    assert_eq!(be32(d, 8), 512);
    let codes: Vec<u8> = mode_pages(d).iter().map(|p| p.0).collect();
    assert_eq!(codes, vec![0x01, 0x08, 0x0a, 0x1c]);
    let control = control_page(&mut dev, &i1(), 0);
    let from_all = &mode_pages(d).into_iter().find(|p| p.0 == 0x0a).unwrap().1;
    assert_eq!(&control, from_all);
    assert_eq!(control[1], 0x0a);
    // Subpage FFh returns the same pages; other subpages are invalid.
    let all_sub = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0xff, 255));
    assert_eq!(all_sub.data_in, r.data_in);
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x0a, 0x01, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x05, 0, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn mode_sense_residual_and_page_controls() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 4));
    assert_good(&r);
    assert_eq!(r.data_in.len(), 4);
    let changeable = control_page(&mut dev, &i1(), 1);
    assert_eq!(changeable[2], 0x04, "D_SENSE changeable");
    assert_eq!(changeable[4], 0x08, "SWP changeable");
    let default = control_page(&mut dev, &i1(), 2);
    assert_eq!(default, control_page(&mut dev, &i1(), 0));
    let r = exec(&mut dev, &i1(), &mode_sense6(3, 0x3f, 0, 255));
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::SAVING_PARAMETERS_NOT_SUPPORTED,
    );
    // DBD drops the block descriptor.
    let r = exec(&mut dev, &i1(), &[0x1a, 0x08, 0x3f, 0, 255, 0]);
    assert_eq!(r.data_in[3], 0);
    // MODE SENSE(10) with LLBAA: a long descriptor.
    let r = exec(&mut dev, &i1(), &[0x5a, 0x10, 0x3f, 0, 0, 0, 0, 1, 0, 0]);
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be16(d, 0) as usize, d.len() - 2);
    assert_eq!(d[4] & 1, 1, "LONGLBA");
    assert_eq!(be16(d, 6), 16);
    assert_eq!(be64(d, 8), BLOCKS);
    assert_eq!(be32(d, 20), 512);
}

#[test]
fn d_sense_switches_the_sense_format() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    let bad = [0x12, 0, 1, 0, 255, 0];
    assert_eq!(exec(&mut dev, &i1(), &bad).sense.unwrap()[0], 0x70);
    assert_good(&set_control_bit(&mut dev, &i1(), 2, 0x04, true));
    assert_ne!(control_page(&mut dev, &i1(), 0)[2] & 0x04, 0);
    let r = exec(&mut dev, &i1(), &bad);
    assert_eq!(r.sense.as_ref().unwrap()[0], 0x72);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    // The issuer sees no unit attention; the other nexus does.
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::MODE_PARAMETERS_CHANGED);
    assert_good(&set_control_bit(&mut dev, &i1(), 2, 0x04, false));
    assert_eq!(exec(&mut dev, &i1(), &bad).sense.unwrap()[0], 0x70);
}

#[test]
fn mode_select_rejects_unchangeable_fields() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = set_control_bit(&mut dev, &i1(), 2, 0x20, true);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    let s = r.sense.unwrap();
    assert_eq!(s[15], 0x80 | 0x08 | 5, "parameter list, bit 5");
    assert_eq!(be16(&s, 16), 4 + 2);
    // SP is not supported; a short list is a length error; length 0 is a
    // no-op.
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x11, 0, 0, 4, 0], &[0; 4]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 16, 0], &[0; 2]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    assert_good(&exec(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 0, 0]));
    // An unknown page.
    let data = [0, 0, 0, 0, 0x05, 0x02, 0, 0];
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 8, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    // A block descriptor restating the geometry is accepted.
    let mut data = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0];
    data.extend(control_page(&mut dev, &i1(), 0));
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x15, 0x10, 0, 0, data.len() as u8, 0],
        &data,
    );
    assert_good(&r);
    data[10] = 4;
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x15, 0x10, 0, 0, data.len() as u8, 0],
        &data,
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn software_write_protect() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&set_control_bit(&mut dev, &i1(), 4, 0x08, true));
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_eq!(r.data_in[2] & 0x80, 0x80, "WP");
    assert!(gate_for(&mut dev, &i1(), &READ10).is_ok());
    let r = exec_out(&mut dev, &i1(), &WRITE10, &[0; 512]);
    assert_check(&r, key::DATA_PROTECT, Asc(0x27, 0x02));
    assert_good(&set_control_bit(&mut dev, &i1(), 4, 0x08, false));
    assert!(gate_for(&mut dev, &i1(), &WRITE10).is_ok());
}

#[test]
fn readonly_unit() {
    let mut readonly = config("SN-RO");
    readonly.readonly = true;
    let mut dev = device_with(&[(0, readonly)]);
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_eq!(r.data_in[2] & 0x80, 0x80, "WP");
    for cdb in [
        &WRITE10[..],
        &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0],
        &[0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    ] {
        let r = exec_out(&mut dev, &i1(), cdb, &[0; 1024]);
        assert_check(&r, key::DATA_PROTECT, Asc::WRITE_PROTECTED);
    }
}

// ---- medium ----------------------------------------------------------

fn start_stop(immed: bool, pc: u8, loej: bool, start: bool) -> [u8; 6] {
    [
        0x1b,
        immed as u8,
        0,
        0,
        pc << 4 | (loej as u8) << 1 | start as u8,
        0,
    ]
}

fn prevent(on: bool) -> [u8; 6] {
    [0x1e, 0, 0, 0, on as u8, 0]
}

fn assert_no_medium(r: &CommandResult) {
    assert_check(r, key::NOT_READY, Asc::MEDIUM_NOT_PRESENT);
}

#[test]
fn eject_and_load() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &start_stop(true, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_no_medium(&exec(&mut dev, &i1(), &READ10));
    assert_no_medium(&exec(&mut dev, &i1(), &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_no_medium(&exec(&mut dev, &i1(), &[0x35, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    // Non-medium commands still work.
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255)));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 18, 0]);
    assert_eq!((r.data_in[2], r.data_in[12]), (key::NOT_READY, 0x3a));
    assert_good(&exec(&mut dev, &i1(), &start_stop(true, 0, true, true)));
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn stop_without_loej_and_power_conditions_keep_the_unit_ready() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    for (immed, loej, start) in [(false, false, false), (true, false, true)] {
        assert_good(&exec(&mut dev, &i1(), &start_stop(immed, 0, loej, start)));
        assert_good(&exec(&mut dev, &i1(), &TUR));
    }
    for pc in 1..16 {
        assert_good(&exec(&mut dev, &i1(), &start_stop(true, pc, true, false)));
        assert_good(&exec(&mut dev, &i1(), &TUR));
    }
}

#[test]
fn prevent_allow_eject_sequence() {
    // libiscsi PreventAllow.Eject.
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, true));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, true)));
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn prevent_blocks_eject_from_every_nexus() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // Allowing from the other nexus does not lift this one's prevention.
    assert_good(&exec(&mut dev, &i2(), &prevent(false)));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // Loading is refused too (libiscsi PreventAllow.Eject).
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, true));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i1(), &[0x1e, 0, 0, 0, 2, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn prevented_eject_is_reported_before_a_unit_attention() {
    // libiscsi PreventAllow.LUNReset then .2ITNexuses with two sessions.
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset);
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // The unit attention is still there for the next command.
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
}

#[test]
fn resets_and_nexus_loss_lift_prevention() {
    for how in 0..5 {
        let mut dev = device();
        clear_ua(&mut dev, &i1());
        assert_good(&exec(&mut dev, &i1(), &prevent(true)));
        let mut who = i1();
        match how {
            0 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset),
            1 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset),
            2 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset),
            3 => {
                dev.nexus_lost(&i1());
                who = nexus("iqn.2024-01.test:init1", 9);
            }
            _ => {
                // Logout, then a new session from the same initiator.
                dev.nexus_lost(&i1());
                who = i1();
            }
        }
        assert!(clear_ua(&mut dev, &who) >= 1);
        assert_good(&exec(&mut dev, &who, &start_stop(false, 0, true, false)));
        assert_no_medium(&exec(&mut dev, &who, &TUR));
        assert_good(&exec(&mut dev, &who, &start_stop(false, 0, true, true)));
    }
}

#[test]
fn fixed_unit_rejects_loej() {
    let mut fixed = config("SN-FIXED");
    fixed.removable = false;
    let mut dev = device_with(&[(0, fixed)]);
    clear_ua(&mut dev, &i1());
    assert_eq!(exec(&mut dev, &i1(), &inquiry(false, 0, 36)).data_in[1], 0);
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, false, true)));
}

// ---- RESERVE / RELEASE -----------------------------------------------

const RESERVE6: [u8; 6] = [0x16, 0, 0, 0, 0, 0];
const RELEASE6: [u8; 6] = [0x17, 0, 0, 0, 0, 0];

#[test]
fn reserve6_two_initiators() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    assert_good(&exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255)));
    assert_conflict(&exec(&mut dev, &i2(), &mode_sense6(0, 0x3f, 0, 255)));
    assert_conflict(&exec(&mut dev, &i2(), &TUR));
    assert_conflict(&exec(&mut dev, &i2(), &READ10));
    assert_good(&exec(&mut dev, &i2(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i2(), &[0x03, 0, 0, 0, 18, 0]));
    assert_good(&exec(
        &mut dev,
        &i2(),
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i1(), &RELEASE6));
    assert_good(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_good(&exec(&mut dev, &i1(), &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    let r = exec(&mut dev, &i1(), &[0x16, 0x01, 0, 0, 0, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn reserve6_released_by_loss_and_resets() {
    for how in 0..4 {
        let mut dev = device();
        clear_ua(&mut dev, &i1());
        clear_ua(&mut dev, &i2());
        assert_good(&exec(&mut dev, &i1(), &RESERVE6));
        assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
        match how {
            0 => dev.nexus_lost(&i1()),
            1 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset),
            2 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset),
            _ => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset),
        }
        clear_ua(&mut dev, &i2());
        assert_good(&exec(&mut dev, &i2(), &RESERVE6));
        assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    }
}

#[test]
fn unit_attention_comes_before_reservation_conflict() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    // A login's TEST UNIT READY loop clears the UA even while reserved.
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_conflict(&exec(&mut dev, &i2(), &TUR));
}

// ---- PERSISTENT RESERVE ----------------------------------------------

fn prin(sa: u8, alloc: u16) -> [u8; 10] {
    let [hi, lo] = alloc.to_be_bytes();
    [0x5e, sa, 0, 0, 0, 0, 0, hi, lo, 0]
}

fn prout(dev: &mut Device, n: &Nexus, sa: u8, kind: u8, key: u64, sark: u64) -> CommandResult {
    let mut data = [0u8; 24];
    data[..8].copy_from_slice(&key.to_be_bytes());
    data[8..16].copy_from_slice(&sark.to_be_bytes());
    exec_out(dev, n, &[0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0], &data)
}

const REGISTER: u8 = 0;
const RESERVE: u8 = 1;
const RELEASE: u8 = 2;
const CLEAR: u8 = 3;
const PREEMPT: u8 = 4;
const REGISTER_AND_IGNORE: u8 = 6;
const TYPES: [u8; 6] = [1, 3, 5, 6, 7, 8];

fn read_keys(dev: &mut Device, n: &Nexus) -> (u32, Vec<u64>) {
    let r = exec(dev, n, &prin(0, 16384));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 4) as usize, d.len() - 8);
    (
        be32(d, 0),
        (8..d.len()).step_by(8).map(|at| be64(d, at)).collect(),
    )
}

/// (key, type) of the reservation, if any.
fn read_reservation(dev: &mut Device, n: &Nexus) -> Option<(u64, u8)> {
    let r = exec(dev, n, &prin(1, 16384));
    assert_good(&r);
    let d = &r.data_in;
    match be32(d, 4) {
        0 => None,
        16 => Some((be64(d, 8), d[21] & 0x0f)),
        other => panic!("additional length {other}"),
    }
}

fn registered_pair() -> Device {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0xa1));
    assert_good(&prout(&mut dev, &i2(), REGISTER_AND_IGNORE, 0, 0, 0xb2));
    dev
}

#[test]
fn register_read_keys_and_unregister() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let (gen0, keys) = read_keys(&mut dev, &i1());
    assert!(keys.is_empty());
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x1234));
    assert_eq!(read_keys(&mut dev, &i1()), (gen0 + 1, vec![0x1234]));
    // Re-registering with a wrong reservation key conflicts.
    assert_conflict(&prout(&mut dev, &i1(), REGISTER, 0, 0, 0x1235));
    // Unregistered nexuses may not name a key.
    clear_ua(&mut dev, &i2());
    assert_conflict(&prout(&mut dev, &i2(), REGISTER, 0, 7, 8));
    assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0, 0));
    assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0x1234, 0x99));
    assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0x99, 0));
    let (generation, keys) = read_keys(&mut dev, &i1());
    assert_eq!((generation, keys), (gen0 + 3, vec![]));
}

#[test]
fn read_keys_truncated_keeps_additional_length() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x55));
    let r = exec(&mut dev, &i1(), &prin(0, 8));
    assert_good(&r);
    assert_eq!(r.data_in.len(), 8);
    assert_eq!(be32(&r.data_in, 4), 8);
}

#[test]
fn prin_service_action_range() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    for sa in 0..4 {
        assert_good(&exec(&mut dev, &i1(), &prin(sa, 16384)));
    }
    for sa in 4..0x20 {
        let r = exec(&mut dev, &i1(), &prin(sa, 16384));
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    }
}

#[test]
fn report_capabilities_and_every_type() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &prin(2, 16384));
    let d = &r.data_in;
    assert_eq!(be16(d, 0), 8);
    assert_ne!(d[2] & 0x10, 0, "CRH");
    assert_eq!(d[2] & 0x0d, 0, "no SIP_C, ATP_C, PTPL_C");
    assert!((d[3] >> 4) & 7 <= 5);
    assert_eq!(be16(d, 4), 0xea01);
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x77));
    let (generation, _) = read_keys(&mut dev, &i1());
    for kind in TYPES {
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0x77, 0));
        let expected_key = if kind >= 7 { 0 } else { 0x77 };
        assert_eq!(
            read_reservation(&mut dev, &i1()),
            Some((expected_key, kind))
        );
        // Reserving again with the same type is fine; another conflicts.
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0x77, 0));
        let other = if kind == 1 { 3 } else { 1 };
        assert_conflict(&prout(&mut dev, &i1(), RESERVE, other, 0x77, 0));
        let r = prout(&mut dev, &i1(), RELEASE, other, 0x77, 0);
        assert_check(&r, key::ILLEGAL_REQUEST, Asc(0x26, 0x04));
        assert_good(&prout(&mut dev, &i1(), RELEASE, kind, 0x77, 0));
        assert_eq!(read_reservation(&mut dev, &i1()), None);
    }
    assert_eq!(
        read_keys(&mut dev, &i1()).0,
        generation,
        "RESERVE/RELEASE keep it"
    );
    let r = prout(&mut dev, &i1(), RESERVE, 2, 0x77, 0);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = prout(&mut dev, &i1(), RESERVE, 0x21, 0x77, 0);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn persistent_reservation_access_matrix() {
    // (type, registered i2 reads, writes, unregistered i2 reads, writes),
    // as libiscsi's ProutReserve Access tests expect.
    let expected = [
        (3, false, false, false, false),
        (1, true, false, true, false),
        (6, true, true, false, false),
        (5, true, true, true, false),
        (8, true, true, false, false),
        (7, true, true, true, false),
    ];
    for (kind, reg_read, reg_write, unreg_read, unreg_write) in expected {
        let mut dev = registered_pair();
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0xa1, 0));
        assert!(gate_for(&mut dev, &i1(), &READ10).is_ok());
        assert!(gate_for(&mut dev, &i1(), &WRITE10).is_ok());
        let conflict = Err(Failure::Status(status::RESERVATION_CONFLICT));
        let check = |dev: &mut Device, cdb: &[u8], allowed: bool| {
            let got = gate_for(dev, &i2(), cdb);
            if allowed {
                assert!(got.is_ok(), "type {kind} {cdb:02x?}");
            } else {
                assert_eq!(got, conflict, "type {kind} {cdb:02x?}");
            }
        };
        check(&mut dev, &READ10, reg_read);
        check(&mut dev, &WRITE10, reg_write);
        assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
        check(&mut dev, &READ10, unreg_read);
        check(&mut dev, &WRITE10, unreg_write);
        // Always allowed: INQUIRY, TEST UNIT READY, PERSISTENT RESERVE IN.
        assert_good(&exec(&mut dev, &i2(), &inquiry(false, 0, 36)));
        assert_good(&exec(&mut dev, &i2(), &TUR));
        assert_good(&exec(&mut dev, &i2(), &prin(0, 100)));
        assert_good(&prout(&mut dev, &i1(), RELEASE, kind, 0xa1, 0));
        assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0xa1, 0));
    }
}

#[test]
fn persistent_reservation_ownership() {
    for kind in TYPES {
        let mut dev = registered_pair();
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0xa1, 0));
        assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0xa1, 0));
        if kind >= 7 {
            // All registrants: the reservation stays with i2.
            assert_eq!(read_reservation(&mut dev, &i1()), Some((0, kind)));
            assert_good(&exec(&mut dev, &i2(), &TUR));
            assert_good(&prout(&mut dev, &i2(), RELEASE, kind, 0xb2, 0));
        } else {
            assert_eq!(read_reservation(&mut dev, &i1()), None);
            let r = exec(&mut dev, &i2(), &TUR);
            if kind >= 5 {
                assert_check(&r, key::UNIT_ATTENTION, Asc::RESERVATIONS_RELEASED);
            } else {
                assert_good(&r);
            }
        }
        assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
        assert_eq!(read_keys(&mut dev, &i1()).1, vec![]);
    }
}

#[test]
fn clear_removes_everything_and_bumps_generation_once() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 3, 0xa1, 0));
    let (generation, keys) = read_keys(&mut dev, &i1());
    assert_eq!(keys.len(), 2);
    assert_conflict(&prout(&mut dev, &i1(), CLEAR, 0, 0xa2, 0));
    assert_good(&prout(&mut dev, &i1(), CLEAR, 0, 0xa1, 0));
    assert_eq!(read_reservation(&mut dev, &i1()), None);
    assert_eq!(read_keys(&mut dev, &i1()), (generation + 1, vec![]));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::RESERVATIONS_PREEMPTED);
}

#[test]
fn preempt_removes_registration() {
    let mut dev = registered_pair();
    let (generation, _) = read_keys(&mut dev, &i1());
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0xa1));
    assert_eq!(read_keys(&mut dev, &i2()), (generation + 1, vec![0xb2]));
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::REGISTRATIONS_PREEMPTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    // An unknown key conflicts; key 0 without a reservation is invalid.
    assert_conflict(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0x999));
    let r = prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn preempt_takes_over_the_reservation() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0xa1));
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xb2, 3)));
    assert_check(
        &exec(&mut dev, &i1(), &TUR),
        key::UNIT_ATTENTION,
        Asc::REGISTRATIONS_PREEMPTED,
    );
    assert_eq!(
        gate_for(&mut dev, &i1(), &READ10),
        Err(Failure::Status(status::RESERVATION_CONFLICT))
    );
    // All registrants: PREEMPT with key 0 removes every other registrant.
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 8, 0xa1, 0));
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 1, 0xb2, 0));
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xb2, 1)));
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xb2]);
}

#[test]
fn read_full_status_lists_transport_ids() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    let r = exec(&mut dev, &i1(), &prin(3, 16384));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 4) as usize, d.len() - 8);
    let mut at = 8;
    let mut seen = Vec::new();
    while at < d.len() {
        let key = be64(d, at);
        let holder = d[at + 12] & 1 != 0;
        assert_eq!(be16(d, at + 18), 1, "relative target port");
        let id_len = be32(d, at + 20) as usize;
        let id = &d[at + 24..at + 24 + id_len];
        assert_eq!(id[0], 0x45, "iSCSI, initiator port format");
        assert_eq!(be16(id, 2) as usize, id.len() - 4);
        assert_eq!(id.len() % 4, 0);
        let name: Vec<u8> = id[4..].iter().copied().take_while(|&b| b != 0).collect();
        seen.push((key, holder, String::from_utf8(name).unwrap(), d[at + 13]));
        at += 24 + id_len;
    }
    assert_eq!(
        seen,
        vec![
            (0xa1, true, i1().initiator_port_name(), 1),
            (0xb2, false, i2().initiator_port_name(), 0),
        ]
    );
}

#[test]
fn prout_parameter_checks() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x5f, 6, 0, 0, 0, 0, 0, 0, 20, 0],
        &[0; 20],
    );
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    let mut data = [0u8; 24];
    data[15] = 1;
    data[20] = 0x01;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 6, 0, 0, 0, 0, 0, 0, 24, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    data[20] = 0x04;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 6, 0, 0, 0, 0, 0, 0, 24, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn register_and_move_hands_over_the_reservation() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    let target = nexus("iqn.2024-01.test:init3", 3);
    let mut id = vec![0x45, 0, 0, 0];
    id.extend(target.initiator_port_name().bytes());
    id.push(0);
    while id.len() % 4 != 0 || id.len() < 24 {
        id.push(0);
    }
    let len = (id.len() - 4) as u16;
    id[2..4].copy_from_slice(&len.to_be_bytes());
    let mut data = vec![0u8; 24];
    data[..8].copy_from_slice(&0xa1u64.to_be_bytes());
    data[8..16].copy_from_slice(&0xc3u64.to_be_bytes());
    data[17] = 0x02;
    data[19] = 1;
    data[20..24].copy_from_slice(&(id.len() as u32).to_be_bytes());
    data.extend(id);
    let n = data.len() as u8;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 7, 1, 0, 0, 0, 0, 0, n, 0], &data);
    assert_good(&r);
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xc3, 1)));
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xb2, 0xc3]);
    // The old holder is gone (UNREG) and may not move it again.
    let r = exec_out(&mut dev, &i1(), &[0x5f, 7, 1, 0, 0, 0, 0, 0, n, 0], &data);
    assert_conflict(&r);
}

#[test]
fn reserve6_and_persistent_reservations_interact() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    assert_good(&prout(&mut dev, &i1(), RELEASE, 1, 0xa1, 0));
    // An ordinary reservation blocks another nexus's PERSISTENT RESERVE
    // OUT but not its PERSISTENT RESERVE IN.
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
    assert_good(&exec(&mut dev, &i2(), &prin(0, 100)));
}

#[test]
fn registrations_survive_resets_and_nexus_loss() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 3, 0xa1, 0));
    dev.task_management(&i2(), Lun::from_index(0), TaskManagement::TargetColdReset);
    dev.nexus_lost(&i1());
    clear_ua(&mut dev, &i2());
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xa1, 0xb2]);
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xa1, 3)));
}

// ---- REPORT LUNS, opcodes, TMFs, absent LUNs ---------------------------

fn report_luns(select: u8, alloc: u32) -> [u8; 12] {
    let a = alloc.to_be_bytes();
    [0xa0, 0, select, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
}

#[test]
fn report_luns_select_report() {
    let mut dev = device_with(&[(0, config("A")), (3, config("B")), (300, config("C"))]);
    let r = exec(&mut dev, &i1(), &report_luns(0, 4096));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0), 24);
    assert_eq!(be64(d, 8), 0);
    assert_eq!(be64(d, 16), 3 << 48);
    assert_eq!(be64(d, 24), (0x4000 | 300) << 48);
    assert_eq!(
        exec(&mut dev, &i1(), &report_luns(2, 4096)).data_in,
        r.data_in
    );
    assert_eq!(
        &exec(&mut dev, &i1(), &report_luns(1, 4096)).data_in[..],
        &[0; 8]
    );
    let r = exec(&mut dev, &i1(), &report_luns(0, 16));
    assert_eq!(r.data_in.len(), 16);
    assert_eq!(be32(&r.data_in, 0), 24);
    let r = exec(&mut dev, &i1(), &report_luns(7, 4096));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn absent_lun_answers() {
    let mut dev = device_with(&[(1, config("A"))]);
    let r = run(&mut dev, &i1(), 0, &inquiry(false, 0, 96), &[]);
    assert_good(&r);
    assert_eq!(r.data_in[0], 0x7f);
    assert_eq!(r.data_in[4] as usize, r.data_in.len() - 5);
    let r = run(&mut dev, &i1(), 0, &report_luns(0, 4096), &[]);
    assert_good(&r);
    assert_eq!(be64(&r.data_in, 8), 1 << 48);
    let r = run(&mut dev, &i1(), 0, &TUR, &[]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let r = run(&mut dev, &i1(), 7, &READ10, &[]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let r = run(&mut dev, &i1(), 0, &[0x03, 0, 0, 0, 18, 0], &[]);
    assert_good(&r);
    assert_eq!((r.data_in[2], r.data_in[12]), (key::ILLEGAL_REQUEST, 0x25));
    let r = run(&mut dev, &i1(), 0, &inquiry(true, 0, 96), &[]);
    assert_eq!(&r.data_in[..], &[0x7f, 0, 0, 1, 0]);
}

fn rsoc(rctd: bool, options: u8, opcode: u8, sa: u16, alloc: u32) -> [u8; 12] {
    let [sh, sl] = sa.to_be_bytes();
    let a = alloc.to_be_bytes();
    [
        0xa3,
        0x0c,
        (rctd as u8) << 7 | options,
        opcode,
        sh,
        sl,
        a[0],
        a[1],
        a[2],
        a[3],
        0,
        0,
    ]
}

/// (opcode, service action, SERVACTV, CTDP, CDB length) of each
/// descriptor of an "all commands" report.
fn all_commands(d: &[u8]) -> Vec<(u8, u16, bool, bool, u16)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at < d.len() {
        let ctdp = d[at + 5] & 2 != 0;
        out.push((
            d[at],
            be16(d, at + 2),
            d[at + 5] & 1 != 0,
            ctdp,
            be16(d, at + 6),
        ));
        at += if ctdp { 20 } else { 8 };
    }
    out
}

#[test]
fn report_supported_opcodes_all() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 65535));
    assert_good(&r);
    assert_eq!(be32(&r.data_in, 0) as usize, r.data_in.len() - 4);
    let plain = all_commands(&r.data_in);
    assert_eq!(plain.len(), super::super::commands().len());
    assert!(plain.iter().all(|c| !c.3 && (c.2 || c.1 == 0)));
    assert!(plain.contains(&(0x5e, 3, true, false, 10)));
    assert!(plain.contains(&(0x28, 0, false, false, 10)));
    let r = exec(&mut dev, &i1(), &rsoc(true, 0, 0, 0, 65535));
    let timed = all_commands(&r.data_in);
    assert_eq!(timed.len(), plain.len());
    let mut at = 4;
    while at < r.data_in.len() {
        assert_eq!(be16(&r.data_in, at + 8), 0x0a, "timeouts descriptor length");
        at += 20;
    }
    let r = exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 1024));
    assert_eq!(r.data_in.len(), 1024.min(4 + 8 * plain.len()));
}

#[test]
fn report_supported_opcodes_one_command() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let all = all_commands(&exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 65535)).data_in);
    for (opcode, sa, servactv, _, cdb_len) in all {
        let (good, bad) = if servactv { (2, 1) } else { (1, 2) };
        let r = exec(&mut dev, &i1(), &rsoc(false, bad, opcode, sa, 65535));
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
        let r = exec(&mut dev, &i1(), &rsoc(false, good, opcode, sa, 65535));
        assert_good(&r);
        let d = &r.data_in;
        assert_eq!(d[1] & 7, 3, "supported");
        assert_eq!(be16(d, 2), cdb_len);
        assert_eq!(d[4], opcode);
        if servactv {
            assert_eq!((d[5] & 0x1f) as u16, sa);
        }
        let r = exec(&mut dev, &i1(), &rsoc(true, 3, opcode, sa, 65535));
        assert_eq!(r.data_in[1], 0x83);
        assert_eq!(r.data_in.len(), 4 + cdb_len as usize + 12);
    }
    // READ(10) usage data advertises DPO and FUA.
    let r = exec(&mut dev, &i1(), &rsoc(false, 1, 0x28, 0, 65535));
    assert_eq!(r.data_in[5] & 0x18, 0x18);
    // Unsupported opcode: SUPPORT 001b.
    let r = exec(&mut dev, &i1(), &rsoc(false, 1, 0xe7, 0, 65535));
    assert_eq!(&r.data_in[..], &[0, 1, 0, 0]);
    let r = exec(&mut dev, &i1(), &rsoc(false, 2, 0x5e, 9, 65535));
    assert_eq!(&r.data_in[..], &[0, 1, 0, 0]);
    let r = exec(&mut dev, &i1(), &rsoc(false, 5, 0x28, 0, 65535));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn report_supported_tmfs() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(
        &mut dev,
        &i1(),
        &[0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0],
    );
    assert_eq!(&r.data_in[..], &[0xd8, 0, 0, 0]);
    let r = exec(
        &mut dev,
        &i1(),
        &[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 255, 0, 0],
    );
    assert_eq!(r.data_in.len(), 16);
    assert_eq!(r.data_in[3], 0x0c);
}

// ---- EXTENDED COPY ---------------------------------------------------

/// The identification CSCD descriptor for the LU whose VPD 83h is `vpd`.
fn cscd(vpd: &[u8], lu_id_type: u8, nul: bool) -> Vec<u8> {
    let naa = designators(vpd)
        .into_iter()
        .find(|d| d.1 == 0 && d.2 == 3)
        .unwrap();
    let mut d = vec![0u8; 32];
    d[0] = 0xe4;
    d[1] = lu_id_type << 6 | (nul as u8) << 5;
    d[4] = naa.0;
    d[5] = naa.2;
    d[7] = naa.3.len() as u8;
    d[8..8 + naa.3.len()].copy_from_slice(&naa.3);
    d[30] = 0x02;
    d
}

fn segment(src: u16, dst: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
    let mut d = vec![0x02, 0, 0, 0x18];
    d.extend(src.to_be_bytes());
    d.extend(dst.to_be_bytes());
    d.extend([0, 0]);
    d.extend(blocks.to_be_bytes());
    d.extend(src_lba.to_be_bytes());
    d.extend(dst_lba.to_be_bytes());
    d
}

fn xcopy_list(list_id: u8, usage: u8, cscds: &[Vec<u8>], segments: &[Vec<u8>]) -> Vec<u8> {
    let cscd_len: usize = cscds.iter().map(Vec::len).sum();
    let seg_len: usize = segments.iter().map(Vec::len).sum();
    let mut data = vec![0u8; 16];
    data[0] = list_id;
    data[1] = usage << 3;
    data[2..4].copy_from_slice(&(cscd_len as u16).to_be_bytes());
    data[8..12].copy_from_slice(&(seg_len as u32).to_be_bytes());
    for d in cscds.iter().chain(segments) {
        data.extend_from_slice(d);
    }
    data
}

fn xcopy(dev: &mut Device, n: &Nexus, data: &[u8]) -> CommandResult {
    let len = (data.len() as u32).to_be_bytes();
    let cdb = [
        0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, len[0], len[1], len[2], len[3], 0, 0,
    ];
    exec_out(dev, n, &cdb, data)
}

fn copy_results(sa: u8, list_id: u8) -> [u8; 16] {
    [0x84, sa, list_id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]
}

#[test]
fn extended_copy_copies_blocks() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let pattern: Vec<u8> = (0..2048 * 512).map(|i| (i % 251) as u8).collect();
    dev.lun_mut(0).unwrap().store.write_at(0, &pattern).unwrap();
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let data = xcopy_list(
        1,
        0,
        &[cscd(&vpd, 0, false)],
        &[segment(0, 0, 2048, 0, BLOCKS - 2048)],
    );
    assert_good(&xcopy(&mut dev, &i1(), &data));
    let mut copied = vec![0u8; pattern.len()];
    let lu = dev.lun_mut(0).unwrap();
    lu.store
        .read_at((BLOCKS - 2048) * 512, &mut copied)
        .unwrap();
    assert_eq!(copied, pattern);
    let r = exec(&mut dev, &i1(), &copy_results(0, 1));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0), 8);
    assert_eq!(d[4], 0x01, "completed");
    assert_eq!(be16(d, 5), 1, "segments processed");
    assert_eq!((d[7], be32(d, 8)), (0, 2048 * 512));
    // Results are per nexus and list identifier.
    clear_ua(&mut dev, &i2());
    let r = exec(&mut dev, &i2(), &copy_results(0, 1));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &copy_results(0, 2));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn extended_copy_overlapping_and_between_lus() {
    let mut dev = device_with(&[(0, config("X")), (1, config("Y"))]);
    clear_ua(&mut dev, &i1());
    let pattern: Vec<u8> = (0..4 * 512).map(|i| (i / 512 + 1) as u8).collect();
    dev.lun_mut(0).unwrap().store.write_at(0, &pattern).unwrap();
    let vpd0 = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let vpd1 = run(&mut dev, &i1(), 1, &inquiry(true, 0x83, 255), &[]).data_in;
    let data = xcopy_list(
        0,
        2,
        &[cscd(&vpd0, 0, false), cscd(&vpd1, 0, false)],
        &[segment(0, 0, 4, 0, 2), segment(0, 1, 6, 0, 10)],
    );
    assert_good(&xcopy(&mut dev, &i1(), &data));
    let mut got = vec![0u8; 6 * 512];
    dev.lun_mut(1)
        .unwrap()
        .store
        .read_at(10 * 512, &mut got)
        .unwrap();
    let blocks: Vec<u8> = got.chunks(512).map(|b| b[0]).collect();
    assert_eq!(blocks, vec![1, 2, 1, 2, 3, 4]);
    // LIST ID USAGE 10b holds nothing.
    let r = exec(&mut dev, &i1(), &copy_results(0, 0));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn extended_copy_parameter_errors() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let good = xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[segment(0, 0, 8, 0, 100)]);
    assert_good(&xcopy(&mut dev, &i1(), &[]));
    let length_error = |dev: &mut Device, data: &[u8]| {
        let r = xcopy(dev, &i1(), data);
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    };
    length_error(&mut dev, &good[..16 + 32 - 1]);
    length_error(&mut dev, &good[..good.len() - 1]);
    // Unsupported descriptor types.
    let mut fc = cscd(&vpd, 0, false);
    fc[0] = 0xe0;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[fc], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::UNSUPPORTED_TARGET_DESCRIPTOR_TYPE,
    );
    let stream = vec![
        0x03, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[stream]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE,
    );
    // SPC-3: reserved LU ID TYPE is invalid, NUL aborts the copy.
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 2, false)], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 0, true)], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_eq!(sense(&r).unwrap().0, key::COPY_ABORTED);
    // Bad destination index; beyond the end of the LU.
    for seg in [segment(0, 1, 8, 0, 100), segment(0, 0, 2048, 0, BLOCKS - 1)] {
        let r = xcopy(
            &mut dev,
            &i1(),
            &xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[seg]),
        );
        let (k, asc, ascq) = sense(&r).unwrap();
        assert_eq!(k, key::COPY_ABORTED);
        assert!([(0, 0), (8, 4), (0x0d, 2)].contains(&(asc, ascq)));
    }
    // A designator naming no LU of ours.
    let mut other = cscd(&vpd, 0, false);
    other[10] ^= 0xff;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[other], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_eq!(sense(&r).unwrap().0, key::COPY_ABORTED);
}

#[test]
fn extended_copy_descriptor_limits() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &copy_results(3, 0));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0) as usize, d.len() - 4);
    assert!(be32(d, 0) >= 40);
    let max_cscd = be16(d, 8) as usize;
    let max_segments = be16(d, 10) as usize;
    let max_list = be32(d, 12) as usize;
    assert_eq!(&d[44..44 + d[43] as usize], &[0x02, 0xe4]);
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let one = cscd(&vpd, 0, false);
    let seg = segment(0, 0, 8, 0, 100);
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(
            1,
            0,
            &vec![one.clone(); max_cscd + 1],
            std::slice::from_ref(&seg),
        ),
    );
    let asc = sense(&r).map(|s| (s.1, s.2));
    assert_eq!(asc, Some((0x26, 0x06)));
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(
            1,
            0,
            std::slice::from_ref(&one),
            &vec![seg.clone(); max_segments + 1],
        ),
    );
    assert_eq!(sense(&r).map(|s| (s.1, s.2)), Some((0x26, 0x08)));
    let many = max_list / seg.len() + 1;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &vec![one; max_cscd + 1], &vec![seg; many]),
    );
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
}

// ---- robustness ------------------------------------------------------

/// Every SPC command, with arbitrary CDB bytes and parameter data, returns
/// a status and never panics.
#[test]
fn arbitrary_cdbs_never_panic() {
    let spc_opcodes = [
        0x00, 0x03, 0x12, 0x15, 0x55, 0x1a, 0x5a, 0x16, 0x56, 0x17, 0x57, 0x5e, 0x5f, 0xa3, 0x1b,
        0x1e, 0xa0, 0x83, 0x84,
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut dev = device_with(&[(0, config("F0")), (1, config("F1"))]);
    for round in 0..20_000 {
        let mut cdb = [0u8; 16];
        for b in cdb.iter_mut() {
            *b = next() as u8;
        }
        cdb[0] = spc_opcodes[round % spc_opcodes.len()];
        // Keep lengths small so the data often covers them.
        if round % 2 == 0 {
            for b in &mut cdb[4..14] {
                *b &= 0x01;
            }
        }
        let len = (next() % 96) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 && len >= 16 {
            data[2] = 0;
            data[3] = 32;
            data[8..12].copy_from_slice(&[0, 0, 0, 28]);
            data[12..16].fill(0);
        }
        let who = if next() % 2 == 0 { i1() } else { i2() };
        let lun = (next() % 3) as u16;
        let r = run(&mut dev, &who, lun, &cdb, &data);
        assert!(
            [
                status::GOOD,
                status::CHECK_CONDITION,
                status::RESERVATION_CONFLICT
            ]
            .contains(&r.status)
        );
        if r.status == status::CHECK_CONDITION {
            assert!(r.sense.is_some());
        }
        if round % 1000 == 0 {
            dev.task_management(&who, Lun::from_index(0), TaskManagement::TargetWarmReset);
        }
    }
}

#[test]
fn sanitize_in_progress_blocks_all_but_inquiry_report_luns_request_sense() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    dev.lun_mut(0).unwrap().sbc.defer_sanitize = true;
    assert_good(&exec(
        &mut dev,
        &i1(),
        &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    let in_progress = Asc::NOT_READY_SANITIZE_IN_PROGRESS;
    assert_check(&exec(&mut dev, &i1(), &TUR), key::NOT_READY, in_progress);
    assert_check(&exec(&mut dev, &i1(), &READ10), key::NOT_READY, in_progress);
    let r = exec(&mut dev, &i1(), &start_stop(true, 1, true, false));
    assert_check(&r, key::NOT_READY, in_progress);
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i1(), &report_luns(0, 4096)));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 18, 0]);
    assert_eq!(
        (r.data_in[2], r.data_in[12], r.data_in[13]),
        (2, 0x04, 0x1b)
    );
    // A unit attention still comes first.
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset);
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_check(&exec(&mut dev, &i1(), &TUR), key::NOT_READY, in_progress);
    dev.lun_mut(0).unwrap().sbc.complete_sanitize();
    assert_good(&exec(&mut dev, &i1(), &TUR));
}
