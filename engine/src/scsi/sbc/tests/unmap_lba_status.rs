//! UNMAP and GET LBA STATUS (libiscsi Unmap, GetLBAStatus).

use super::*;

const N: u64 = 2048;

/// Decodes GET LBA STATUS parameter data into (lba, blocks, status).
fn descriptors(d: &[u8]) -> Vec<(u64, u32, u8)> {
    let len = u32::from_be_bytes(d[0..4].try_into().unwrap()) as usize;
    assert_eq!((len - 4) % 16, 0);
    let n = len.min(d.len() - 4) / 16;
    (0..n)
        .map(|i| {
            let x = &d[8 + 16 * i..24 + 16 * i];
            (
                u64::from_be_bytes(x[0..8].try_into().unwrap()),
                u32::from_be_bytes(x[8..12].try_into().unwrap()),
                x[12] & 0x0f,
            )
        })
        .collect()
}

fn unmap(h: &mut Harness, extents: &[(u64, u32)]) -> CommandResult {
    let list = cdb::unmap_list(extents);
    h.exec(&cdb::unmap(list.len() as u16), &list)
}

#[test]
fn unmap_deallocates_and_reads_zero() {
    let mut h = Harness::new(N);
    h.put(0, &[b'a'; 256 * BS]);
    for i in 1..=256u32 {
        good(&unmap(&mut h, &[(0, i)]));
        let back = good(&h.exec(&cdb::c10(0x28, 0, 0, i as u16), &[]));
        assert!(back.iter().all(|&b| b == 0));
    }
    assert!(!h.mapped(255));
    // One descriptor per block, up to the descriptor limit.
    h.put(0, &[b'a'; 256 * BS]);
    let list: Vec<(u64, u32)> = (0..256).map(|i| (i, 1)).collect();
    good(&unmap(&mut h, &list));
    assert!((0..256).all(|i| !h.mapped(i)));
}

#[test]
fn unmap_of_zero_blocks_and_empty_lists() {
    let mut h = Harness::new(N);
    h.put(0, &[1; BS]);
    for i in 0..256 {
        good(&unmap(&mut h, &[(i, 0)]));
    }
    good(&unmap(&mut h, &[(N, 0)]));
    good(&unmap(&mut h, &[]));
    good(&h.exec(&cdb::unmap(0), &[]));
    let list: Vec<(u64, u32)> = (0..256).map(|i| (i / 2, 0)).collect();
    good(&unmap(&mut h, &list));
    assert!(h.mapped(0));
}

#[test]
fn unmap_parameter_list_validation() {
    let mut h = Harness::new(N);
    h.put(0, &[1; 4 * BS]);
    // PARAMETER LIST LENGTH 1..=7.
    for len in 1..8u16 {
        check(
            &h.exec(&cdb::unmap(len), &[0; 8]),
            key::ILLEGAL_REQUEST,
            0x1a,
            0x00,
        );
    }
    // The Data-Out shorter than the header.
    check(
        &h.exec(&cdb::unmap(24), &[0; 4]),
        key::ILLEGAL_REQUEST,
        0x1a,
        0x00,
    );
    // LBA + count beyond the capacity, or overflowing: nothing unmapped.
    lba_oob(&unmap(&mut h, &[(0, 1), (N - 1, 2)]));
    lba_oob(&unmap(&mut h, &[(N + 1, 0)]));
    lba_oob(&unmap(&mut h, &[(u64::MAX, 2)]));
    assert!(h.mapped(0));
    // Too many descriptors.
    let list: Vec<(u64, u32)> = (0..257).map(|i| (i, 1)).collect();
    let d = invalid_param(&unmap(&mut h, &list));
    assert_eq!(d.field, Some((false, 2)));
    // Too many LBAs.
    h.lu().sbc.limits.max_unmap_lba_count = 3;
    let d = invalid_param(&unmap(&mut h, &[(0, 2), (2, 2)]));
    assert_eq!(d.field, Some((false, 32)));
    good(&unmap(&mut h, &[(0, 2), (2, 1)]));
    assert!(h.mapped(3) && !h.mapped(2));
    // UNMAP DATA LENGTH too small for the descriptors.
    let mut list = cdb::unmap_list(&[(3, 1)]);
    list[1] = 6;
    invalid_param(&h.exec(&cdb::unmap(list.len() as u16), &list));
    // An incomplete last descriptor is ignored.
    let mut list = cdb::unmap_list(&[(3, 1)]);
    list[3] = 15;
    good(&h.exec(&cdb::unmap(list.len() as u16), &list));
    assert!(h.mapped(3));
    // A PARAMETER LIST LENGTH that cuts the descriptor off.
    let list = cdb::unmap_list(&[(3, 1)]);
    good(&h.exec(&cdb::unmap(20), &list));
    assert!(h.mapped(3));
    // ANCHOR without ANC_SUP.
    let list = cdb::unmap_list(&[(3, 1)]);
    let mut c = cdb::unmap(list.len() as u16);
    c[1] = 0x01;
    let d = invalid_cdb(&h.exec(&c, &list));
    assert_eq!(d.field, Some((true, 1)));
    assert!(h.mapped(3));
}

#[test]
fn unmap_is_refused_without_thin_provisioning_or_when_readonly() {
    let (mut h, _) = thick(N);
    check(&unmap(&mut h, &[(0, 1)]), key::ILLEGAL_REQUEST, 0x20, 0x00);
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&unmap(&mut h, &[(0, 1)]));
}

#[test]
fn get_lba_status_reports_runs_from_the_starting_lba() {
    let mut h = Harness::new(N);
    h.put(0, &[b'A'; 264 * BS]);
    good(&unmap(&mut h, &[(0, 8)]));
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(0, 24), &[])));
    assert_eq!(d, vec![(0, 8, 1)]);
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(9, 24), &[])));
    assert_eq!(d, vec![(9, 255, 0)]);
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(0, 1024), &[])));
    assert_eq!(d, vec![(0, 8, 1), (8, 256, 0), (264, (N - 264) as u32, 1)]);
    // The parameter data length counts every descriptor returned.
    let raw = good(&h.exec(&cdb::get_lba_status(0, 1024), &[]));
    assert_eq!(raw.len(), 8 + 3 * 16);
    assert_eq!(&raw[0..4], &[0, 0, 0, 4 + 3 * 16]);
    // Allocation lengths that cut the data.
    assert_eq!(good(&h.exec(&cdb::get_lba_status(0, 0), &[])).len(), 0);
    let cut = good(&h.exec(&cdb::get_lba_status(0, 12), &[]));
    assert_eq!(&cut[..], &[0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0]);
    let two = descriptors(&good(&h.exec(&cdb::get_lba_status(0, 40), &[])));
    assert_eq!(two.len(), 2);
    for i in 1..=256 {
        good(&h.exec(&cdb::get_lba_status(i, 24), &[]));
        good(&h.exec(&cdb::get_lba_status(N - i, 24), &[]));
    }
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(N - 1, 24), &[])));
    assert_eq!(d, vec![(N - 1, 1, 1)]);
}

#[test]
fn get_lba_status_beyond_the_end() {
    let mut h = Harness::new(N);
    lba_oob(&h.exec(&cdb::get_lba_status(N, 24), &[]));
    lba_oob(&h.exec(&cdb::get_lba_status(N + 1, 24), &[]));
    lba_oob(&h.exec(&cdb::get_lba_status(1 << 63, 24), &[]));
    lba_oob(&h.exec(&cdb::get_lba_status(u64::MAX, 24), &[]));
}

/// libiscsi GetLBAStatus.UnmapSingle with one logical block per physical
/// block.
#[test]
fn get_lba_status_after_unmapping_single_blocks() {
    let mut h = Harness::new(N);
    h.put(0, &[b'A'; 257 * BS]);
    for i in 0..256u64 {
        good(&unmap(&mut h, &[(i, 1)]));
        let d = descriptors(&good(&h.exec(&cdb::get_lba_status(i + 1, 24), &[])));
        assert_eq!(d[0].0, i + 1);
        assert_eq!(d[0].2, 0);
    }
    for i in 1..256u64 {
        h.put(0, &[b'A'; 257 * BS]);
        good(&unmap(&mut h, &[(0, i as u32)]));
        let d = descriptors(&good(&h.exec(&cdb::get_lba_status(0, 24), &[])));
        assert_eq!(d, vec![(0, i as u32, 1)]);
        let d = descriptors(&good(&h.exec(&cdb::get_lba_status(i + 1, 24), &[])));
        assert_eq!((d[0].0, d[0].2), (i + 1, 0));
    }
}

#[test]
fn get_lba_status_with_4k_blocks_rounds_partly_mapped_blocks_to_mapped() {
    let mut h = Harness::with(config(4096, false), Box::new(MemoryStore::new(16 * 4096)));
    // Map only the second 512-byte sector of block 2.
    h.lu().store.write_at(2 * 4096 + 512, &[1; 512]).unwrap();
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(0, 1024), &[])));
    assert_eq!(d, vec![(0, 2, 1), (2, 1, 0), (3, 13, 1)]);
}

#[test]
fn get_lba_status_on_a_thick_lu_is_all_mapped() {
    let (mut h, _) = thick(N);
    let d = descriptors(&good(&h.exec(&cdb::get_lba_status(5, 1024), &[])));
    assert_eq!(d, vec![(5, (N - 5) as u32, 0)]);
}
