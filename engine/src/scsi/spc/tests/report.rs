//! REPORT LUNS, REPORT SUPPORTED OPERATION CODES / TMFs, absent LUNs.

use super::*;

#[test]
fn report_luns_select_report() {
    let mut dev = device_with(&[(0, config("A")), (3, config("B")), (300, config("C"))]);
    let r = exec(&mut dev, &i1(), &report_luns(0, 4096));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 0), 24);
    assert_eq!(be64(d, 8), 0);
    assert_eq!(be64(d, 16), 3 << 48);
    assert_eq!(be64(d, 24), (0x4000 | 300) << 48);
    assert_eq!(
        exec(&mut dev, &i1(), &report_luns(2, 4096)).data_in,
        r.data_in
    );
    assert_eq!(
        &exec(&mut dev, &i1(), &report_luns(1, 4096)).data_in[..],
        &[0; 8]
    );
    let r = exec(&mut dev, &i1(), &report_luns(0, 16));
    assert_eq!(r.data_in.len(), 16);
    assert_eq!(be32(&r.data_in, 0), 24);
    let r = exec(&mut dev, &i1(), &report_luns(7, 4096));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn absent_lun_answers() {
    let mut dev = device_with(&[(1, config("A"))]);
    let r = run(&mut dev, &i1(), 0, &inquiry(false, 0, 96), &[]);
    assert_good(&r);
    assert_eq!(r.data_in[0], 0x7f);
    assert_eq!(r.data_in[4] as usize, r.data_in.len() - 5);
    let r = run(&mut dev, &i1(), 0, &report_luns(0, 4096), &[]);
    assert_good(&r);
    assert_eq!(be64(&r.data_in, 8), 1 << 48);
    let r = run(&mut dev, &i1(), 0, &TUR, &[]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let r = run(&mut dev, &i1(), 7, &READ10, &[]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let r = run(&mut dev, &i1(), 0, &[0x03, 0, 0, 0, 18, 0], &[]);
    assert_good(&r);
    assert_eq!((r.data_in[2], r.data_in[12]), (key::ILLEGAL_REQUEST, 0x25));
    let r = run(&mut dev, &i1(), 0, &inquiry(true, 0, 96), &[]);
    assert_eq!(&r.data_in[..], &[0x7f, 0, 0, 1, 0]);
}

#[test]
fn report_supported_opcodes_all() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 65535));
    assert_good(&r);
    assert_eq!(be32(&r.data_in, 0) as usize, r.data_in.len() - 4);
    let plain = all_commands(&r.data_in);
    assert_eq!(plain.len(), crate::scsi::commands().len());
    assert!(plain.iter().all(|c| !c.3 && (c.2 || c.1 == 0)));
    assert!(plain.contains(&(0x5e, 3, true, false, 10)));
    assert!(plain.contains(&(0x28, 0, false, false, 10)));
    let r = exec(&mut dev, &i1(), &rsoc(true, 0, 0, 0, 65535));
    let timed = all_commands(&r.data_in);
    assert_eq!(timed.len(), plain.len());
    let mut at = 4;
    while at < r.data_in.len() {
        assert_eq!(be16(&r.data_in, at + 8), 0x0a, "timeouts descriptor length");
        at += 20;
    }
    let r = exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 1024));
    assert_eq!(r.data_in.len(), 1024.min(4 + 8 * plain.len()));
}

#[test]
fn report_supported_opcodes_one_command() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let all = all_commands(&exec(&mut dev, &i1(), &rsoc(false, 0, 0, 0, 65535)).data_in);
    for (opcode, sa, servactv, _, cdb_len) in all {
        let (good, bad) = if servactv { (2, 1) } else { (1, 2) };
        let r = exec(&mut dev, &i1(), &rsoc(false, bad, opcode, sa, 65535));
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
        let r = exec(&mut dev, &i1(), &rsoc(false, good, opcode, sa, 65535));
        assert_good(&r);
        let d = &r.data_in;
        assert_eq!(d[1] & 7, 3, "supported");
        assert_eq!(be16(d, 2), cdb_len);
        assert_eq!(d[4], opcode);
        if servactv {
            assert_eq!((d[5] & 0x1f) as u16, sa);
        }
        let r = exec(&mut dev, &i1(), &rsoc(true, 3, opcode, sa, 65535));
        assert_eq!(r.data_in[1], 0x83);
        assert_eq!(r.data_in.len(), 4 + cdb_len as usize + 12);
    }
    // READ(10) usage data advertises DPO and FUA.
    let r = exec(&mut dev, &i1(), &rsoc(false, 1, 0x28, 0, 65535));
    assert_eq!(r.data_in[5] & 0x18, 0x18);
    // Unsupported opcode: SUPPORT 001b.
    let r = exec(&mut dev, &i1(), &rsoc(false, 1, 0xe7, 0, 65535));
    assert_eq!(&r.data_in[..], &[0, 1, 0, 0]);
    let r = exec(&mut dev, &i1(), &rsoc(false, 2, 0x5e, 9, 65535));
    assert_eq!(&r.data_in[..], &[0, 1, 0, 0]);
    let r = exec(&mut dev, &i1(), &rsoc(false, 5, 0x28, 0, 65535));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn report_supported_tmfs() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(
        &mut dev,
        &i1(),
        &[0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0],
    );
    assert_eq!(&r.data_in[..], &[0xd8, 0, 0, 0]);
    let r = exec(
        &mut dev,
        &i1(),
        &[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 255, 0, 0],
    );
    assert_eq!(r.data_in.len(), 16);
    assert_eq!(r.data_in[3], 0x0c);
}
