//! Task management (RFC 7143 §11.5, §11.6): every function, and the tasks
//! each one ends.

use rstest::rstest;

use super::*;
use crate::pdu::{TmfFunction, tmf_response};

fn tmf(p: &mut Pair, lun: u16, function: TmfFunction, referenced: Option<TaskId>) -> TaskId {
    let now = p.now;
    p.initiator.task_management(lun, function, referenced, now)
}

fn response(p: &Pair, t: TaskId) -> u8 {
    match p.result(t) {
        Ok(Completion::TaskManagement(r)) => *r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn abort_task_ends_an_executing_command() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 8);
    let other = p.read(8, 8);
    p.drive();
    let t = tmf(&mut p, 0, TmfFunction::AbortTask, Some(r));
    p.drive();
    p.release();
    assert_eq!(response(&p, t), tmf_response::FUNCTION_COMPLETE);
    assert_eq!(p.result(r), &Err(InitiatorError::Aborted));
    p.assert_good(other);
}

#[test]
fn abort_task_of_a_command_not_yet_sent_is_answered_here() {
    let mut t = target_config(AuthPolicy::default());
    t.queue_depth = 1;
    let mut p = Pair::new(t, session_config());
    p.drive();
    p.hold = true;
    let first = p.read(0, 1);
    let queued = p.read(1, 1);
    p.drive();
    assert_eq!(p.held.len(), 1);
    let t = tmf(&mut p, 0, TmfFunction::AbortTask, Some(queued));
    p.drive();
    assert_eq!(response(&p, t), tmf_response::FUNCTION_COMPLETE);
    assert_eq!(p.result(queued), &Err(InitiatorError::Aborted));
    p.release();
    p.assert_good(first);
    assert_eq!(p.disk.executed, 1);
}

#[test]
fn abort_task_of_a_finished_command() {
    let mut p = Pair::logged_in();
    let r = p.read(0, 1);
    p.drive();
    let t = tmf(&mut p, 0, TmfFunction::AbortTask, Some(r));
    p.drive();
    assert_eq!(response(&p, t), tmf_response::TASK_DOES_NOT_EXIST);
}

#[rstest]
#[case(TmfFunction::AbortTaskSet)]
#[case(TmfFunction::ClearTaskSet)]
#[case(TmfFunction::LogicalUnitReset)]
#[case(TmfFunction::TargetWarmReset)]
fn set_wide_functions_abort_the_tasks_in_flight(#[case] function: TmfFunction) {
    let mut p = Pair::logged_in();
    p.hold = true;
    let reads: Vec<_> = (0..3).map(|i| p.read(i, 1)).collect();
    p.drive();
    let t = tmf(&mut p, 0, function, None);
    p.drive();
    p.release();
    assert_eq!(response(&p, t), tmf_response::FUNCTION_COMPLETE);
    for r in reads {
        assert_eq!(p.result(r), &Err(InitiatorError::Aborted));
    }
    let after = p.read(0, 1);
    p.drive();
    p.assert_good(after);
}

#[test]
fn clear_aca_aborts_nothing() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    let t = tmf(&mut p, 0, TmfFunction::ClearAca, None);
    p.drive();
    assert_eq!(response(&p, t), tmf_response::FUNCTION_COMPLETE);
    p.release();
    p.assert_good(r);
}

#[test]
fn a_missing_lun_is_reported() {
    let mut p = Pair::logged_in();
    let t = tmf(&mut p, 9, TmfFunction::LogicalUnitReset, None);
    p.drive();
    assert_eq!(response(&p, t), tmf_response::LUN_DOES_NOT_EXIST);
}

#[test]
fn target_cold_reset_ends_the_session_which_is_reinstated() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    let t = tmf(&mut p, 0, TmfFunction::TargetColdReset, None);
    p.drive();
    assert_eq!(response(&p, t), tmf_response::FUNCTION_COMPLETE);
    assert_eq!(p.result(r), &Err(InitiatorError::Aborted));
    p.held.clear();
    p.hold = false;
    p.run_until(std::time::Duration::from_secs(5), |p| p.logins.len() == 2);
    assert_eq!(p.logins, vec![false, true]);
    let after = p.read(0, 1);
    p.drive();
    p.assert_good(after);
}

#[test]
fn a_command_the_target_never_answers_times_out_and_is_aborted() {
    let mut c = session_config();
    c.command_timeout = Some(std::time::Duration::from_secs(30));
    c.nop_interval = None;
    let mut p = Pair::new(target_config(AuthPolicy::default()), c);
    p.drive();
    p.hold = true;
    let r = p.read(0, 1);
    let other = p.read(1, 1);
    p.drive();
    p.advance(std::time::Duration::from_secs(29));
    assert!(p.completions.is_empty());
    // At 30 s both time out; the target answers the aborts once the held
    // commands come back (and drops their results).
    p.advance(std::time::Duration::from_secs(2));
    p.release();
    let timeout = InitiatorError::CommandTimeout(std::time::Duration::from_secs(30));
    assert_eq!(p.result(r), &Err(timeout.clone()));
    assert_eq!(p.result(other), &Err(timeout));
    assert_eq!(p.completions.len(), 2, "internal TMFs complete nothing");
    let after = p.read(0, 1);
    p.drive();
    p.assert_good(after);
}
