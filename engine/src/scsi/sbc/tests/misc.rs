//! PRE-FETCH, SYNCHRONIZE CACHE, ORWRITE, WRITE ATOMIC, READ DEFECT DATA,
//! FORMAT UNIT, and the limits the spc side publishes.

use std::sync::atomic::Ordering;

use super::*;
use crate::scsi::cdb::Cdb;
use crate::scsi::sbc::{CHARACTERISTICS, Limits, data_out_length, provisioning};

const N: u64 = 1000;

#[test]
fn pre_fetch_checks_the_range_and_completes_good() {
    let mut h = Harness::new(N);
    good(&h.exec(&cdb::c10(0x34, 0, 0, 0), &[]));
    good(&h.exec(&cdb::c16(0x90, 0, 0, 0), &[]));
    for i in 1..=256u32 {
        good(&h.exec(&cdb::c10(0x34, 0, 0, i as u16), &[]));
        good(&h.exec(&cdb::c16(0x90, 0, N - i as u64, i), &[]));
    }
    // IMMED and GROUP NUMBER.
    let mut c = cdb::c10(0x34, 0x02, 0, 1);
    c[6] = 3;
    good(&h.exec(&c, &[]));
    let mut c = cdb::c16(0x90, 0x02, 0, 1);
    c[14] = 3;
    good(&h.exec(&c, &[]));
    for i in 1..=256u64 {
        lba_oob(&h.exec(&cdb::c10(0x34, 0, (N + 1 - i) as u32, i as u16), &[]));
        lba_oob(&h.exec(&cdb::c16(0x90, 0, 1 << 63, i as u32), &[]));
        lba_oob(&h.exec(&cdb::c16(0x90, 0, u64::MAX, i as u32), &[]));
    }
    lba_oob(&h.exec(&cdb::c10(0x34, 0, N as u32 + 1, 0), &[]));
    lba_oob(&h.exec(&cdb::c10(0x34, 0, u32::MAX, 0), &[]));
}

#[test]
fn synchronize_cache_flushes_within_range() {
    let (mut h, flushes) = thick(N);
    good(&h.exec(&cdb::c10(0x35, 0, 0, 0), &[]));
    good(&h.exec(&cdb::c10(0x35, 0x06, 10, 20), &[]));
    good(&h.exec(&cdb::c16(0x91, 0x02, 0, N as u32), &[]));
    assert_eq!(flushes.load(Ordering::Relaxed), 3);
    lba_oob(&h.exec(&cdb::c10(0x35, 0, N as u32, 0), &[]));
    lba_oob(&h.exec(&cdb::c16(0x91, 0, 1, N as u32), &[]));
    assert_eq!(flushes.load(Ordering::Relaxed), 3);
}

#[test]
fn orwrite_ors_data_into_the_medium() {
    let mut h = Harness::new(N);
    for i in [1u32, 16, 256] {
        for lba in [0, N - i as u64] {
            h.put(lba, &vec![0; i as usize * BS]);
            good(&h.exec(&cdb::c16(0x8b, 0, lba, i), &vec![0xa5; i as usize * BS]));
            assert_eq!(h.get(lba, i as u64), vec![0xa5; i as usize * BS]);
            good(&h.exec(&cdb::c16(0x8b, 0, lba, i), &vec![0x5a; i as usize * BS]));
            assert_eq!(h.get(lba, i as u64), vec![0xff; i as usize * BS]);
        }
    }
    good(&h.exec(&cdb::c16(0x8b, 0, 0, 0), &[]));
    for flags in [0x10, 0x08, 0x18] {
        good(&h.exec(&cdb::c16(0x8b, flags, 0, 1), &[0; BS]));
    }
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&cdb::c16(0x8b, p << 5, 0, 1), &[0; BS]));
    }
    lba_oob(&h.exec(&cdb::c16(0x8b, 0, N + 1, 0), &[]));
    lba_oob(&h.exec(&cdb::c16(0x8b, 0, 1 << 63, 0), &[]));
    lba_oob(&h.exec(&cdb::c16(0x8b, 0, u64::MAX, 1), &[0; BS]));
    lba_oob(&h.exec(&cdb::c16(0x8b, 0, N - 1, 2), &[0; 2 * BS]));
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&cdb::c16(0x8b, 0, 0, 1), &[0; BS]));
}

#[test]
fn write_atomic_enforces_the_atomic_limits() {
    let mut h = Harness::new(N);
    for i in [1u16, 8, 256] {
        good(&h.exec(&cdb::atomic16(0, 0, i), &vec![0xa6; i as usize * BS]));
        good(&h.exec(
            &cdb::atomic16(0, N - i as u64, i),
            &vec![0xa7; i as usize * BS],
        ));
        assert_eq!(h.get(N - 1, 1), vec![0xa7; BS]);
    }
    good(&h.exec(&cdb::atomic16(0, 0, 0), &[]));
    for flags in [0x10, 0x08, 0x18] {
        good(&h.exec(&cdb::atomic16(flags, 0, 1), &[0; BS]));
    }
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&cdb::atomic16(p << 5, 0, 1), &[0; BS]));
    }
    lba_oob(&h.exec(&cdb::atomic16(0, N + 1, 0), &[]));
    lba_oob(&h.exec(&cdb::atomic16(0, u64::MAX, 1), &[0; BS]));
    // Beyond the end is reported before the atomic length limit.
    lba_oob(&h.exec(&cdb::atomic16(0, N - 256, 512), &vec![0; 512 * BS]));
    // ATOMIC BOUNDARY is not supported.
    let mut c = cdb::atomic16(0, 0, 1);
    c[11] = 1;
    let d = invalid_cdb(&h.exec(&c, &[0; BS]));
    assert_eq!(d.field, Some((true, 10)));
    let limits = &mut h.lu().sbc.limits;
    limits.atomic_alignment = 4;
    limits.atomic_transfer_length_granularity = 2;
    limits.max_atomic_transfer_length = 8;
    let d = invalid_cdb(&h.exec(&cdb::atomic16(0, 1, 2), &[0; 2 * BS]));
    assert_eq!(d.field, Some((true, 2)));
    let d = invalid_cdb(&h.exec(&cdb::atomic16(0, 4, 1), &[0; BS]));
    assert_eq!(d.field, Some((true, 12)));
    invalid_cdb(&h.exec(&cdb::atomic16(0, 4, 10), &[0; 10 * BS]));
    good(&h.exec(&cdb::atomic16(0, 4, 8), &[0; 8 * BS]));
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&cdb::atomic16(0, 0, 1), &[0; BS]));
}

#[test]
fn read_defect_data_returns_empty_lists() {
    let mut h = Harness::new(N);
    let d = good(&h.exec(&[0x37, 0, 0, 0, 0, 0, 0, 0, 32, 0], &[]));
    assert_eq!(&d[..], &[0, 0, 0, 0]);
    let d = good(&h.exec(&[0x37, 0, 0x1d, 0, 0, 0, 0, 0, 32, 0], &[]));
    assert_eq!(&d[..], &[0, 0x1d, 0, 0]);
    let d = good(&h.exec(&[0xb7, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], &[]));
    assert_eq!(&d[..], &[0; 8]);
    let d = good(&h.exec(&[0xb7, 0x0b, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0], &[]));
    assert_eq!(&d[..], &[0, 0x0b, 0]);
    invalid_cdb(&h.exec(&[0x37, 0, 0x07, 0, 0, 0, 0, 0, 32, 0], &[]));
    invalid_cdb(&h.exec(&[0xb7, 0x07, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], &[]));
}

#[test]
fn format_unit_deallocates_everything() {
    let mut h = Harness::new(N);
    h.put(0, &[1; 4 * BS]);
    good(&h.exec(&[0x04, 0, 0, 0, 0, 0], &[]));
    assert!(!h.mapped(0));
    h.put(0, &[1; BS]);
    good(&h.exec(&[0x04, 0x10, 0, 0, 0, 0], &[0, 0, 0, 0]));
    good(&h.exec(&[0x04, 0x30, 0, 0, 0, 0], &[0; 8]));
    assert!(!h.mapped(0));
    invalid_cdb(&h.exec(&[0x04, 0x80, 0, 0, 0, 0], &[]));
    invalid_cdb(&h.exec(&[0x04, 0x08, 0, 0, 0, 0], &[]));
    invalid_param(&h.exec(&[0x04, 0x10, 0, 0, 0, 0], &[0, 0x08, 0, 0]));
    invalid_param(&h.exec(&[0x04, 0x10, 0, 0, 0, 0], &[0, 0, 0, 8]));
    check(
        &h.exec(&[0x04, 0x10, 0, 0, 0, 0], &[0, 0]),
        key::ILLEGAL_REQUEST,
        0x1a,
        0,
    );
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&[0x04, 0, 0, 0, 0, 0], &[]));
}

#[test]
fn limits_for_the_vpd_pages() {
    let l = Limits::for_block_size(512);
    assert_eq!(l.max_transfer_length, 16384);
    assert_eq!(l.optimal_transfer_length, 2048);
    assert!(l.max_atomic_transfer_length <= l.max_transfer_length);
    assert!(l.max_compare_and_write_length >= 1);
    assert!(l.max_unmap_lba_count == u32::MAX || l.max_unmap_lba_count <= 1 << 20);
    assert!(l.max_unmap_block_descriptor_count >= 2);
    assert!(!l.wsnz);
    assert_eq!(Limits::for_block_size(4096).max_transfer_length, 2048);
    assert_eq!(CHARACTERISTICS.wabereq, 1);
    assert_eq!(CHARACTERISTICS.wacereq, 1);
    const { assert!(CHARACTERISTICS.vbuls) };

    let mut h = Harness::new(N);
    let p = provisioning(h.lu());
    assert!(p.lbpme && p.lbprz && p.lbpu && p.lbpws && p.lbpws10 && !p.anc_sup);
    assert_eq!((p.provisioning_type, p.lbppbe), (0b010, 0));
    let (mut h, _) = thick(N);
    let p = provisioning(h.lu());
    assert!(!p.lbpme && !p.lbpu && !p.lbpws && !p.lbpws10);
    assert_eq!(p.provisioning_type, 0);
}

#[test]
fn data_out_lengths_for_write_residuals() {
    let len = |c: &[u8]| data_out_length(&Cdb(c), 512);
    assert_eq!(len(&cdb::c10(0x2a, 0, 0, 2)), Some(1024));
    assert_eq!(len(&cdb::rw6(0x0a, 0, 0)), Some(256 * 512));
    assert_eq!(len(&cdb::c16(0x8e, 0x02, 0, 3)), Some(1536));
    assert_eq!(len(&cdb::c10(0x2f, 0x02, 0, 3)), Some(1536));
    assert_eq!(len(&cdb::c10(0x2f, 0x06, 0, 3)), Some(512));
    assert_eq!(len(&cdb::c10(0x2f, 0x00, 0, 3)), None);
    assert_eq!(len(&cdb::c10(0x41, 0x08, 0, 3)), Some(512));
    assert_eq!(len(&cdb::c16(0x93, 0x09, 0, 3)), None);
    assert_eq!(len(&cdb::caw(0, 0, 2)), Some(2048));
    assert_eq!(len(&cdb::atomic16(0, 0, 4)), Some(2048));
    assert_eq!(len(&cdb::unmap(24)), Some(24));
    assert_eq!(len(&cdb::sanitize(false, false, 1, 516)), Some(516));
    assert_eq!(len(&cdb::c10(0x28, 0, 0, 2)), None);
}

/// Every handler survives arbitrary CDBs and Data-Out without panicking.
#[test]
fn arbitrary_cdbs_do_not_panic() {
    let mut h = Harness::new(64);
    let opcodes: Vec<u8> = vec![
        0x04, 0x08, 0x0a, 0x25, 0x28, 0x2a, 0x2e, 0x2f, 0x34, 0x35, 0x37, 0x41, 0x42, 0x48, 0x88,
        0x89, 0x8a, 0x8b, 0x8e, 0x8f, 0x90, 0x91, 0x93, 0x9c, 0x9e, 0xa8, 0xaa, 0xae, 0xaf, 0xb7,
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..4000 {
        let op = opcodes[round % opcodes.len()];
        let len = [6, 10, 12, 16][(next() % 4) as usize];
        let mut c: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        c[0] = op;
        if next() % 2 == 0 {
            // Keep the LBA and length small so the command gets far.
            for b in c.iter_mut().skip(2).take(len - 4) {
                *b &= 0x01;
            }
        }
        let data: Vec<u8> = (0..(next() % 3000) as usize)
            .map(|_| next() as u8)
            .collect();
        let _ = h.exec(&c, &data);
    }
}
