//! ErrorRecoveryLevel 0: dead connections found by NOP-Out pings, session
//! reinstatement with the retry of every command not yet completed,
//! bounded reconnection, the replacement timeout, and the target's
//! asynchronous messages.

use std::io::ErrorKind;
use std::time::Duration;

use super::*;
use crate::initiator::State;
use crate::pdu::{AsyncMessage, Header, Pdu, async_event};

#[test]
fn a_silent_dead_connection_is_found_by_ping_and_commands_retried() {
    let mut p = Pair::logged_in();
    let isid = p.initiator.isid();
    let first_tsih = p.initiator.tsih();
    let data = pattern(64 * BLOCK, 1);
    p.hold = true;
    let w = p.write(100, data.clone());
    p.drive();
    assert_eq!(p.held.len(), 1);
    p.black_hole();
    // No input: ping after 5 s, dead 5 s later, reconnect after a backoff.
    p.run_until(Duration::from_secs(30), |p| p.logins.len() == 2);
    assert_eq!(p.logins, vec![false, true]);
    assert_eq!(p.initiator.reinstatements(), 1);
    assert_eq!(p.initiator.isid(), isid, "reinstatement keeps the ISID");
    assert_ne!(p.initiator.tsih(), first_tsih);
    assert_eq!(p.target.session_count(), 1, "the old session is gone");
    assert_eq!(p.held.len(), 2, "the write went out again");
    p.held.remove(0);
    p.release();
    p.assert_good(w);
    assert_eq!(&p.disk.data[100 * BLOCK..164 * BLOCK], &data[..]);
}

#[test]
fn no_acknowledged_write_is_lost_across_a_reset() {
    let mut p = Pair::logged_in();
    let early = pattern(16 * BLOCK, 2);
    let w0 = p.write(0, early.clone());
    p.drive();
    p.assert_good(w0);
    // Eight writes in flight (some needing R2Ts), then the reset.
    p.hold = true;
    let writes: Vec<_> = (0..8)
        .map(|i| {
            let data = pattern((1 + i * 100) * BLOCK, 10 + i as u64);
            let lba = 1000 * i as u32 + 16;
            (p.write(lba, data.clone()), lba, data)
        })
        .collect();
    p.drive();
    let stale = p.held.len();
    p.break_link();
    p.run_until(Duration::from_secs(5), |p| p.logins.len() == 2);
    assert_eq!(p.logins, vec![false, true]);
    // The old session's commands are void at the target; run the new ones.
    p.held.drain(..stale);
    p.release();
    for (task, lba, data) in &writes {
        p.assert_good(*task);
        let at = *lba as usize * BLOCK;
        assert_eq!(&p.disk.data[at..at + data.len()], &data[..]);
    }
    let r = p.read(0, 16);
    p.drive();
    assert_eq!(p.data(r), early);
}

#[test]
fn the_replacement_timeout_fails_outstanding_commands() {
    let mut c = session_config();
    c.replacement_timeout = Duration::from_secs(30);
    let mut p = Pair::new(target_config(AuthPolicy::default()), c);
    p.drive();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    p.break_link();
    p.refuse = Some(ErrorKind::HostUnreachable);
    let start = p.now;
    p.run_until(Duration::from_secs(120), |p| p.closed.is_some());
    let elapsed = p.now - start;
    assert!(
        elapsed >= Duration::from_secs(30) && elapsed < Duration::from_secs(31),
        "{elapsed:?}"
    );
    let Err(e) = p.result(r) else { panic!() };
    assert!(
        matches!(e, InitiatorError::ReplacementTimeout { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("No route to host"), "{e}");
    assert_eq!(p.closed.as_ref().map(|r| r.is_err()), Some(true));
    // Exponential backoff up to 8 s: a bounded number of attempts.
    assert!(p.connects > 4 && p.connects < 16, "{} attempts", p.connects);
    assert_eq!(p.initiator.state(), State::Closed);
    assert_eq!(p.initiator.poll_timeout(), None);
}

#[test]
fn recovery_resumes_when_the_network_heals() {
    let mut p = Pair::logged_in();
    p.break_link();
    p.refuse = Some(ErrorKind::HostUnreachable);
    let r = p.read(0, 1);
    p.advance(Duration::from_secs(20));
    assert_eq!(p.initiator.state(), State::Recovering);
    assert!(!p.completions.contains_key(&r), "queued, not failed");
    p.refuse = None;
    p.run_until(Duration::from_secs(20), |p| p.completions.contains_key(&r));
    p.assert_good(r);
}

#[test]
fn a_command_lost_too_often_fails() {
    let mut c = session_config();
    c.max_command_retries = 1;
    let mut p = Pair::new(target_config(AuthPolicy::default()), c);
    p.drive();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    p.break_link();
    p.run_until(Duration::from_secs(5), |p| p.logins.len() == 2);
    assert!(!p.completions.contains_key(&r));
    p.break_link();
    p.drive();
    assert_eq!(p.result(r), &Err(InitiatorError::RetriesExhausted(1)));
}

#[test]
fn the_targets_pings_are_answered() {
    let mut t = target_config(AuthPolicy::default());
    t.nop_in_interval = Some(Duration::from_secs(10));
    t.nop_in_timeout = Duration::from_secs(5);
    let mut c = session_config();
    c.nop_interval = None;
    let mut p = Pair::new(t, c);
    p.drive();
    p.advance(Duration::from_secs(120));
    assert_eq!(p.logins, vec![false], "the connection stayed up");
    assert_eq!(p.target.connection_count(), 1);
}

#[test]
fn our_pings_keep_an_idle_connection_up() {
    let mut p = Pair::logged_in();
    p.advance(Duration::from_secs(120));
    assert_eq!(p.logins, vec![false]);
    let r = p.read(0, 1);
    p.drive();
    p.assert_good(r);
}

#[test]
fn a_logout_request_from_the_target_is_honoured() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    let now = p.now;
    p.target.shutdown(now);
    p.drive();
    assert_eq!(p.target.session_count(), 1, "logout waits for the command");
    p.release();
    p.assert_good(r);
    assert_eq!(p.target.session_count(), 0, "logged out");
    // The target accepts no more logins: the session keeps trying.
    assert_eq!(p.initiator.state(), State::Recovering);
}

#[test]
fn a_session_drop_message_reinstates_after_time2wait() {
    let mut p = Pair::logged_in();
    let drop = Pdu::bare(Header::AsyncMessage(AsyncMessage {
        async_event: async_event::SESSION_DROP,
        parameter2: 3,
        ..AsyncMessage::default()
    }));
    let mut buf = bytes::BytesMut::new();
    Encoder::default().encode(&drop, &mut buf);
    let at = p.now;
    p.inject(&buf);
    assert_eq!(p.initiator.state(), State::Recovering);
    p.run_until(Duration::from_secs(10), |p| p.logins.len() == 2);
    assert!(p.now - at >= Duration::from_secs(3), "Time2Wait honoured");
    let r = p.read(0, 1);
    p.drive();
    p.assert_good(r);
}
