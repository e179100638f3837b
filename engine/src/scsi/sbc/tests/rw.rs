//! READ and WRITE (libiscsi Read6/10/12/16, Write10/12/16, iSCSIResiduals).

use std::sync::atomic::Ordering;

use super::*;

const N: u64 = 1000;

fn pattern(blocks: usize, seed: u8) -> Vec<u8> {
    (0..blocks * BS)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn write_then_read_every_cdb_size() {
    let mut h = Harness::new(N);
    let data = pattern(3, 7);
    good(&h.exec(&cdb::c10(0x2a, 0, 10, 3), &data));
    assert_eq!(good(&h.exec(&cdb::c10(0x28, 0, 10, 3), &[])), data);
    assert_eq!(good(&h.exec(&cdb::c12(0xa8, 0, 10, 3), &[])), data);
    assert_eq!(good(&h.exec(&cdb::c16(0x88, 0, 10, 3), &[])), data);
    assert_eq!(good(&h.exec(&cdb::rw6(0x08, 10, 3), &[])), data);

    let data = pattern(2, 9);
    good(&h.exec(&cdb::c12(0xaa, 0, 500, 2), &data));
    good(&h.exec(&cdb::c16(0x8a, 0, 600, 2), &data));
    good(&h.exec(&cdb::rw6(0x0a, 700, 2), &data));
    for lba in [500, 600, 700] {
        assert_eq!(h.get(lba, 2), data);
    }
}

#[test]
fn read6_length_zero_means_256_blocks() {
    let mut h = Harness::new(N);
    let d = good(&h.exec(&cdb::rw6(0x08, 0, 0), &[]));
    assert_eq!(d.len(), 256 * BS);
    // READ(6) at the end of the medium, 1..=255 blocks.
    for n in [1u8, 17, 255] {
        let d = good(&h.exec(&cdb::rw6(0x08, (N - n as u64) as u32, n), &[]));
        assert_eq!(d.len(), n as usize * BS);
    }
}

#[test]
fn zero_length_is_a_no_op_but_lba_is_checked() {
    let mut h = Harness::new(N);
    assert!(good(&h.exec(&cdb::c10(0x28, 0, 0, 0), &[])).is_empty());
    good(&h.exec(&cdb::c10(0x2a, 0, 0, 0), &[]));
    good(&h.exec(&cdb::c16(0x8a, 0, 0, 0), &[]));
    for op in [0x28, 0x2a] {
        lba_oob(&h.exec(&cdb::c10(op, 0, N as u32 + 1, 0), &[]));
        lba_oob(&h.exec(&cdb::c10(op, 0, 0x8000_0000, 0), &[]));
        lba_oob(&h.exec(&cdb::c10(op, 0, u32::MAX, 0), &[]));
    }
    for op in [0x88, 0x8a] {
        lba_oob(&h.exec(&cdb::c16(op, 0, 1 << 63, 0), &[]));
        lba_oob(&h.exec(&cdb::c16(op, 0, u64::MAX, 0), &[]));
    }
    assert!(!h.mapped(0));
}

#[test]
fn beyond_end_of_medium_including_overflow() {
    let mut h = Harness::new(N);
    let data = pattern(256, 1);
    for i in 1..=256u64 {
        let n = i as u16;
        // One block beyond the end.
        lba_oob(&h.exec(&cdb::c10(0x28, 0, (N + 1 - i) as u32, n), &[]));
        lba_oob(&h.exec(
            &cdb::c10(0x2a, 0, (N + 1 - i) as u32, n),
            &data[..i as usize * BS],
        ));
        // LBA 2^31, -1, and LBAs whose byte offset overflows 64 bits.
        lba_oob(&h.exec(&cdb::c12(0xa8, 0, 0x8000_0000, i as u32), &[]));
        lba_oob(&h.exec(&cdb::c10(0x28, 0, u32::MAX, n), &[]));
        lba_oob(&h.exec(&cdb::c16(0x88, 0, u64::MAX, i as u32), &[]));
        lba_oob(&h.exec(&cdb::c16(0x88, 0, 1 << 55, i as u32), &[]));
        lba_oob(&h.exec(
            &cdb::c16(0x8a, 0, 1 << 54, i as u32),
            &data[..i as usize * BS],
        ));
    }
    for i in 2..=255u8 {
        lba_oob(&h.exec(&cdb::rw6(0x08, N as u32 - 1, i), &[]));
    }
    lba_oob(&h.exec(&cdb::rw6(0x08, 0x1f_ffff, 1), &[]));
    // Nothing was written by the failed writes.
    assert!(!h.mapped(N - 1));
}

#[test]
fn reads_at_the_end_of_the_medium() {
    let mut h = Harness::new(N);
    h.put(N - 1, &[0xab; BS]);
    for i in 1..=256u64 {
        let d = good(&h.exec(&cdb::c16(0x88, 0, N - i, i as u32), &[]));
        assert_eq!(d.len(), i as usize * BS);
        assert!(d[(i as usize - 1) * BS..].iter().all(|&b| b == 0xab));
    }
}

#[test]
fn protection_fields_are_invalid_without_protection_information() {
    let mut h = Harness::new(N);
    for p in 1..8u8 {
        let flags = p << 5;
        for c in [
            cdb::c10(0x28, flags, 0, 1),
            cdb::c12(0xa8, flags, 0, 1),
            cdb::c16(0x88, flags, 0, 1),
        ] {
            let d = invalid_cdb(&h.exec(&c, &[]));
            assert_eq!(d.field, Some((true, 1)));
        }
        for c in [
            cdb::c10(0x2a, flags, 0, 1),
            cdb::c12(0xaa, flags, 0, 1),
            cdb::c16(0x8a, flags, 0, 1),
        ] {
            invalid_cdb(&h.exec(&c, &[0xa6; BS]));
        }
    }
    assert!(!h.mapped(0));
}

#[test]
fn dpo_fua_and_fua_nv_are_accepted_and_fua_flushes() {
    let (mut h, flushes) = thick(N);
    for flags in [0x10, 0x08, 0x18, 0x02, 0x0a, 0x1a] {
        good(&h.exec(&cdb::c10(0x2a, flags, 0, 1), &[0xa6; BS]));
        good(&h.exec(&cdb::c12(0xaa, flags, 0, 1), &[0xa6; BS]));
        good(&h.exec(&cdb::c16(0x8a, flags, 0, 1), &[0xa6; BS]));
        good(&h.exec(&cdb::c10(0x28, flags, 0, 1), &[]));
    }
    // FUA set in 4 of the 6 flag combinations, for 3 writes and 1 read.
    assert_eq!(flushes.load(Ordering::Relaxed), 4 * 4);
    good(&h.exec(&cdb::c10(0x2a, 0x10, 0, 1), &[0xa6; BS]));
    assert_eq!(flushes.load(Ordering::Relaxed), 16);
}

#[test]
fn maximum_transfer_length_is_enforced() {
    let mut h = Harness::new(40_000);
    let max = h.lu().sbc.limits().max_transfer_length;
    assert_eq!(max as usize, (8 << 20) / BS);
    let d = good(&h.exec(&cdb::c16(0x88, 0, 0, max), &[]));
    assert_eq!(d.len(), max as usize * BS);
    let d = invalid_cdb(&h.exec(&cdb::c16(0x88, 0, 0, max + 1), &[]));
    assert_eq!(d.field, Some((true, 10)));
    let d = invalid_cdb(&h.exec(&cdb::c12(0xaa, 0, 0, max + 1), &[]));
    assert_eq!(d.field, Some((true, 6)));
    h.lu().sbc.limits.max_transfer_length = 8;
    invalid_cdb(&h.exec(&cdb::c10(0x28, 0, 0, 9), &[]));
    good(&h.exec(&cdb::c10(0x28, 0, 0, 8), &[]));
}

/// libiscsi Write10Residuals: EDTL larger than the transfer length writes
/// only the transfer length; EDTL smaller writes only what arrived.
#[test]
fn write_uses_the_cdb_length_or_the_data_that_arrived() {
    let mut h = Harness::new(N);
    good(&h.exec(&cdb::c10(0x2a, 0, 0, 2), &[b'a'; 2 * BS]));
    good(&h.exec(&cdb::c10(0x2a, 0, 0, 1), &[b'b'; 2 * BS]));
    let back = good(&h.exec(&cdb::c10(0x28, 0, 0, 2), &[]));
    assert!(back[..BS].iter().all(|&b| b == b'b'));
    assert!(back[BS..].iter().all(|&b| b == b'a'));

    good(&h.exec(&cdb::c10(0x2a, 0, 0, 2), &[b'a'; 2 * BS]));
    good(&h.exec(&cdb::c10(0x2a, 0, 0, 2), &[b'b'; BS]));
    let back = good(&h.exec(&cdb::c10(0x28, 0, 0, 2), &[]));
    assert!(back[..BS].iter().all(|&b| b == b'b'));
    assert!(back[BS..].iter().all(|&b| b == b'a'));

    // No Data-Out at all (EDTL 0), or less than a block (EDTL 200).
    good(&h.exec(&cdb::c10(0x2a, 0, 5, 1), &[]));
    good(&h.exec(&cdb::c10(0x2a, 0, 5, 1), &[0xa6; 200]));
    assert!(!h.mapped(5));
    // Read Data-In is always the full transfer length; the session cuts it
    // to the EDTL.
    assert_eq!(
        good(&h.exec(&cdb::c10(0x28, 0, 0, 1), &[0xa6; BS])).len(),
        BS
    );
}

#[test]
fn medium_errors_report_the_lba() {
    let store = FaultyStore {
        inner: MemoryStore::new(N * BS as u64),
        bad: 100 * BS as u64 + 7..100 * BS as u64 + 8,
    };
    let mut h = Harness::with(config(BS as u32, false), Box::new(store));
    let d = check(
        &h.exec(&cdb::c10(0x28, 0, 98, 4), &[]),
        key::MEDIUM_ERROR,
        0x11,
        0,
    );
    assert_eq!(d.info, Some(100));
    let d = check(
        &h.exec(&cdb::c16(0x8a, 0, 100, 1), &[1; BS]),
        key::MEDIUM_ERROR,
        0x0c,
        0,
    );
    assert_eq!(d.info, Some(100));
    good(&h.exec(&cdb::c10(0x28, 0, 101, 4), &[]));
}

#[test]
fn writes_to_a_readonly_lu_are_write_protected() {
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&cdb::c10(0x2a, 0, 0, 1), &[0xa6; BS]));
    write_protected(&h.exec(&cdb::c12(0xaa, 0, 0, 1), &[0xa6; BS]));
    write_protected(&h.exec(&cdb::c16(0x8a, 0, 0, 1), &[0xa6; BS]));
    write_protected(&h.exec(&cdb::rw6(0x0a, 0, 1), &[0xa6; BS]));
    good(&h.exec(&cdb::c10(0x28, 0, 0, 1), &[]));
    assert!(!h.mapped(0));
}

#[test]
fn four_kib_blocks() {
    let mut h = Harness::with(config(4096, false), Box::new(MemoryStore::new(64 * 4096)));
    let data: Vec<u8> = (0..2 * 4096).map(|i| (i % 253) as u8).collect();
    good(&h.exec(&cdb::c10(0x2a, 0, 62, 2), &data));
    assert_eq!(good(&h.exec(&cdb::c10(0x28, 0, 62, 2), &[])), data);
    lba_oob(&h.exec(&cdb::c10(0x28, 0, 63, 2), &[]));
    let d = good(&h.exec(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]));
    assert_eq!(&d[..], &[0, 0, 0, 63, 0, 0, 0x10, 0]);
}
