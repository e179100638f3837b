//! Tests that drive `Device::execute` with the CDBs and Data-Out libiscsi's
//! conformance tests send, checking status, sense and data.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::pdu::{Isid, Lun, TaskAttr};
use crate::scsi::sense::key;
use crate::scsi::{CommandRequest, CommandResult, Device, LogicalUnit, LuConfig, Nexus, status};
use crate::store::{BlockStore, MemoryStore, StoreError};

mod capacity;
mod compare_and_write;
mod misc;
mod rw;
mod sanitize;
mod unmap_lba_status;
mod verify;
mod write_same;

pub(super) const BS: usize = 512;

pub(super) fn config(block_size: u32, readonly: bool) -> LuConfig {
    LuConfig {
        block_size,
        vendor: "TEST".into(),
        product: "SBC".into(),
        revision: "0001".into(),
        serial: "sbc-test".into(),
        removable: false,
        readonly,
    }
}

/// A device with one LU (LUN 0) and one I_T nexus.
pub(super) struct Harness {
    pub dev: Device,
    pub nexus: Nexus,
}

impl Harness {
    /// A thin 512-byte-block LU of `blocks` blocks over a `MemoryStore`.
    pub fn new(blocks: u64) -> Harness {
        Harness::with(
            config(BS as u32, false),
            Box::new(MemoryStore::new(blocks * BS as u64)),
        )
    }

    pub fn with(config: LuConfig, store: Box<dyn BlockStore>) -> Harness {
        let mut luns = BTreeMap::new();
        luns.insert(0, LogicalUnit::new(config, store));
        let mut h = Harness {
            dev: Device::new(luns),
            nexus: Nexus {
                initiator_name: Arc::from("iqn.2024-01.test:init"),
                isid: Isid([0x40, 0, 0, 0, 0, 1]),
                target_name: Arc::from("iqn.2024-01.test:target"),
                target_portal_group_tag: 1,
            },
        };
        // Consume any power-on unit attention the gate reports first.
        for _ in 0..4 {
            let r = h.exec(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]);
            if !(r.status == status::CHECK_CONDITION && sense(&r).key == key::UNIT_ATTENTION) {
                break;
            }
        }
        h
    }

    pub fn exec(&mut self, cdb: &[u8], data_out: &[u8]) -> CommandResult {
        self.dev.execute(
            Lun::from_index(0),
            CommandRequest {
                nexus: &self.nexus,
                cdb,
                data_out: Bytes::copy_from_slice(data_out),
                expected_in_len: 1 << 24,
                attr: TaskAttr::Simple,
            },
        )
    }

    pub fn lu(&mut self) -> &mut LogicalUnit {
        self.dev.lun_mut(0).expect("LUN 0")
    }

    /// Writes `data` at `lba` directly to the store.
    pub fn put(&mut self, lba: u64, data: &[u8]) {
        let bs = self.lu().config.block_size as u64;
        self.lu()
            .store
            .write_at(lba * bs, data)
            .expect("store write");
    }

    /// Reads `blocks` blocks at `lba` directly from the store.
    pub fn get(&mut self, lba: u64, blocks: u64) -> Vec<u8> {
        let bs = self.lu().config.block_size as u64;
        let mut buf = vec![0u8; (blocks * bs) as usize];
        self.lu()
            .store
            .read_at(lba * bs, &mut buf)
            .expect("store read");
        buf
    }

    /// Whether the block at `lba` is mapped in the store.
    pub fn mapped(&mut self, lba: u64) -> bool {
        let bs = self.lu().config.block_size as u64;
        self.lu().store.allocation(lba * bs).expect("allocation").0
    }
}

/// Decoded fixed-format sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decoded {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// INFORMATION, when VALID is set.
    pub info: Option<u32>,
    /// Sense-key-specific field pointer: (C/D, byte).
    pub field: Option<(bool, u16)>,
}

pub(super) fn sense(r: &CommandResult) -> Decoded {
    let s = r.sense.as_ref().expect("sense data");
    assert_eq!(s[0] & 0x7f, 0x70, "fixed format sense");
    Decoded {
        key: s[2] & 0x0f,
        asc: s[12],
        ascq: s[13],
        info: (s[0] & 0x80 != 0).then(|| u32::from_be_bytes([s[3], s[4], s[5], s[6]])),
        field: (s[15] & 0x80 != 0).then(|| (s[15] & 0x40 != 0, u16::from_be_bytes([s[16], s[17]]))),
    }
}

/// Asserts GOOD status and returns the Data-In.
#[track_caller]
pub(super) fn good(r: &CommandResult) -> Bytes {
    assert_eq!(r.status, status::GOOD, "expected GOOD, sense {:?}", r.sense);
    assert!(r.sense.is_none());
    r.data_in.clone()
}

/// Asserts CHECK CONDITION with this sense key and ASC/ASCQ.
#[track_caller]
pub(super) fn check(r: &CommandResult, key: u8, asc: u8, ascq: u8) -> Decoded {
    assert_eq!(
        r.status,
        status::CHECK_CONDITION,
        "expected CHECK CONDITION"
    );
    let d = sense(r);
    assert_eq!((d.key, d.asc, d.ascq), (key, asc, ascq), "sense {d:?}");
    assert!(r.data_in.is_empty());
    d
}

#[track_caller]
pub(super) fn lba_oob(r: &CommandResult) {
    check(r, key::ILLEGAL_REQUEST, 0x21, 0x00);
}

#[track_caller]
pub(super) fn invalid_cdb(r: &CommandResult) -> Decoded {
    let d = check(r, key::ILLEGAL_REQUEST, 0x24, 0x00);
    if let Some((in_cdb, _)) = d.field {
        assert!(in_cdb, "field pointer should point into the CDB");
    }
    d
}

#[track_caller]
pub(super) fn invalid_param(r: &CommandResult) -> Decoded {
    check(r, key::ILLEGAL_REQUEST, 0x26, 0x00)
}

#[track_caller]
pub(super) fn write_protected(r: &CommandResult) {
    check(r, key::DATA_PROTECT, 0x27, 0x00);
}

/// CDB builders, the way libiscsi lays them out.
pub(super) mod cdb {
    pub fn rw6(op: u8, lba: u32, blocks: u8) -> Vec<u8> {
        let l = lba.to_be_bytes();
        vec![op, l[1] & 0x1f, l[2], l[3], blocks, 0]
    }

    /// READ/WRITE/VERIFY/WRITE AND VERIFY/PRE-FETCH/SYNCHRONIZE CACHE(10)
    /// and WRITE SAME(10).
    pub fn c10(op: u8, flags: u8, lba: u32, blocks: u16) -> Vec<u8> {
        let mut c = vec![op, flags, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..6].copy_from_slice(&lba.to_be_bytes());
        c[7..9].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    pub fn c12(op: u8, flags: u8, lba: u32, blocks: u32) -> Vec<u8> {
        let mut c = vec![op, flags, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..6].copy_from_slice(&lba.to_be_bytes());
        c[6..10].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    pub fn c16(op: u8, flags: u8, lba: u64, blocks: u32) -> Vec<u8> {
        let mut c = vec![op, flags, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    pub fn caw(flags: u8, lba: u64, blocks: u8) -> Vec<u8> {
        let mut c = c16(0x89, flags, lba, 0);
        c[13] = blocks;
        c
    }

    pub fn atomic16(flags: u8, lba: u64, blocks: u16) -> Vec<u8> {
        let mut c = c16(0x9c, flags, lba, 0);
        c[12..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    pub fn unmap(list_len: u16) -> Vec<u8> {
        let l = list_len.to_be_bytes();
        vec![0x42, 0, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }

    /// The UNMAP parameter list libiscsi builds for `(lba, blocks)` pairs.
    pub fn unmap_list(extents: &[(u64, u32)]) -> Vec<u8> {
        let len = 8 + 16 * extents.len();
        let mut d = vec![0u8; len];
        d[0..2].copy_from_slice(&((len - 2) as u16).to_be_bytes());
        d[2..4].copy_from_slice(&((len - 8) as u16).to_be_bytes());
        for (i, (lba, n)) in extents.iter().enumerate() {
            d[8 + 16 * i..16 + 16 * i].copy_from_slice(&lba.to_be_bytes());
            d[16 + 16 * i..20 + 16 * i].copy_from_slice(&n.to_be_bytes());
        }
        d
    }

    pub fn get_lba_status(lba: u64, alloc: u32) -> Vec<u8> {
        let mut c = c16(0x9e, 0x12, lba, alloc);
        c[1] = 0x12;
        c
    }

    pub fn read_capacity16(alloc: u32) -> Vec<u8> {
        let mut c = c16(0x9e, 0x10, 0, alloc);
        c[1] = 0x10;
        c
    }

    pub fn sanitize(immed: bool, ause: bool, sa: u8, list_len: u16) -> Vec<u8> {
        let l = list_len.to_be_bytes();
        let b1 = sa | if immed { 0x80 } else { 0 } | if ause { 0x20 } else { 0 };
        vec![0x48, b1, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }
}

/// A store that fails reads and writes of one byte range with a medium
/// error, over a `MemoryStore`.
pub(super) struct FaultyStore {
    pub inner: MemoryStore,
    pub bad: std::ops::Range<u64>,
}

impl FaultyStore {
    fn fault(&self, offset: u64, len: u64) -> Result<(), StoreError> {
        let end = offset + len;
        if offset < self.bad.end && self.bad.start < end {
            return Err(StoreError::Medium {
                offset: offset.max(self.bad.start),
            });
        }
        Ok(())
    }
}

impl BlockStore for FaultyStore {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.fault(offset, buf.len() as u64)?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.fault(offset, data.len() as u64)?;
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.inner.flush()
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        self.inner.discard(offset, len)
    }
    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        self.inner.allocation(offset)
    }
    fn is_thin(&self) -> bool {
        self.inner.is_thin()
    }
    fn describe(&self) -> String {
        "faulty".into()
    }
}

/// A fully provisioned store (`is_thin` false) over a `MemoryStore`, that
/// counts flushes.
pub(super) struct ThickStore {
    pub inner: MemoryStore,
    pub flushes: Arc<std::sync::atomic::AtomicUsize>,
}

impl BlockStore for ThickStore {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.flushes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), StoreError> {
        self.inner.write_at(offset, &vec![0u8; len as usize])
    }
    fn allocation(&mut self, offset: u64) -> Result<(bool, u64), StoreError> {
        Ok((true, self.inner.len() - offset))
    }
    fn is_thin(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "thick".into()
    }
}

/// A thick LU of `blocks` blocks, with a flush counter.
pub(super) fn thick(blocks: u64) -> (Harness, Arc<std::sync::atomic::AtomicUsize>) {
    let flushes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = ThickStore {
        inner: MemoryStore::new(blocks * BS as u64),
        flushes: flushes.clone(),
    };
    (
        Harness::with(config(BS as u32, false), Box::new(store)),
        flushes,
    )
}

/// The COMMANDS table and the handlers agree with what REPORT SUPPORTED
/// OPERATION CODES will say for the dpofua tests (usage byte 1).
#[test]
fn usage_data_advertises_dpo_fua_and_sanitize_service_actions() {
    let table = crate::scsi::commands();
    let find = |op: u8, sa: Option<u16>| {
        table
            .iter()
            .find(|c| c.opcode == op && c.service_action == sa)
            .unwrap_or_else(|| panic!("opcode {op:#x} {sa:?} missing"))
    };
    for op in [0x28, 0xa8, 0x88, 0x2a, 0xaa, 0x8a, 0x89, 0x8b, 0x9c] {
        assert_eq!(find(op, None).usage[1] & 0x18, 0x18, "opcode {op:#x}");
    }
    for op in [0x2e, 0xae, 0x8e, 0x2f, 0xaf, 0x8f] {
        assert_eq!(find(op, None).usage[1] & 0x10, 0x10, "opcode {op:#x}");
    }
    for sa in [0x01, 0x02, 0x03, 0x1f] {
        let info = find(0x48, Some(sa));
        assert_eq!(info.usage[1] & 0x1f, sa as u8);
        assert_eq!(info.cdb_len(), 10);
    }
    assert_eq!(find(0x04, None).cdb_len(), 6);
}
