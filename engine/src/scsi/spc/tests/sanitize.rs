//! A sanitize in progress, as the gate and REQUEST SENSE report it.

use super::*;

#[test]
fn sanitize_in_progress_blocks_all_but_inquiry_report_luns_request_sense() {
    let mut dev = device();
    clear_ua(&mut dev, &i1());
    dev.lun_mut(0).unwrap().sbc.defer_sanitize = true;
    assert_good(&exec(
        &mut dev,
        &i1(),
        &[0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    let in_progress = Asc::NOT_READY_SANITIZE_IN_PROGRESS;
    assert_check(&exec(&mut dev, &i1(), &TUR), key::NOT_READY, in_progress);
    assert_check(&exec(&mut dev, &i1(), &READ10), key::NOT_READY, in_progress);
    let r = exec(&mut dev, &i1(), &start_stop(true, 1, true, false));
    assert_check(&r, key::NOT_READY, in_progress);
    assert_good(&exec(&mut dev, &i1(), &inquiry(false, 0, 36)));
    assert_good(&exec(&mut dev, &i1(), &report_luns(0, 4096)));
    let r = exec(&mut dev, &i1(), &[0x03, 0, 0, 0, 18, 0]);
    assert_eq!(
        (r.data_in[2], r.data_in[12], r.data_in[13]),
        (2, 0x04, 0x1b)
    );
    // A unit attention still comes first.
    dev.task_management(&i1(), Lun::from_index(0), TaskManagement::TargetColdReset);
    let r = exec(&mut dev, &i1(), &TUR);
    assert_check(
        &r,
        key::UNIT_ATTENTION,
        Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
    assert_check(&exec(&mut dev, &i1(), &TUR), key::NOT_READY, in_progress);
    dev.lun_mut(0).unwrap().sbc.complete_sanitize();
    assert_good(&exec(&mut dev, &i1(), &TUR));
}
