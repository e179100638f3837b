//! Mode pages: MODE SENSE, MODE SELECT, D_SENSE, SWP, read-only units.

use super::*;

#[test]
fn mode_sense_all_pages() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(d[0] as usize, d.len() - 1, "mode data length");
    assert_eq!(d[2], 0x10, "DPOFUA, not write protected");
    assert_eq!(d[3], 8, "one short block descriptor");
    assert_eq!(be32(d, 4) as u64, BLOCKS);
    assert_eq!(be32(d, 8), 512);
    let codes: Vec<u8> = mode_pages(d).iter().map(|p| p.0).collect();
    assert_eq!(codes, vec![0x01, 0x08, 0x0a, 0x1c]);
    let control = control_page(&mut dev, &i1(), 0);
    let from_all = &mode_pages(d).into_iter().find(|p| p.0 == 0x0a).unwrap().1;
    assert_eq!(&control, from_all);
    assert_eq!(control[1], 0x0a);
    // Subpage FFh returns the same pages; other subpages are invalid.
    let all_sub = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0xff, 255));
    assert_eq!(all_sub.data_in, r.data_in);
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x0a, 0x01, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x05, 0, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn mode_sense_residual_and_page_controls() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 4));
    assert_good(&r);
    assert_eq!(r.data_in.len(), 4);
    let changeable = control_page(&mut dev, &i1(), 1);
    assert_eq!(changeable[2], 0x04, "D_SENSE changeable");
    assert_eq!(changeable[4], 0x08, "SWP changeable");
    let default = control_page(&mut dev, &i1(), 2);
    assert_eq!(default, control_page(&mut dev, &i1(), 0));
    let r = exec(&mut dev, &i1(), &mode_sense6(3, 0x3f, 0, 255));
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::SAVING_PARAMETERS_NOT_SUPPORTED,
    );
    // DBD drops the block descriptor.
    let r = exec(&mut dev, &i1(), &[0x1a, 0x08, 0x3f, 0, 255, 0]);
    assert_eq!(r.data_in[3], 0);
    // MODE SENSE(10) with LLBAA: a long descriptor.
    let r = exec(&mut dev, &i1(), &[0x5a, 0x10, 0x3f, 0, 0, 0, 0, 1, 0, 0]);
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be16(d, 0) as usize, d.len() - 2);
    assert_eq!(d[4] & 1, 1, "LONGLBA");
    assert_eq!(be16(d, 6), 16);
    assert_eq!(be64(d, 8), BLOCKS);
    assert_eq!(be32(d, 20), 512);
}

#[test]
fn d_sense_switches_the_sense_format() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    let bad = [0x12, 0, 1, 0, 255, 0];
    assert_eq!(exec(&mut dev, &i1(), &bad).sense.unwrap()[0], 0x70);
    assert_good(&set_control_bit(&mut dev, &i1(), 2, 0x04, true));
    assert_ne!(control_page(&mut dev, &i1(), 0)[2] & 0x04, 0);
    let r = exec(&mut dev, &i1(), &bad);
    assert_eq!(r.sense.as_ref().unwrap()[0], 0x72);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    // The issuer sees no unit attention; the other nexus does.
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::MODE_PARAMETERS_CHANGED);
    assert_good(&set_control_bit(&mut dev, &i1(), 2, 0x04, false));
    assert_eq!(exec(&mut dev, &i1(), &bad).sense.unwrap()[0], 0x70);
}

#[test]
fn mode_select_rejects_unchangeable_fields() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = set_control_bit(&mut dev, &i1(), 2, 0x20, true);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    let s = r.sense.unwrap();
    assert_eq!(s[15], 0x80 | 0x08 | 5, "parameter list, bit 5");
    assert_eq!(be16(&s, 16), 4 + 2);
    // SP is not supported; a short list is a length error; length 0 is a
    // no-op.
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x11, 0, 0, 4, 0], &[0; 4]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 16, 0], &[0; 2]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    assert_good(&exec(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 0, 0]));
    // An unknown page.
    let data = [0, 0, 0, 0, 0x05, 0x02, 0, 0];
    let r = exec_out(&mut dev, &i1(), &[0x15, 0x10, 0, 0, 8, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    // A block descriptor restating the geometry is accepted.
    let mut data = vec![0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0];
    data.extend(control_page(&mut dev, &i1(), 0));
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x15, 0x10, 0, 0, data.len() as u8, 0],
        &data,
    );
    assert_good(&r);
    data[10] = 4;
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x15, 0x10, 0, 0, data.len() as u8, 0],
        &data,
    );
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn software_write_protect() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&set_control_bit(&mut dev, &i1(), 4, 0x08, true));
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_eq!(r.data_in[2] & 0x80, 0x80, "WP");
    assert!(gate_for(&mut dev, &i1(), &READ10).is_ok());
    let r = exec_out(&mut dev, &i1(), &WRITE10, &[0; 512]);
    assert_check(&r, key::DATA_PROTECT, Asc(0x27, 0x02));
    assert_good(&set_control_bit(&mut dev, &i1(), 4, 0x08, false));
    assert!(gate_for(&mut dev, &i1(), &WRITE10).is_ok());
}

#[test]
fn readonly_unit() {
    let mut readonly = config("SN-RO");
    readonly.readonly = true;
    let mut dev = device_with(&[(0, readonly)]);
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255));
    assert_eq!(r.data_in[2] & 0x80, 0x80, "WP");
    for cdb in [
        &WRITE10[..],
        &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0],
        &[0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
    ] {
        let r = exec_out(&mut dev, &i1(), cdb, &[0; 1024]);
        assert_check(&r, key::DATA_PROTECT, Asc::WRITE_PROTECTED);
    }
}
