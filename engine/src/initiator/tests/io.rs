//! Login, discovery, reads and writes under every data-transfer setting,
//! the CmdSN window, SCSI errors, Reject and Logout.

use bytes::Bytes;
use rstest::rstest;

use super::*;
use crate::initiator::{Residual, State};
use crate::login::LoginStatus;
use crate::pdu::{Header, Pdu, Reject, reject_reason};
use crate::text::SessionType;

#[test]
fn login_reaches_full_feature_with_the_targets_answers() {
    let p = Pair::logged_in();
    assert_eq!(p.initiator.state(), State::FullFeature);
    let (s, c) = p.initiator.negotiated();
    // The target prefers InitialR2T=No and ImmediateData=Yes, as we do.
    assert!(!s.initial_r2t && s.immediate_data);
    assert_eq!(s.max_burst_length, 1_048_576, "min of both sides");
    assert_eq!(s.first_burst_length, 262_144);
    assert_eq!(s.max_outstanding_r2t, 8);
    assert_eq!(c.max_xmit_data_segment_length, 262_144);
    assert!(!c.header_digest && !c.data_digest);
    assert_ne!(p.initiator.tsih(), 0);
    assert_eq!(p.initiator.isid().0[0], 0x80, "random-format ISID");
    assert_eq!(p.target.session_count(), 1);
}

#[rstest]
fn reads_and_writes_under_every_transfer_setting(
    #[values(true, false)] initial_r2t: bool,
    #[values(true, false)] immediate_data: bool,
    #[values((512, 1024), (4096, 16384), (65536, 262144))] bursts: (u32, u32),
    #[values(1, 4)] max_outstanding_r2t: u16,
    #[values(false, true)] digests: bool,
) {
    let mut t = target_config(AuthPolicy::default());
    let prefs = &mut t.preferences;
    prefs.initial_r2t = initial_r2t;
    prefs.immediate_data = immediate_data;
    prefs.first_burst_length = bursts.0;
    prefs.max_burst_length = bursts.1;
    prefs.max_outstanding_r2t = max_outstanding_r2t;
    prefs.max_recv_data_segment_length = 8192;
    if digests {
        prefs.header_digest = vec!["CRC32C".into()];
        prefs.data_digest = vec!["CRC32C".into()];
    }
    let mut p = Pair::new(t, session_config());
    p.drive();
    assert_eq!(p.logins, vec![false], "{:?}", p.closed);
    let (s, c) = p.initiator.negotiated();
    assert_eq!(s.initial_r2t, initial_r2t);
    assert_eq!(s.immediate_data, immediate_data);
    assert_eq!(s.max_outstanding_r2t, max_outstanding_r2t);
    assert_eq!((c.header_digest, c.data_digest), (digests, digests));

    // A size that is no multiple of any burst or segment.
    let sizes = [1usize, 7, 129, 300];
    let mut writes = Vec::new();
    let mut lba = 0u32;
    for (i, blocks) in sizes.iter().enumerate() {
        let data = pattern(blocks * BLOCK, i as u64);
        writes.push((p.write(lba, data.clone()), lba, data));
        lba += *blocks as u32;
    }
    p.drive();
    for (task, lba, data) in &writes {
        p.assert_good(*task);
        let at = *lba as usize * BLOCK;
        assert_eq!(&p.disk.data[at..at + data.len()], &data[..]);
    }
    let reads: Vec<_> = writes
        .iter()
        .map(|(_, lba, data)| (p.read(*lba, data.len() / BLOCK), data.clone()))
        .collect();
    p.drive();
    for (task, data) in reads {
        assert_eq!(p.data(task), data);
    }
    assert_eq!(p.initiator.outstanding(), 0);
}

#[test]
fn a_single_pdu_read_is_zero_copy_and_large_reads_reassemble() {
    let mut p = Pair::logged_in();
    let data = pattern(BLOCKS * BLOCK / 2, 3);
    p.disk.data[..data.len()].copy_from_slice(&data);
    let small = p.read(0, 8);
    let large = p.read(0, BLOCKS / 2);
    p.drive();
    assert_eq!(p.data(small), data.slice(..8 * BLOCK));
    assert_eq!(p.data(large), data);
}

#[test]
fn commands_wait_for_the_cmdsn_window() {
    let mut t = target_config(AuthPolicy::default());
    t.queue_depth = 2;
    let mut p = Pair::new(t, session_config());
    p.drive();
    p.hold = true;
    let tasks: Vec<_> = (0..10).map(|i| p.read(i, 1)).collect();
    p.drive();
    let (next, exp, max) = p.initiator.command_window();
    assert!(
        crate::serial::le(next, max.wrapping_add(1)),
        "{next} {exp} {max}"
    );
    assert_eq!(
        p.held.len(),
        2,
        "only the window's worth reached the target"
    );
    while !p.held.is_empty() {
        p.release();
        p.hold = true;
        p.drive();
    }
    p.release();
    for t in tasks {
        p.assert_good(t);
    }
}

#[test]
fn check_condition_and_residuals_are_typed() {
    let mut p = Pair::logged_in();
    let beyond = p.read(BLOCKS as u32, 1);
    let unknown = p.submit(Command::new(0, &[0xee, 0, 0, 0, 0, 0], Bytes::new(), 0));
    // READ CAPACITY(10) with 16 bytes expected: 8 come back.
    let capacity = p.submit(Command::new(
        0,
        &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        Bytes::new(),
        16,
    ));
    p.drive();
    let Ok(Completion::Scsi(o)) = p.result(beyond) else {
        panic!()
    };
    match o.clone().check() {
        Err(InitiatorError::CheckCondition {
            key,
            asc,
            ascq,
            sense,
        }) => {
            assert_eq!((key, asc, ascq), (key::ILLEGAL_REQUEST, 0x21, 0));
            assert_eq!(sense[0], 0x70);
        }
        other => panic!("{other:?}"),
    }
    let Ok(Completion::Scsi(o)) = p.result(unknown) else {
        panic!()
    };
    assert_eq!(o.sense.as_ref().map(|s| s.asc), Some(0x20));
    let Ok(Completion::Scsi(o)) = p.result(capacity) else {
        panic!()
    };
    assert_eq!(o.residual, Residual::Underflow(8));
    assert_eq!(o.data.len(), 8);
}

#[test]
fn mutual_chap_and_digests() {
    let auth = AuthPolicy {
        chap_accounts: vec![creds("alice", "alice-secret-1")],
        mutual: Some(creds("target", "target-secret-1")),
    };
    let mut t = target_config(auth);
    t.preferences.header_digest = vec!["CRC32C".into()];
    let mut c = session_config();
    c.chap = Some(creds("alice", "alice-secret-1"));
    c.mutual = Some(creds("target", "target-secret-1"));
    let mut p = Pair::new(t, c);
    p.drive();
    assert_eq!(p.logins, vec![false], "{:?}", p.closed);
    assert!(p.initiator.negotiated().1.header_digest);
    let w = p.write(5, pattern(4096, 9));
    p.drive();
    p.assert_good(w);
}

#[test]
fn wrong_chap_secret_fails_the_login_with_its_status() {
    let auth = AuthPolicy {
        chap_accounts: vec![creds("alice", "alice-secret-1")],
        mutual: None,
    };
    let mut c = session_config();
    c.chap = Some(creds("alice", "wrong-secret-12"));
    let mut p = Pair::new(target_config(auth), c);
    p.drive();
    let Some(Err(e)) = &p.closed else {
        panic!("{:?}", p.closed)
    };
    assert_eq!(
        e.login_status(),
        Some(LoginStatus::AUTHENTICATION_FAILURE),
        "{e}"
    );
    assert_eq!(p.connects, 1, "no relogin loop");
    // Commands submitted afterwards fail at once.
    let t = p.read(0, 1);
    p.drive();
    assert!(p.result(t).is_err());
}

#[test]
fn credentials_are_not_sent_when_the_target_does_not_ask() {
    let mut c = session_config();
    c.chap = Some(creds("alice", "alice-secret-1"));
    let mut p = Pair::new(target_config(AuthPolicy::default()), c);
    p.drive();
    assert_eq!(p.logins, vec![false]);
    let sent = String::from_utf8_lossy(&p.sent);
    assert!(!sent.contains("CHAP_N"), "{sent}");
}

#[test]
fn connect_refused_is_reported_with_its_kind() {
    let mut p = Pair::new(target_config(AuthPolicy::default()), session_config());
    p.refuse = Some(std::io::ErrorKind::ConnectionRefused);
    p.drive();
    let Some(Err(e)) = &p.closed else { panic!() };
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(
        e.to_string(),
        "cannot connect to 127.0.0.1:3260: Connection refused"
    );
}

#[test]
fn discovery_returns_the_targets() {
    let mut c = SessionConfig::discovery(INITIATOR, portal());
    c.nop_interval = None;
    let mut p = Pair::new(target_config(AuthPolicy::default()), c);
    p.drive();
    assert_eq!(p.logins, vec![false]);
    assert_eq!(
        p.initiator.negotiated().0.session_type,
        SessionType::Discovery
    );
    let now = p.now;
    let t = p.initiator.send_targets(now);
    p.drive();
    let Ok(Completion::SendTargets(records)) = p.result(t) else {
        panic!("{:?}", p.result(t))
    };
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, IQN);
    assert_eq!(records[0].addresses[0].to_string(), "127.0.0.1:3260,1");
    // SCSI commands need a normal session.
    let r = p.read(0, 1);
    p.drive();
    assert!(matches!(
        p.result(r),
        Err(InitiatorError::InvalidRequest(_))
    ));
    let l = p.initiator.logout(now);
    p.drive();
    assert_eq!(p.result(l), &Ok(Completion::Logout));
}

#[test]
fn logout_waits_for_outstanding_commands() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    let now = p.now;
    let l = p.initiator.logout(now);
    p.drive();
    assert!(!p.completions.contains_key(&l));
    let late = p.read(0, 1);
    p.drive();
    assert_eq!(p.result(late), &Err(InitiatorError::Closed));
    p.release();
    p.assert_good(r);
    assert_eq!(p.result(l), &Ok(Completion::Logout));
    assert_eq!(p.closed, Some(Ok(())));
    assert_eq!(p.target.session_count(), 0);
}

#[test]
fn a_rejected_command_fails_with_the_reason() {
    let mut p = Pair::logged_in();
    p.hold = true;
    let r = p.read(0, 1);
    p.drive();
    let itt = r.0;
    // The target "rejects" it: a Reject quoting the command's BHS.
    let cmd = crate::pdu::ScsiCommand {
        itt,
        read: true,
        ..Default::default()
    };
    let bhs = Header::ScsiCommand(cmd).to_bhs(0);
    let reject = Pdu::new(
        Header::Reject(Reject {
            reason: reject_reason::INVALID_PDU_FIELD,
            ..Reject::default()
        }),
        Bytes::copy_from_slice(&bhs),
    );
    let mut buf = bytes::BytesMut::new();
    Encoder::default().encode(&reject, &mut buf);
    p.inject(&buf);
    assert_eq!(
        p.result(r),
        &Err(InitiatorError::Rejected {
            reason: reject_reason::INVALID_PDU_FIELD
        })
    );
}

#[test]
fn the_same_seed_sends_the_same_bytes() {
    let run = |seed| {
        let mut c = session_config();
        c.chap = Some(creds("alice", "alice-secret-1"));
        let auth = AuthPolicy {
            chap_accounts: vec![creds("alice", "alice-secret-1")],
            mutual: None,
        };
        let mut p = Pair::with_seed(target_config(auth), c, seed);
        p.drive();
        let w = p.write(0, pattern(70_000 / BLOCK * BLOCK, 1));
        p.drive();
        p.assert_good(w);
        p.sent
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}
