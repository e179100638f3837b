//! EXTENDED COPY and RECEIVE COPY RESULTS.

use super::*;

#[test]
fn extended_copy_copies_blocks() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let pattern: Vec<u8> = (0..2048 * 512).map(|i| (i % 251) as u8).collect();
    dev.lun_mut(0).unwrap().store.write_at(0, &pattern).unwrap();
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let data = xcopy_list(
        1,
        0,
        &[cscd(&vpd, 0, false)],
        &[segment(0, 0, 2048, 0, BLOCKS - 2048)],
    );
    assert_good(&xcopy(&mut dev, &i1(), &data));
    let mut copied = vec![0u8; pattern.len()];
    let lu = dev.lun_mut(0).unwrap();
    lu.store
        .read_at((BLOCKS - 2048) * 512, &mut copied)
        .unwrap();
    assert_eq!(copied, pattern);
    let r = exec(&mut dev, &i1(), &copy_results(0, 1));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0), 8);
    assert_eq!(d[4], 0x01, "completed");
    assert_eq!(be16(d, 5), 1, "segments processed");
    assert_eq!((d[7], be32(d, 8)), (0, 2048 * 512));
    // Results are per nexus and list identifier.
    clear_ua(&mut dev, &i2());
    let r = exec(&mut dev, &i2(), &copy_results(0, 1));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &copy_results(0, 2));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn extended_copy_overlapping_and_between_lus() {
    let mut dev = device_with(&[(0, config("X")), (1, config("Y"))]);
    clear_ua(&mut dev, &i1());
    let pattern: Vec<u8> = (0..4 * 512).map(|i| (i / 512 + 1) as u8).collect();
    dev.lun_mut(0).unwrap().store.write_at(0, &pattern).unwrap();
    let vpd0 = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let vpd1 = run(&mut dev, &i1(), 1, &inquiry(true, 0x83, 255), &[]).data_in;
    let data = xcopy_list(
        0,
        2,
        &[cscd(&vpd0, 0, false), cscd(&vpd1, 0, false)],
        &[segment(0, 0, 4, 0, 2), segment(0, 1, 6, 0, 10)],
    );
    assert_good(&xcopy(&mut dev, &i1(), &data));
    let mut got = vec![0u8; 6 * 512];
    dev.lun_mut(1)
        .unwrap()
        .store
        .read_at(10 * 512, &mut got)
        .unwrap();
    let blocks: Vec<u8> = got.chunks(512).map(|b| b[0]).collect();
    assert_eq!(blocks, vec![1, 2, 1, 2, 3, 4]);
    // LIST ID USAGE 10b holds nothing.
    let r = exec(&mut dev, &i1(), &copy_results(0, 0));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn extended_copy_parameter_errors() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let good = xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[segment(0, 0, 8, 0, 100)]);
    assert_good(&xcopy(&mut dev, &i1(), &[]));
    let length_error = |dev: &mut Device, data: &[u8]| {
        let r = xcopy(dev, &i1(), data);
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    };
    length_error(&mut dev, &good[..16 + 32 - 1]);
    length_error(&mut dev, &good[..good.len() - 1]);
    // Unsupported descriptor types.
    let mut fc = cscd(&vpd, 0, false);
    fc[0] = 0xe0;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[fc], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::UNSUPPORTED_TARGET_DESCRIPTOR_TYPE,
    );
    let stream = vec![
        0x03, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[stream]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE,
    );
    // SPC-3: reserved LU ID TYPE is invalid, NUL aborts the copy.
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 2, false)], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[cscd(&vpd, 0, true)], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_eq!(sense(&r).unwrap().0, key::COPY_ABORTED);
    // Bad destination index; beyond the end of the LU.
    for seg in [segment(0, 1, 8, 0, 100), segment(0, 0, 2048, 0, BLOCKS - 1)] {
        let r = xcopy(
            &mut dev,
            &i1(),
            &xcopy_list(1, 0, &[cscd(&vpd, 0, false)], &[seg]),
        );
        let (k, asc, ascq) = sense(&r).unwrap();
        assert_eq!(k, key::COPY_ABORTED);
        assert!([(0, 0), (8, 4), (0x0d, 2)].contains(&(asc, ascq)));
    }
    // A designator naming no LU of ours.
    let mut other = cscd(&vpd, 0, false);
    other[10] ^= 0xff;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &[other], &[segment(0, 0, 1, 0, 9)]),
    );
    assert_eq!(sense(&r).unwrap().0, key::COPY_ABORTED);
}

#[test]
fn extended_copy_descriptor_limits() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &copy_results(3, 0));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0) as usize, d.len() - 4);
    assert!(be32(d, 0) >= 40);
    let max_cscd = be16(d, 8) as usize;
    let max_segments = be16(d, 10) as usize;
    let max_list = be32(d, 12) as usize;
    assert_eq!(&d[44..44 + d[43] as usize], &[0x02, 0xe4]);
    let vpd = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let one = cscd(&vpd, 0, false);
    let seg = segment(0, 0, 8, 0, 100);
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(
            1,
            0,
            &vec![one.clone(); max_cscd + 1],
            std::slice::from_ref(&seg),
        ),
    );
    let asc = sense(&r).map(|s| (s.1, s.2));
    assert_eq!(asc, Some((0x26, 0x06)));
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(
            1,
            0,
            std::slice::from_ref(&one),
            &vec![seg.clone(); max_segments + 1],
        ),
    );
    assert_eq!(sense(&r).map(|s| (s.1, s.2)), Some((0x26, 0x08)));
    let many = max_list / seg.len() + 1;
    let r = xcopy(
        &mut dev,
        &i1(),
        &xcopy_list(1, 0, &vec![one; max_cscd + 1], &vec![seg; many]),
    );
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
}
