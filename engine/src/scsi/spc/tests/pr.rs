//! PERSISTENT RESERVE IN/OUT and the access rules.

use super::*;

#[test]
fn register_read_keys_and_unregister() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let (gen0, keys) = read_keys(&mut dev, &i1());
    assert!(keys.is_empty());
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x1234));
    assert_eq!(read_keys(&mut dev, &i1()), (gen0 + 1, vec![0x1234]));
    // Re-registering with a wrong reservation key conflicts.
    assert_conflict(&prout(&mut dev, &i1(), REGISTER, 0, 0, 0x1235));
    // Unregistered nexuses may not name a key.
    clear_ua(&mut dev, &i2());
    assert_conflict(&prout(&mut dev, &i2(), REGISTER, 0, 7, 8));
    assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0, 0));
    assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0x1234, 0x99));
    assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0x99, 0));
    let (generation, keys) = read_keys(&mut dev, &i1());
    assert_eq!((generation, keys), (gen0 + 3, vec![]));
}

#[test]
fn read_keys_truncated_keeps_additional_length() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x55));
    let r = exec(&mut dev, &i1(), &prin(0, 8));
    assert_good(&r);
    assert_eq!(r.data_in.len(), 8);
    assert_eq!(be32(&r.data_in, 4), 8);
}

#[test]
fn prin_service_action_range() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    for sa in 0..4 {
        assert_good(&exec(&mut dev, &i1(), &prin(sa, 16384)));
    }
    for sa in 4..0x20 {
        let r = exec(&mut dev, &i1(), &prin(sa, 16384));
        assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    }
}

#[test]
fn report_capabilities_and_every_type() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec(&mut dev, &i1(), &prin(2, 16384));
    let d = &r.data_in;
    assert_eq!(be16(d, 0), 8);
    assert_ne!(d[2] & 0x10, 0, "CRH");
    assert_eq!(d[2] & 0x0d, 0, "no SIP_C, ATP_C, PTPL_C");
    assert!((d[3] >> 4) & 7 <= 5);
    assert_eq!(be16(d, 4), 0xea01);
    assert_good(&prout(&mut dev, &i1(), REGISTER_AND_IGNORE, 0, 0, 0x77));
    let (generation, _) = read_keys(&mut dev, &i1());
    for kind in TYPES {
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0x77, 0));
        let expected_key = if kind >= 7 { 0 } else { 0x77 };
        assert_eq!(
            read_reservation(&mut dev, &i1()),
            Some((expected_key, kind))
        );
        // Reserving again with the same type is fine; another conflicts.
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0x77, 0));
        let other = if kind == 1 { 3 } else { 1 };
        assert_conflict(&prout(&mut dev, &i1(), RESERVE, other, 0x77, 0));
        let r = prout(&mut dev, &i1(), RELEASE, other, 0x77, 0);
        assert_check(&r, key::ILLEGAL_REQUEST, Asc(0x26, 0x04));
        assert_good(&prout(&mut dev, &i1(), RELEASE, kind, 0x77, 0));
        assert_eq!(read_reservation(&mut dev, &i1()), None);
    }
    assert_eq!(
        read_keys(&mut dev, &i1()).0,
        generation,
        "RESERVE/RELEASE keep it"
    );
    let r = prout(&mut dev, &i1(), RESERVE, 2, 0x77, 0);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = prout(&mut dev, &i1(), RESERVE, 0x21, 0x77, 0);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn persistent_reservation_access_matrix() {
    // (type, registered i2 reads, writes, unregistered i2 reads, writes),
    // as libiscsi's ProutReserve Access tests expect.
    let expected = [
        (3, false, false, false, false),
        (1, true, false, true, false),
        (6, true, true, false, false),
        (5, true, true, true, false),
        (8, true, true, false, false),
        (7, true, true, true, false),
    ];
    for (kind, reg_read, reg_write, unreg_read, unreg_write) in expected {
        let mut dev = registered_pair();
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0xa1, 0));
        assert!(gate_for(&mut dev, &i1(), &READ10).is_ok());
        assert!(gate_for(&mut dev, &i1(), &WRITE10).is_ok());
        let conflict = Err(Failure::Status(status::RESERVATION_CONFLICT));
        let check = |dev: &mut Device, cdb: &[u8], allowed: bool| {
            let got = gate_for(dev, &i2(), cdb);
            if allowed {
                assert!(got.is_ok(), "type {kind} {cdb:02x?}");
            } else {
                assert_eq!(got, conflict, "type {kind} {cdb:02x?}");
            }
        };
        check(&mut dev, &READ10, reg_read);
        check(&mut dev, &WRITE10, reg_write);
        assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
        check(&mut dev, &READ10, unreg_read);
        check(&mut dev, &WRITE10, unreg_write);
        // Always allowed: INQUIRY, TEST UNIT READY, PERSISTENT RESERVE IN.
        assert_good(&exec(&mut dev, &i2(), &inquiry(false, 0, 36)));
        assert_good(&exec(&mut dev, &i2(), &TUR));
        assert_good(&exec(&mut dev, &i2(), &prin(0, 100)));
        assert_good(&prout(&mut dev, &i1(), RELEASE, kind, 0xa1, 0));
        assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0xa1, 0));
    }
}

#[test]
fn persistent_reservation_ownership() {
    for kind in TYPES {
        let mut dev = registered_pair();
        assert_good(&prout(&mut dev, &i1(), RESERVE, kind, 0xa1, 0));
        assert_good(&prout(&mut dev, &i1(), REGISTER, 0, 0xa1, 0));
        if kind >= 7 {
            // All registrants: the reservation stays with i2.
            assert_eq!(read_reservation(&mut dev, &i1()), Some((0, kind)));
            assert_good(&exec(&mut dev, &i2(), &TUR));
            assert_good(&prout(&mut dev, &i2(), RELEASE, kind, 0xb2, 0));
        } else {
            assert_eq!(read_reservation(&mut dev, &i1()), None);
            let r = exec(&mut dev, &i2(), &TUR);
            if kind >= 5 {
                assert_check(&r, key::UNIT_ATTENTION, Asc::RESERVATIONS_RELEASED);
            } else {
                assert_good(&r);
            }
        }
        assert_good(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
        assert_eq!(read_keys(&mut dev, &i1()).1, vec![]);
    }
}

#[test]
fn clear_removes_everything_and_bumps_generation_once() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 3, 0xa1, 0));
    let (generation, keys) = read_keys(&mut dev, &i1());
    assert_eq!(keys.len(), 2);
    assert_conflict(&prout(&mut dev, &i1(), CLEAR, 0, 0xa2, 0));
    assert_good(&prout(&mut dev, &i1(), CLEAR, 0, 0xa1, 0));
    assert_eq!(read_reservation(&mut dev, &i1()), None);
    assert_eq!(read_keys(&mut dev, &i1()), (generation + 1, vec![]));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::RESERVATIONS_PREEMPTED);
}

#[test]
fn preempt_removes_registration() {
    let mut dev = registered_pair();
    let (generation, _) = read_keys(&mut dev, &i1());
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0xa1));
    assert_eq!(read_keys(&mut dev, &i2()), (generation + 1, vec![0xb2]));
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::REGISTRATIONS_PREEMPTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    // An unknown key conflicts; key 0 without a reservation is invalid.
    assert_conflict(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0x999));
    let r = prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn preempt_takes_over_the_reservation() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 3, 0xb2, 0xa1));
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xb2, 3)));
    assert_check(
        &exec(&mut dev, &i1(), &TUR),
        key::UNIT_ATTENTION,
        Asc::REGISTRATIONS_PREEMPTED,
    );
    assert_eq!(
        gate_for(&mut dev, &i1(), &READ10),
        Err(Failure::Status(status::RESERVATION_CONFLICT))
    );
    // All registrants: PREEMPT with key 0 removes every other registrant.
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 8, 0xa1, 0));
    assert_good(&prout(&mut dev, &i2(), PREEMPT, 1, 0xb2, 0));
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xb2, 1)));
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xb2]);
}

#[test]
fn read_full_status_lists_transport_ids() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    let r = exec(&mut dev, &i1(), &prin(3, 16384));
    assert_good(&r);
    let d = &r.data_in;
    assert_eq!(be32(d, 4) as usize, d.len() - 8);
    let mut at = 8;
    let mut seen = Vec::new();
    while at < d.len() {
        let key = be64(d, at);
        let holder = d[at + 12] & 1 != 0;
        assert_eq!(be16(d, at + 18), 1, "relative target port");
        let id_len = be32(d, at + 20) as usize;
        let id = &d[at + 24..at + 24 + id_len];
        assert_eq!(id[0], 0x45, "iSCSI, initiator port format");
        assert_eq!(be16(id, 2) as usize, id.len() - 4);
        assert_eq!(id.len() % 4, 0);
        let name: Vec<u8> = id[4..].iter().copied().take_while(|&b| b != 0).collect();
        seen.push((key, holder, String::from_utf8(name).unwrap(), d[at + 13]));
        at += 24 + id_len;
    }
    assert_eq!(
        seen,
        vec![
            (0xa1, true, i1().initiator_port_name(), 1),
            (0xb2, false, i2().initiator_port_name(), 0),
        ]
    );
}

#[test]
fn prout_parameter_checks() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    let r = exec_out(
        &mut dev,
        &i1(),
        &[0x5f, 6, 0, 0, 0, 0, 0, 0, 20, 0],
        &[0; 20],
    );
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::PARAMETER_LIST_LENGTH_ERROR);
    let mut data = [0u8; 24];
    data[15] = 1;
    data[20] = 0x01;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 6, 0, 0, 0, 0, 0, 0, 24, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
    data[20] = 0x04;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 6, 0, 0, 0, 0, 0, 0, 24, 0], &data);
    assert_check(
        &r,
        key::ILLEGAL_REQUEST,
        Asc::INVALID_FIELD_IN_PARAMETER_LIST,
    );
}

#[test]
fn register_and_move_hands_over_the_reservation() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    let target = nexus("iqn.2024-01.test:init3", 3);
    let mut id = vec![0x45, 0, 0, 0];
    id.extend(target.initiator_port_name().bytes());
    id.push(0);
    while id.len() % 4 != 0 || id.len() < 24 {
        id.push(0);
    }
    let len = (id.len() - 4) as u16;
    id[2..4].copy_from_slice(&len.to_be_bytes());
    let mut data = vec![0u8; 24];
    data[..8].copy_from_slice(&0xa1u64.to_be_bytes());
    data[8..16].copy_from_slice(&0xc3u64.to_be_bytes());
    data[17] = 0x02;
    data[19] = 1;
    data[20..24].copy_from_slice(&(id.len() as u32).to_be_bytes());
    data.extend(id);
    let n = data.len() as u8;
    let r = exec_out(&mut dev, &i1(), &[0x5f, 7, 1, 0, 0, 0, 0, 0, n, 0], &data);
    assert_good(&r);
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xc3, 1)));
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xb2, 0xc3]);
    // The old holder is gone (UNREG) and may not move it again.
    let r = exec_out(&mut dev, &i1(), &[0x5f, 7, 1, 0, 0, 0, 0, 0, n, 0], &data);
    assert_conflict(&r);
}

#[test]
fn reserve6_and_persistent_reservations_interact() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 1, 0xa1, 0));
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    assert_good(&prout(&mut dev, &i1(), RELEASE, 1, 0xa1, 0));
    // An ordinary reservation blocks another nexus's PERSISTENT RESERVE
    // OUT but not its PERSISTENT RESERVE IN.
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&prout(&mut dev, &i2(), REGISTER, 0, 0xb2, 0));
    assert_good(&exec(&mut dev, &i2(), &prin(0, 100)));
}

#[test]
fn registrations_survive_resets_and_nexus_loss() {
    let mut dev = registered_pair();
    assert_good(&prout(&mut dev, &i1(), RESERVE, 3, 0xa1, 0));
    dev.task_management(&i2(), Lun::from_index(0), TaskManagement::TargetColdReset);
    dev.nexus_lost(&i1());
    clear_ua(&mut dev, &i2());
    assert_eq!(read_keys(&mut dev, &i2()).1, vec![0xa1, 0xb2]);
    assert_eq!(read_reservation(&mut dev, &i2()), Some((0xa1, 3)));
}
