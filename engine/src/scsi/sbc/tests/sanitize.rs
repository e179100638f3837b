//! SANITIZE (libiscsi Sanitize).

use super::*;

const N: u64 = 1024;

fn overwrite_list(count_flags: u8, pattern: &[u8]) -> Vec<u8> {
    let mut d = vec![count_flags, 0];
    d.extend_from_slice(&(pattern.len() as u16).to_be_bytes());
    d.extend_from_slice(pattern);
    d
}

#[test]
fn block_and_crypto_erase_deallocate_everything() {
    for sa in [0x02, 0x03] {
        let mut h = Harness::new(N);
        h.put(0, &[b'a'; 256 * BS]);
        h.put(N - 256, &[b'a'; 256 * BS]);
        good(&h.exec(&cdb::sanitize(false, false, sa, 0), &[]));
        let back = good(&h.exec(&cdb::c16(0x88, 0, N - 256, 256), &[]));
        assert!(back.iter().all(|&b| b == 0));
        assert!(!h.mapped(0) && !h.mapped(N - 1));
        // A parameter list is not allowed.
        let d = invalid_cdb(&h.exec(&cdb::sanitize(false, false, sa, 8), &[0; 8]));
        assert_eq!(d.field, Some((true, 7)));
        // IMMED and AUSE are accepted.
        good(&h.exec(&cdb::sanitize(true, true, sa, 0), &[]));
    }
}

#[test]
fn overwrite_fills_every_block_with_the_pattern() {
    let mut h = Harness::new(N);
    h.put(0, &[b'a'; 256 * BS]);
    good(&h.exec(
        &cdb::sanitize(false, false, 0x01, BS as u16 + 4),
        &overwrite_list(1, &[0xaa; BS]),
    ));
    assert_eq!(h.get(0, 1), vec![0xaa; BS]);
    assert_eq!(h.get(N - 1, 1), vec![0xaa; BS]);
    // A shorter pattern repeats; INVERT with an even count inverts it.
    good(&h.exec(
        &cdb::sanitize(false, false, 0x01, 8),
        &overwrite_list(1, &[1, 2, 3, 4]),
    ));
    assert_eq!(&h.get(7, 1)[..8], &[1, 2, 3, 4, 1, 2, 3, 4]);
    good(&h.exec(
        &cdb::sanitize(false, false, 0x01, 8),
        &overwrite_list(0x82, &[1, 2, 3, 4]),
    ));
    assert_eq!(&h.get(N - 1, 1)[..4], &[0xfe, 0xfd, 0xfc, 0xfb]);
    good(&h.exec(
        &cdb::sanitize(false, false, 0x01, 8),
        &overwrite_list(0x83, &[1, 2, 3, 4]),
    ));
    assert_eq!(&h.get(N - 1, 1)[..4], &[1, 2, 3, 4]);
    // Half a block of pattern; the Data-Out may carry padding.
    let mut list = overwrite_list(1, &[0x55; BS / 2]);
    list.extend_from_slice(&[0; 3]);
    good(&h.exec(&cdb::sanitize(false, false, 0x01, BS as u16 / 2 + 4), &list));
    assert_eq!(h.get(3, 1), vec![0x55; BS]);
}

#[test]
fn overwrite_parameter_validation() {
    let mut h = Harness::new(N);
    let ok = overwrite_list(1, &[0xaa; BS]);
    for len in 0..5u16 {
        let d = invalid_cdb(&h.exec(&cdb::sanitize(false, false, 0x01, len), &ok[..8]));
        assert_eq!(d.field, Some((true, 7)));
    }
    let mut long = ok.clone();
    long.extend_from_slice(&[0; 4]);
    invalid_cdb(&h.exec(&cdb::sanitize(false, false, 0x01, BS as u16 + 5), &long));
    // OVERWRITE COUNT zero.
    let d = invalid_param(&h.exec(
        &cdb::sanitize(false, false, 0x01, BS as u16 + 4),
        &overwrite_list(0, &[0xaa; BS]),
    ));
    assert_eq!(d.field, Some((false, 0)));
    // Pattern length zero, larger than a block, larger than the list.
    let mut zero = ok.clone();
    zero[2..4].copy_from_slice(&[0, 0]);
    invalid_param(&h.exec(&cdb::sanitize(false, false, 0x01, BS as u16 + 4), &zero));
    let mut big = ok.clone();
    big[2..4].copy_from_slice(&(BS as u16 + 4).to_be_bytes());
    invalid_param(&h.exec(&cdb::sanitize(false, false, 0x01, BS as u16 + 4), &big));
    let mut over = overwrite_list(1, &[1; 16]);
    over[2..4].copy_from_slice(&[0, 17]);
    invalid_param(&h.exec(&cdb::sanitize(false, false, 0x01, 20), &over));
    // TEST field nonzero.
    invalid_param(&h.exec(
        &cdb::sanitize(false, false, 0x01, 8),
        &overwrite_list(0x21, &[1; 4]),
    ));
    // A Data-Out shorter than the PARAMETER LIST LENGTH.
    check(
        &h.exec(&cdb::sanitize(false, false, 0x01, 8), &[1, 0, 0, 4]),
        key::ILLEGAL_REQUEST,
        0x1a,
        0,
    );
    assert!(!h.mapped(0));
}

#[test]
fn reserved_fields_and_service_actions() {
    let mut h = Harness::new(N);
    for sa in [0x01, 0x02, 0x03] {
        let list = if sa == 0x01 {
            overwrite_list(1, &[0xaa; BS])
        } else {
            Vec::new()
        };
        let len = list.len() as u16;
        let mut c = cdb::sanitize(false, false, sa, len);
        c[1] |= 0x40;
        let d = invalid_cdb(&h.exec(&c, &list));
        assert_eq!(d.field, Some((true, 1)));
        for at in 2..7 {
            let mut c = cdb::sanitize(false, false, sa, len);
            c[at] = at as u8;
            let d = invalid_cdb(&h.exec(&c, &list));
            assert_eq!(d.field, Some((true, at as u16)));
        }
    }
    for sa in (0..=0x1f).filter(|sa| ![1, 2, 3, 0x1f].contains(sa)) {
        invalid_cdb(&h.exec(&cdb::sanitize(false, false, sa, 0), &[]));
    }
    // EXIT FAILURE MODE: no parameter list allowed, otherwise a no-op.
    invalid_cdb(&h.exec(&cdb::sanitize(false, false, 0x1f, 8), &[0; 8]));
    h.put(0, &[1; BS]);
    good(&h.exec(&cdb::sanitize(false, false, 0x1f, 0), &[]));
    assert!(h.mapped(0));
}

#[test]
fn readonly_lu_refuses_sanitize() {
    let mut h = Harness::with(
        config(BS as u32, true),
        Box::new(MemoryStore::new(N * BS as u64)),
    );
    write_protected(&h.exec(
        &cdb::sanitize(false, false, 0x01, BS as u16 + 4),
        &overwrite_list(1, &[0xaa; BS]),
    ));
    write_protected(&h.exec(&cdb::sanitize(false, false, 0x02, 0), &[]));
    write_protected(&h.exec(&cdb::sanitize(false, false, 0x03, 0), &[]));
}

#[test]
fn deferred_sanitize_stays_in_progress_until_completed() {
    let mut h = Harness::new(N);
    assert!(!h.lu().sbc.sanitize_in_progress());
    good(&h.exec(&cdb::sanitize(false, false, 0x02, 0), &[]));
    assert!(!h.lu().sbc.sanitize_in_progress());
    h.lu().sbc.defer_sanitize = true;
    h.put(0, &[1; BS]);
    good(&h.exec(&cdb::sanitize(false, false, 0x02, 0), &[]));
    assert!(!h.mapped(0));
    assert!(h.lu().sbc.sanitize_in_progress());
    h.lu().sbc.complete_sanitize();
    assert!(!h.lu().sbc.sanitize_in_progress());
}
