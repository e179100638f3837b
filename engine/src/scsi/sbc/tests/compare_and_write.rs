//! COMPARE AND WRITE (libiscsi CompareAndWrite).

use super::*;

const N: u64 = 1000;

#[test]
fn matching_compare_writes_the_second_half() {
    let mut h = Harness::new(N);
    for i in [1usize, 2, 100, 255] {
        for lba in [0, N - i as u64] {
            h.put(lba, &vec![b'A'; i * BS]);
            let data = [vec![b'A'; i * BS], vec![b'B'; i * BS]].concat();
            good(&h.exec(&cdb::caw(0, lba, i as u8), &data));
            assert_eq!(h.get(lba, i as u64), vec![b'B'; i * BS]);
        }
    }
}

#[test]
fn miscompare_reports_the_offset_and_writes_nothing() {
    let mut h = Harness::new(N);
    for i in [1usize, 7, 255] {
        h.put(0, &vec![b'A'; i * BS]);
        let mut data = [vec![b'A'; i * BS], vec![b'B'; i * BS]].concat();
        let at = i * BS - 27;
        data[at] = b'C';
        let d = check(
            &h.exec(&cdb::caw(0, 0, i as u8), &data),
            key::MISCOMPARE,
            0x1d,
            0x00,
        );
        assert_eq!(d.info, Some(at as u32));
        assert_eq!(h.get(0, i as u64), vec![b'A'; i * BS]);
    }
    // Unwritten blocks read as zeros and miscompare at offset 0.
    let data = [vec![b'%'; BS], vec![b'B'; BS]].concat();
    let d = check(
        &h.exec(&cdb::caw(0, 500, 1), &data),
        key::MISCOMPARE,
        0x1d,
        0x00,
    );
    assert_eq!(d.info, Some(0));
    assert!(!h.mapped(500));
}

#[test]
fn lengths_limits_and_fields() {
    let mut h = Harness::new(N);
    h.put(0, &[0; 4 * BS]);
    // NUMBER OF LOGICAL BLOCKS zero with no Data-Out does nothing.
    good(&h.exec(&cdb::caw(0, 0, 0), &[]));
    // A Data-Out that does not match the count: libiscsi's 256-block case
    // (the count wraps to 0) and InvalidDataOutSize (TL 1 or 3, 4 blocks).
    let d = invalid_cdb(&h.exec(&cdb::caw(0, 0, 0), &vec![0; 512 * BS]));
    assert_eq!(d.field, Some((true, 13)));
    invalid_cdb(&h.exec(&cdb::caw(0, 0, 1), &[0; 4 * BS]));
    invalid_cdb(&h.exec(&cdb::caw(0, 0, 3), &[0; 4 * BS]));
    invalid_cdb(&h.exec(&cdb::caw(0, 0, 1), &[0; BS]));
    // Above MAXIMUM COMPARE AND WRITE LENGTH.
    h.lu().sbc.limits.max_compare_and_write_length = 2;
    invalid_cdb(&h.exec(&cdb::caw(0, 0, 3), &[0; 6 * BS]));
    good(&h.exec(&cdb::caw(0, 0, 2), &[0; 4 * BS]));
    // Range, protection, DPO/FUA.
    lba_oob(&h.exec(&cdb::caw(0, N, 1), &[0; 2 * BS]));
    lba_oob(&h.exec(&cdb::caw(0, N - 1, 2), &[0; 4 * BS]));
    lba_oob(&h.exec(&cdb::caw(0, u64::MAX, 1), &[0; 2 * BS]));
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&cdb::caw(p << 5, 0, 1), &[0; 2 * BS]));
    }
    for flags in [0x10, 0x08, 0x18] {
        good(&h.exec(&cdb::caw(flags, 0, 1), &[0; 2 * BS]));
    }
}

#[test]
fn fua_flushes_and_readonly_is_protected() {
    let (mut h, flushes) = thick(N);
    good(&h.exec(&cdb::caw(0x08, 0, 1), &[0; 2 * BS]));
    assert_eq!(flushes.load(std::sync::atomic::Ordering::Relaxed), 1);
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&cdb::caw(0, 0, 1), &[0; 2 * BS]));
}
