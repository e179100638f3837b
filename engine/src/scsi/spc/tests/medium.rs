//! Medium: START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, TEST UNIT READY.

use super::*;

#[test]
fn eject_and_load() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &start_stop(true, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_no_medium(&exec(&mut dev, &i1(), &READ10));
    assert_no_medium(&exec(&mut dev, &i1(), &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_no_medium(&exec(&mut dev, &i1(), &[0x35, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    // Non-medium commands still work.
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255)));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 18, 0]);
    assert_eq!((r.data_in[2], r.data_in[12]), (key::NOT_READY, 0x3a));
    assert_good(&exec(&mut dev, &i1(), &start_stop(true, 0, true, true)));
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn stop_without_loej_and_power_conditions_keep_the_unit_ready() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    for (immed, loej, start) in [(false, false, false), (true, false, true)] {
        assert_good(&exec(&mut dev, &i1(), &start_stop(immed, 0, loej, start)));
        assert_good(&exec(&mut dev, &i1(), &TUR));
    }
    for pc in 1..16 {
        assert_good(&exec(&mut dev, &i1(), &start_stop(true, pc, true, false)));
        assert_good(&exec(&mut dev, &i1(), &TUR));
    }
}

#[test]
fn prevent_allow_eject_sequence() {
    // libiscsi PreventAllow.Eject.
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, true));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, true)));
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn prevent_blocks_eject_from_every_nexus() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // Allowing from the other nexus does not lift this one's prevention.
    assert_good(&exec(&mut dev, &i2(), &prevent(false)));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // Loading is refused too (libiscsi PreventAllow.Eject).
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, true));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, true, false)));
    assert_no_medium(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i1(), &[0x1e, 0, 0, 0, 2, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn prevented_eject_is_reported_before_a_unit_attention() {
    // libiscsi PreventAllow.LUNReset then .2ITNexuses with two sessions.
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset);
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &prevent(true)));
    let r = exec(&mut dev, &i2(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::MEDIUM_REMOVAL_PREVENTED);
    // The unit attention is still there for the next command.
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_good(&exec(&mut dev, &i1(), &prevent(false)));
}

#[test]
fn resets_and_nexus_loss_lift_prevention() {
    for how in 0..5 {
        let mut dev = device();
        clear_ua(&mut dev, &i1());
        assert_good(&exec(&mut dev, &i1(), &prevent(true)));
        let mut who = i1();
        match how {
            0 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset),
            1 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset),
            2 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset),
            3 => {
                dev.nexus_lost(&i1());
                who = nexus("iqn.2024-01.test:init1", 9);
            }
            _ => {
                // Logout, then a new session from the same initiator.
                dev.nexus_lost(&i1());
                who = i1();
            }
        }
        assert!(clear_ua(&mut dev, &who) >= 1);
        assert_good(&exec(&mut dev, &who, &start_stop(false, 0, true, false)));
        assert_no_medium(&exec(&mut dev, &who, &TUR));
        assert_good(&exec(&mut dev, &who, &start_stop(false, 0, true, true)));
    }
}

#[test]
fn fixed_unit_rejects_loej() {
    let mut fixed = config("SN-FIXED");
    fixed.removable = false;
    let mut dev = device_with(&[(0, fixed)]);
    clear_ua(&mut dev, &i1());
    assert_eq!(exec(&mut dev, &i1(), &inquiry(false, 0, 36)).data_in[1], 0);
    let r = exec(&mut dev, &i1(), &start_stop(false, 0, true, false));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    assert_good(&exec(&mut dev, &i1(), &start_stop(false, 0, false, true)));
}
