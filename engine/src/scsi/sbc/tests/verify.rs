//! VERIFY and WRITE AND VERIFY (libiscsi Verify10/12/16, WriteVerify10/12/16).

use super::*;

const N: u64 = 600;

fn filled(h: &mut Harness, lba: u64, blocks: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..blocks * BS).map(|i| (i % 251) as u8).collect();
    h.put(lba, &data);
    data
}

#[test]
fn verify_bytchk_1_matches_and_miscompares_with_the_offset() {
    let mut h = Harness::new(N);
    let mut data = filled(&mut h, 0, 256);
    for (op, c) in [
        (0x2f, cdb::c10(0x2f, 0x02, 0, 256)),
        (0xaf, cdb::c12(0xaf, 0x02, 0, 256)),
        (0x8f, cdb::c16(0x8f, 0x02, 0, 256)),
    ] {
        good(&h.exec(&c, &data));
        let at = 200 * BS + 13;
        data[at] ^= b'X';
        let d = check(&h.exec(&c, &data), key::MISCOMPARE, 0x1d, 0x00);
        assert_eq!(d.info, Some(at as u32), "opcode {op:#x}");
        data[at] ^= b'X';
    }
}

#[test]
fn verify_at_the_end_and_of_unwritten_blocks() {
    let mut h = Harness::new(N);
    // Unmapped blocks verify as zeros (VBULS).
    good(&h.exec(&cdb::c16(0x8f, 0x02, N - 256, 256), &vec![0; 256 * BS]));
    let d = check(
        &h.exec(&cdb::c10(0x2f, 0x02, N as u32 - 1, 1), &[1; BS]),
        key::MISCOMPARE,
        0x1d,
        0,
    );
    assert_eq!(d.info, Some(0));
}

#[test]
fn verify_bytchk_0_ignores_data_and_checks_the_medium() {
    let mut h = Harness::new(N);
    filled(&mut h, 0, 4);
    good(&h.exec(&cdb::c10(0x2f, 0, 0, 4), &[]));
    good(&h.exec(&cdb::c10(0x2f, 0x10, 0, 4), &[]));
    good(&h.exec(&cdb::c16(0x8f, 0, 0, N as u32), &[]));
    let store = FaultyStore {
        inner: MemoryStore::new(N * BS as u64),
        bad: 300 * BS as u64..301 * BS as u64,
    };
    let mut h = Harness::with(config(BS as u32, false), Box::new(store));
    let d = check(
        &h.exec(&cdb::c16(0x8f, 0, 0, N as u32), &[]),
        key::MEDIUM_ERROR,
        0x11,
        0,
    );
    assert_eq!(d.info, Some(300));
}

#[test]
fn verify_bytchk_3_compares_every_block_with_one() {
    let mut h = Harness::new(N);
    h.put(10, &[7; 8 * BS]);
    good(&h.exec(&cdb::c10(0x2f, 0x06, 10, 8), &[7; BS]));
    h.put(15, &[7, 7, 8]);
    let d = check(
        &h.exec(&cdb::c10(0x2f, 0x06, 10, 8), &[7; BS]),
        key::MISCOMPARE,
        0x1d,
        0,
    );
    assert_eq!(d.info, Some(5 * BS as u32 + 2));
    invalid_cdb(&h.exec(&cdb::c10(0x2f, 0x06, 10, 8), &[7; 100]));
}

#[test]
fn verify_fields_and_ranges() {
    let mut h = Harness::new(N);
    // BYTCHK 10b is reserved.
    let d = invalid_cdb(&h.exec(&cdb::c10(0x2f, 0x04, 0, 1), &[0; BS]));
    assert_eq!(d.field, Some((true, 1)));
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&cdb::c10(0x2f, p << 5 | 0x02, 0, 1), &[0; BS]));
        invalid_cdb(&h.exec(&cdb::c16(0x8f, p << 5 | 0x02, 0, 1), &[0; BS]));
    }
    lba_oob(&h.exec(&cdb::c10(0x2f, 0x02, N as u32 + 1, 0), &[]));
    lba_oob(&h.exec(&cdb::c10(0x2f, 0x02, 0x8000_0000, 0), &[]));
    lba_oob(&h.exec(&cdb::c16(0x8f, 0x02, u64::MAX, 0), &[]));
    lba_oob(&h.exec(&cdb::c12(0xaf, 0x02, N as u32 - 1, 2), &[0; 2 * BS]));
    good(&h.exec(&cdb::c10(0x2f, 0x02, 0, 0), &[]));
}

#[test]
fn write_and_verify_writes_and_checks() {
    let mut h = Harness::new(N);
    let data: Vec<u8> = (0..256 * BS).map(|i| (i % 241) as u8).collect();
    for (c, lba) in [
        (cdb::c10(0x2e, 0x02, 0, 256), 0),
        (cdb::c12(0xae, 0x02, 1, 256), 1),
        (cdb::c16(0x8e, 0x12, N - 256, 256), N - 256),
        (cdb::c10(0x2e, 0x00, 3, 256), 3),
    ] {
        good(&h.exec(&c, &data));
        assert_eq!(h.get(lba, 256), data);
    }
    // 0 blocks with no data, as libiscsi probes support.
    good(&h.exec(&cdb::c10(0x2e, 0, 0, 0), &[]));
    // BYTCHK 10b and 11b are reserved for WRITE AND VERIFY.
    invalid_cdb(&h.exec(&cdb::c10(0x2e, 0x04, 0, 1), &[0; BS]));
    invalid_cdb(&h.exec(&cdb::c10(0x2e, 0x06, 0, 1), &[0; BS]));
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&cdb::c16(0x8e, p << 5 | 0x02, 0, 1), &[0; BS]));
    }
    lba_oob(&h.exec(&cdb::c10(0x2e, 0x02, N as u32, 1), &[0; BS]));
    lba_oob(&h.exec(&cdb::c16(0x8e, 0x02, 1 << 63, 0), &[]));
}

/// libiscsi WriteVerify10Residuals: BYTCHK=1 with EDTL 0, 200 bytes, and
/// more or fewer blocks than the CDB.
#[test]
fn write_and_verify_residual_shapes() {
    let mut h = Harness::new(N);
    good(&h.exec(&cdb::c10(0x2e, 0x02, 0, 1), &[]));
    good(&h.exec(&cdb::c10(0x2e, 0x02, 0, 1), &[0xa6; 200]));
    assert!(!h.mapped(0));
    h.put(0, &[b'a'; 2 * BS]);
    good(&h.exec(&cdb::c10(0x2e, 0x02, 0, 1), &[b'b'; 2 * BS]));
    assert_eq!(h.get(0, 2), [[b'b'; BS], [b'a'; BS]].concat());
    h.put(0, &[b'a'; 2 * BS]);
    good(&h.exec(&cdb::c10(0x2e, 0x02, 0, 2), &[b'b'; BS]));
    assert_eq!(h.get(0, 2), [[b'b'; BS], [b'a'; BS]].concat());
}

#[test]
fn write_and_verify_on_a_readonly_lu() {
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&cdb::c10(0x2e, 0x02, 0, 1), &[0xa6; BS]));
    write_protected(&h.exec(&cdb::c12(0xae, 0x02, 0, 1), &[0xa6; BS]));
    write_protected(&h.exec(&cdb::c16(0x8e, 0x02, 0, 1), &[0xa6; BS]));
    // VERIFY only reads.
    good(&h.exec(&cdb::c10(0x2f, 0x02, 0, 1), &[0; BS]));
}
