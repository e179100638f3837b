//! WRITE SAME(10/16) (libiscsi WriteSame10/16).

use super::*;

const N: u64 = 70_000;

fn ws10(flags: u8, lba: u32, blocks: u16) -> Vec<u8> {
    cdb::c10(0x41, flags, lba, blocks)
}

fn ws16(flags: u8, lba: u64, blocks: u32) -> Vec<u8> {
    cdb::c16(0x93, flags, lba, blocks)
}

#[test]
fn writes_the_block_to_every_lba() {
    let mut h = Harness::new(N);
    for i in [1u16, 2, 255, 256] {
        let block = [i as u8; BS];
        good(&h.exec(&ws10(0, 0, i), &block));
        let back = good(&h.exec(&cdb::c10(0x28, 0, 0, i), &[]));
        assert!(back.iter().all(|&b| b == i as u8));
        good(&h.exec(&ws16(0, N - i as u64, i as u32), &block));
        assert_eq!(
            h.get(N - i as u64, i as u64),
            vec![i as u8; i as usize * BS]
        );
    }
    // A non-uniform block is repeated as is.
    let block: Vec<u8> = (0..BS).map(|i| i as u8).collect();
    good(&h.exec(&ws16(0, 1000, 3), &block));
    assert_eq!(h.get(1000, 3), [&block[..], &block, &block].concat());
}

#[test]
fn zero_blocks_means_to_the_end_within_the_maximum() {
    let mut h = Harness::new(N);
    let max = h.lu().sbc.limits().max_write_same_length;
    assert_eq!(max, 0xffff);
    // From LBA 0 that is more than MAXIMUM WRITE SAME LENGTH.
    let d = invalid_cdb(&h.exec(&ws10(0, 0, 0), &[0; BS]));
    assert_eq!(d.field, Some((true, 7)));
    invalid_cdb(&h.exec(&ws16(0, 0, 0), &[0; BS]));
    invalid_cdb(&h.exec(&ws10(0, (N - max - 1) as u32, 0), &[0; BS]));
    good(&h.exec(&ws10(0, (N - max) as u32, 0), &[9; BS]));
    assert_eq!(h.get(N - 1, 1), vec![9; BS]);
    assert_eq!(h.get(N - max, 1), vec![9; BS]);
    assert_eq!(h.get(N - max - 1, 1), vec![0; BS]);
    good(&h.exec(&ws16(0, N - max + 1, 0), &[3; BS]));
    lba_oob(&h.exec(&ws10(0, N as u32 + 1, 0), &[0; BS]));
    lba_oob(&h.exec(&ws10(0, N as u32, 0), &[0; BS]));
    lba_oob(&h.exec(&ws10(0, 0x8000_0000, 0), &[0; BS]));
    lba_oob(&h.exec(&ws16(0, 1 << 63, 0), &[0; BS]));
    lba_oob(&h.exec(&ws16(0, u64::MAX, 0), &[0; BS]));
    invalid_cdb(&h.exec(&ws16(0, 0, max as u32 + 1), &[0; BS]));
    // WSNZ forbids the zero length.
    h.lu().sbc.limits.wsnz = true;
    invalid_cdb(&h.exec(&ws16(0, N - 1, 0), &[0; BS]));
}

#[test]
fn beyond_end_of_medium() {
    let mut h = Harness::new(N);
    for i in 1..=256u64 {
        lba_oob(&h.exec(&ws10(0, (N - i + 1) as u32, i as u16), &[0; BS]));
        lba_oob(&h.exec(&ws16(0, 1 << 63, i as u32), &[0; BS]));
        lba_oob(&h.exec(&ws16(0, u64::MAX, i as u32), &[0; BS]));
        if i >= 2 {
            lba_oob(&h.exec(&ws16(0, N - 1, i as u32), &[0; BS]));
        }
    }
}

#[test]
fn unmap_deallocates() {
    let mut h = Harness::new(N);
    for i in [1u32, 8, 256] {
        h.put(0, &vec![0xff; i as usize * BS]);
        good(&h.exec(&ws10(0x08, 0, i as u16), &[0; BS]));
        assert!(h.get(0, i as u64).iter().all(|&b| b == 0));
        assert!(!h.mapped(0));
        h.put(N - i as u64, &vec![0xff; i as usize * BS]);
        good(&h.exec(&ws16(0x08, N - i as u64, i), &[0; BS]));
        assert!(!h.mapped(N - i as u64));
    }
    // NDOB: no Data-Out, the blocks are deallocated.
    h.put(5, &[0xff; 3 * BS]);
    good(&h.exec(&ws16(0x09, 5, 3), &[]));
    assert!(!h.mapped(5) && !h.mapped(7));
    // NDOB without UNMAP writes zeros.
    good(&h.exec(&ws16(0x01, 20, 2), &[]));
    assert!(h.mapped(20));
    assert_eq!(h.get(20, 2), vec![0; 2 * BS]);
    // UNMAP deallocates whatever the block holds (WriteSame10.UnmapUntilEnd
    // sends the 0xff it wrote before).
    h.put(1, &[0xff; 7 * BS]);
    good(&h.exec(&ws10(0x08, 1, 7), &[0xff; BS]));
    assert_eq!(h.get(1, 7), vec![0; 7 * BS]);
    assert!(!h.mapped(1));
    // Until the end.
    for i in [1u64, 3, 256] {
        h.put(N - i, &vec![0xff; i as usize * BS]);
        good(&h.exec(&ws10(0x08, (N - i) as u32, 0), &[0xff; BS]));
        let back = good(&h.exec(&cdb::c10(0x28, 0, (N - i) as u32, i as u16), &[]));
        assert!(back.iter().all(|&b| b == 0));
        h.put(N - i, &vec![0xff; i as usize * BS]);
        good(&h.exec(&ws16(0x08, N - i, 0), &[0; BS]));
        assert!(!h.mapped(N - i));
    }
}

#[test]
fn anchor_obsolete_bits_and_protection_are_invalid() {
    let mut h = Harness::new(N);
    let d = invalid_cdb(&h.exec(&ws10(0x10, 0, 1), &[0; BS]));
    assert_eq!(d.field, Some((true, 1)));
    invalid_cdb(&h.exec(&ws10(0x18, 0, 1), &[0; BS]));
    invalid_cdb(&h.exec(&ws16(0x18, 0, 1), &[0; BS]));
    invalid_cdb(&h.exec(&ws10(0x02, 0, 1), &[0; BS]));
    invalid_cdb(&h.exec(&ws16(0x04, 0, 1), &[0; BS]));
    for p in 1..8u8 {
        invalid_cdb(&h.exec(&ws10(p << 5, 0, 1), &[0; BS]));
        invalid_cdb(&h.exec(&ws16(p << 5, 0, 1), &[0; BS]));
    }
    assert!(!h.mapped(0));
}

#[test]
fn data_out_must_be_exactly_one_block() {
    let mut h = Harness::new(N);
    for data in [&[0xa6; BS / 2][..], &[0xa6; 2 * BS][..], &[][..]] {
        check(
            &h.exec(&ws10(0x08, 0, 1), data),
            key::ILLEGAL_REQUEST,
            0x24,
            0,
        );
        check(&h.exec(&ws16(0, 0, 1), data), key::ILLEGAL_REQUEST, 0x24, 0);
    }
    assert!(!h.mapped(0));
}

#[test]
fn unmap_needs_thin_provisioning() {
    let (mut h, _) = thick(N);
    invalid_cdb(&h.exec(&ws10(0x08, 0, 1), &[0; BS]));
    invalid_cdb(&h.exec(&ws16(0x08, 0, 1), &[0; BS]));
    good(&h.exec(&ws16(0, 0, 1), &[0; BS]));
}

#[test]
fn readonly_lu_rejects_write_same() {
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(&ws10(0, 0, 1), &[0; BS]));
    write_protected(&h.exec(&ws10(0x08, 0, 1), &[]));
    write_protected(&h.exec(&ws16(0, 0, 1), &[0; BS]));
    write_protected(&h.exec(&ws16(0x08, 0, 1), &[]));
}
