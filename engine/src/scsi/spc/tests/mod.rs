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

mod copy;
mod inquiry;
mod medium;
mod mode;
mod pr;
mod report;
mod reserve;
mod robustness;
mod sanitize;
mod unit_attention;

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

const RESERVE6: [u8; 6] = [0x16, 0, 0, 0, 0, 0];

const RELEASE6: [u8; 6] = [0x17, 0, 0, 0, 0, 0];

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

fn report_luns(select: u8, alloc: u32) -> [u8; 12] {
    let a = alloc.to_be_bytes();
    [0xa0, 0, select, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
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
