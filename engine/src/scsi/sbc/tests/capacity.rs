//! READ CAPACITY(10/16) (libiscsi ReadCapacity10/16).

use super::*;

#[test]
fn read_capacity10_reports_last_lba_and_block_length() {
    let mut h = Harness::new(1000);
    let d = good(&h.exec(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]));
    assert_eq!(&d[..], &[0, 0, 0x03, 0xe7, 0, 0, 0x02, 0x00]);
    // PMI with an LBA is accepted (obsolete); an LBA without PMI is not.
    good(&h.exec(&[0x25, 0, 0, 0, 0, 9, 0, 0, 1, 0], &[]));
    let d = invalid_cdb(&h.exec(&[0x25, 0, 0, 0, 0, 9, 0, 0, 0, 0], &[]));
    assert_eq!(d.field, Some((true, 2)));
}

#[test]
fn read_capacity10_saturates_beyond_32_bits() {
    let blocks = (1u64 << 32) + 10;
    let mut h = Harness::new(blocks);
    let d = good(&h.exec(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]));
    assert_eq!(&d[..4], &[0xff; 4]);
    let d = good(&h.exec(&cdb::read_capacity16(32), &[]));
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), blocks - 1);
}

#[test]
fn read_capacity16_thin_and_thick() {
    let mut h = Harness::new(1000);
    let d = good(&h.exec(&cdb::read_capacity16(32), &[]));
    assert_eq!(d.len(), 32);
    assert_eq!(u64::from_be_bytes(d[0..8].try_into().unwrap()), 999);
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 512);
    assert_eq!(d[12], 0, "no protection information");
    assert_eq!(d[13], 0, "one logical block per physical block");
    assert_eq!(d[14], 0xc0, "LBPME and LBPRZ");
    assert_eq!(d[15], 0);
    assert!(d[16..].iter().all(|&b| b == 0));

    let (mut h, _) = thick(1000);
    let d = good(&h.exec(&cdb::read_capacity16(32), &[]));
    assert_eq!(d[14], 0x00);
}

#[test]
fn read_capacity16_honours_the_allocation_length() {
    let mut h = Harness::new(1000);
    let full = good(&h.exec(&cdb::read_capacity16(32), &[]));
    for alloc in 0..=16u32 {
        let d = good(&h.exec(&cdb::read_capacity16(alloc), &[]));
        assert_eq!(&d[..], &full[..alloc as usize]);
    }
    assert_eq!(good(&h.exec(&cdb::read_capacity16(4096), &[])).len(), 32);
}
