//! Hostile bytes against our target (issue 3): garbage, a BHS claiming a
//! 16 MiB data segment, full-feature PDUs before login, malformed and
//! endless keys, bad stages, CmdSN far out of the window, unknown opcodes,
//! and many connections holding half-sent PDUs. Afterwards the target must
//! still serve INQUIRY, and its resident memory must have grown by less
//! than [`MEMORY_BOUND_KIB`].

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::scripted::Scripted;
use common::target::TargetProcess;
use iscsi_engine::pdu::{
    Cdb, DataOut, Header, Isid, LoginRequest, Lun, Pdu, ScsiCommand, Stage, TextRequest,
    reject_reason,
};

const TARGET: &str = "iqn.2026-11.org.iscsi-harness:hostile";
const INITIATOR: &str = "iqn.2026-11.org.iscsi-harness:attacker";
/// How much the target's RSS may grow over the whole attack.
const MEMORY_BOUND_KIB: u64 = 16 * 1024;
const HALF_OPEN_CONNECTIONS: usize = 200;

fn login_request(csg: Stage, nsg: Stage, transit: bool, continue_: bool) -> LoginRequest {
    LoginRequest {
        transit,
        continue_,
        csg,
        nsg,
        isid: Isid([0x80, 0, 0, 0, 0, 9]),
        cmd_sn: 1,
        ..LoginRequest::default()
    }
}

/// The BHS of a first Login Request (security stage, on to the
/// operational one) announcing `data_len` bytes of data.
fn first_login_bhs(data_len: u32) -> [u8; 48] {
    let first = login_request(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        true,
        false,
    );
    Header::LoginRequest(first).to_bhs(data_len)
}

fn status_of(pdu: &Pdu) -> Option<u16> {
    match &pdu.header {
        Header::LoginResponse(h) => Some(((h.status_class as u16) << 8) | h.status_detail as u16),
        _ => None,
    }
}

/// Deterministic garbage.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn target_survives_hostile_input() {
    let mut target = TargetProcess::start(&["--iqn", TARGET, "--lun", "1=mem:1GiB"]);
    let addr = target.addr;
    let mut probe = Scripted::connect(addr);
    probe.login(INITIATOR, TARGET, 1).expect("baseline login");
    let inquiry = probe.inquiry(1).expect("baseline INQUIRY");
    assert_eq!(inquiry[0] & 0x1f, 0, "direct-access block device");
    drop(probe);
    std::thread::sleep(Duration::from_millis(200));
    let baseline = target.rss_kib();

    // 1. Garbage: the target closes the connection.
    let mut c = Scripted::connect(addr);
    c.send_raw(&garbage(1 << 20, 0x9e37_79b9_7f4a_7c15));
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "garbage must close the connection"
    );

    // 2. A BHS claiming a 16 MiB data segment: closed before any data.
    let mut c = Scripted::connect(addr);
    let mut bhs = first_login_bhs(0);
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    c.send_raw(&bhs);
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "a 16 MiB segment claim must close the connection"
    );

    // 3. A full-feature PDU before login.
    let mut c = Scripted::connect(addr);
    let cmd = ScsiCommand {
        final_: true,
        read: true,
        cdb: Cdb::new(&[0x12, 0, 0, 0, 96, 0]),
        ..ScsiCommand::default()
    };
    c.send(&Pdu::bare(Header::ScsiCommand(cmd)));
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "a SCSI command before login must close the connection"
    );

    // 4. Endless keys: continued login text without end.
    let mut c = Scripted::connect(addr);
    let mut failed = false;
    for i in 0..400 {
        let mut text = BytesMut::new();
        for k in 0..200 {
            text.put_slice(format!("X-endless-{i}-{k}=value\0").as_bytes());
        }
        c.send(&Pdu::new(
            Header::LoginRequest(login_request(
                Stage::SecurityNegotiation,
                Stage::LoginOperationalNegotiation,
                false,
                true,
            )),
            text.freeze(),
        ));
        if let Ok(Some(pdu)) = c.recv(Duration::from_millis(50)) {
            if status_of(&pdu).is_some_and(|s| s != 0) {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed || c.closed_within(Duration::from_secs(5)),
        "endless keys must end the login"
    );

    // 5. Malformed keys: no '=', invalid UTF-8.
    for text in [
        &b"InitiatorName\0"[..],
        &b"InitiatorName=\xff\xfe\0TargetName=x\0"[..],
        &b"=\0"[..],
    ] {
        let mut c = Scripted::connect(addr);
        c.send(&Pdu::new(
            Header::LoginRequest(login_request(
                Stage::SecurityNegotiation,
                Stage::LoginOperationalNegotiation,
                true,
                false,
            )),
            Bytes::copy_from_slice(text),
        ));
        let reply = c.recv(Duration::from_secs(5));
        let refused = match reply {
            Ok(Some(pdu)) => status_of(&pdu).is_some_and(|s| s >> 8 == 2),
            Ok(None) => true,
            Err(_) => false,
        };
        assert!(
            refused,
            "malformed keys {text:?} must be refused with an initiator error"
        );
    }

    // 6. Bad stages: the reserved stage, and a transit to a stage before the current one.
    for (csg, nsg) in [
        (Stage::Reserved, Stage::FullFeaturePhase),
        (
            Stage::LoginOperationalNegotiation,
            Stage::SecurityNegotiation,
        ),
    ] {
        let mut c = Scripted::connect(addr);
        let text = format!("InitiatorName={INITIATOR}\0TargetName={TARGET}\0SessionType=Normal\0");
        c.send(&Pdu::new(
            Header::LoginRequest(login_request(csg, nsg, true, false)),
            Bytes::from(text),
        ));
        let refused = match c.recv(Duration::from_secs(5)) {
            Ok(Some(pdu)) => status_of(&pdu).is_some_and(|s| s >> 8 == 2),
            Ok(None) => true,
            Err(_) => false,
        };
        assert!(refused, "stage {csg:?} -> {nsg:?} must be refused");
    }

    // 7. In a session: CmdSN far out of the window is ignored, an unknown
    // opcode is rejected, Data-Out for no task is dropped, and the session
    // goes on.
    let mut c = Scripted::connect(addr);
    c.login(INITIATOR, TARGET, 2).expect("login");
    let far = ScsiCommand {
        final_: true,
        read: true,
        lun: Lun::from_index(1),
        itt: 900,
        expected_data_transfer_length: 96,
        cmd_sn: c.script.cmd_sn.wrapping_add(0x4000_0000),
        cdb: Cdb::new(&[0x12, 0, 0, 0, 96, 0]),
        ..ScsiCommand::default()
    };
    c.send(&Pdu::bare(Header::ScsiCommand(far)));
    assert!(
        c.recv(Duration::from_millis(500)).is_err(),
        "a command far outside the CmdSN window gets no answer"
    );
    let mut vendor = Header::TextRequest(TextRequest::default()).to_bhs(0);
    vendor[0] = 0x1c;
    c.send_raw(&vendor);
    match c.recv(Duration::from_secs(5)) {
        Ok(Some(Pdu {
            header: Header::Reject(r),
            ..
        })) => assert_eq!(r.reason, reject_reason::COMMAND_NOT_SUPPORTED),
        other => panic!("expected a Reject for a vendor opcode, got {other:?}"),
    }
    c.send(&Pdu::new(
        Header::DataOut(DataOut {
            final_: true,
            itt: 12345,
            ttt: 777,
            ..DataOut::default()
        }),
        Bytes::from(vec![0u8; 512]),
    ));
    let data = c.inquiry(1).expect("INQUIRY after the abuse, same session");
    assert_eq!(&data[8..15], b"HARNESS");

    // 8. Many connections holding half-sent PDUs.
    let mut half_open = Vec::new();
    for i in 0..HALF_OPEN_CONNECTIONS {
        let mut c = Scripted::connect(addr);
        let mut bhs = first_login_bhs(8192);
        bhs[47] = i as u8;
        c.send_raw(&bhs);
        c.send_raw(&garbage(4096, i as u64 + 1));
        half_open.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));

    let mut probe = Scripted::connect(addr);
    probe
        .login(INITIATOR, TARGET, 3)
        .expect("login while half-open connections wait");
    let data = probe.inquiry(1).expect("INQUIRY after the attack");
    assert_eq!(&data[8..15], b"HARNESS");
    assert!(target.is_running(), "the target process must survive");
    let grown = target.rss_kib().saturating_sub(baseline);
    eprintln!("target RSS grew by {grown} KiB over the attack (bound {MEMORY_BOUND_KIB} KiB)");
    assert!(grown < MEMORY_BOUND_KIB, "target RSS grew by {grown} KiB");
    drop(half_open);
}
