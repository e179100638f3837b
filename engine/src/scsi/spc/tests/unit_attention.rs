//! Unit attentions: first contact, resets, nexus loss, REQUEST SENSE.

use super::*;

#[test]
fn first_contact_reports_power_on_once() {
    let mut dev = device();
    // INQUIRY, REPORT LUNS and REQUEST SENSE's peers do not consume it.
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(
        &mut dev,
        &i1(),
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ));
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_good(&exec(&mut dev, &i1(), &TUR));
    // Another nexus has its own.
    assert_eq!(clear_ua(&mut dev, &i2()), 1);
}

#[test]
fn request_sense_returns_and_clears_unit_attention() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 252, 0]);
    assert_good(&r);
    assert_eq!(r.data_in[0], 0x70);
    assert_eq!(r.data_in[2], key::UNIT_ATTENTION);
    assert_eq!((r.data_in[12], r.data_in[13]), (0x29, 0x00));
    let r = exec(&mut dev, &i1(), &[0x03, 1, 0, 0, 252, 0]);
    assert_eq!(
        &r.data_in[..4],
        &[0x72, 0, 0, 0],
        "descriptor format, no sense"
    );
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 8, 0]);
    assert_eq!(r.data_in.len(), 8);
}

#[test]
fn lun_reset_unit_attention_reaches_every_nexus() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::LogicalUnitReset);
    for n in [i1(), i2()] {
        let r = exec(&mut dev, &n, &TUR);
        assert_check(
            &r,
            key::UNIT_ATTENTION,
            Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
        );
        assert_good(&exec(&mut dev, &n, &TUR));
    }
    // A reset of another LUN leaves this one alone.
    dev.task_management(&i1(), Lun::from_index(5), TaskManagement::LogicalUnitReset);
    assert_good(&exec(&mut dev, &i1(), &TUR));
}

#[test]
fn clear_task_set_tells_the_other_nexuses() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::ClearTaskSet);
    assert_good(&exec(&mut dev, &i1(), &TUR));
    let r = exec(&mut dev, &i2(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR,
    );
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::AbortTaskSet);
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::ClearAca);
    assert_good(&exec(&mut dev, &i2(), &TUR));
}

#[test]
fn reset_supersedes_pending_unit_attentions() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    clear_ua(&mut dev, &i2());
    set_control_bit(&mut dev, &i1(), 2, 0x04, true);
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetWarmReset);
    let lu = dev.lun_mut(0).unwrap();
    assert_eq!(
        lu.spc.ua.pending(&i2()),
        vec![Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET]
    );
    assert!(!lu.spc.descriptor_sense(), "mode pages back to defaults");
}

#[test]
fn nexus_loss_is_reported_when_the_nexus_returns() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    dev.nexus_lost(&i1());
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(&r, key::UNIT_ATTENTION, Asc::I_T_NEXUS_LOSS_OCCURRED);
    assert_good(&exec(&mut dev, &i1(), &TUR));
}
