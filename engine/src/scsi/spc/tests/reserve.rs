//! RESERVE(6)/(10) and RELEASE(6)/(10).

use super::*;

#[test]
fn reserve6_two_initiators() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    assert_good(&exec(&mut dev, &i1(), &mode_sense6(0, 0x3f, 0, 255)));
    assert_conflict(&exec(&mut dev, &i2(), &mode_sense6(0, 0x3f, 0, 255)));
    assert_conflict(&exec(&mut dev, &i2(), &TUR));
    assert_conflict(&exec(&mut dev, &i2(), &READ10));
    assert_good(&exec(&mut dev, &i2(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i2(), &[0x03, 0, 0, 0, 18, 0]));
    assert_good(&exec(
        &mut dev,
        &i2(),
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ));
    assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i1(), &RELEASE6));
    assert_good(&exec(&mut dev, &i2(), &RESERVE6));
    assert_good(&exec(&mut dev, &i2(), &[0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    assert_good(&exec(&mut dev, &i1(), &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    let r = exec(&mut dev, &i1(), &[0x16, 0x01, 0, 0, 0, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn reserve6_released_by_loss_and_resets() {
    for how in 0..4 {
        let mut dev = device();
        clear_ua(&mut dev, &i1());
        clear_ua(&mut dev, &i2());
        assert_good(&exec(&mut dev, &i1(), &RESERVE6));
        assert_conflict(&exec(&mut dev, &i2(), &RESERVE6));
        match how {
            0 => dev.nexus_lost(&i1()),
            1 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset),
            2 => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset),
            _ => dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset),
        }
        clear_ua(&mut dev, &i2());
        assert_good(&exec(&mut dev, &i2(), &RESERVE6));
        assert_good(&exec(&mut dev, &i2(), &RELEASE6));
    }
}

#[test]
fn unit_attention_comes_before_reservation_conflict() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    assert_good(&exec(&mut dev, &i1(), &RESERVE6));
    // A login's TEST UNIT READY loop clears the UA even while reserved.
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_conflict(&exec(&mut dev, &i2(), &TUR));
}
