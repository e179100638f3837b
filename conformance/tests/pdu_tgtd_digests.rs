//! Proves the CRC32C digest byte order (RFC 7143 §13.1, Appendix B.4)
//! against a real peer: logs in to tgtd with HeaderDigest=CRC32C and
//! DataDigest=CRC32C, then exchanges a NOP-Out/NOP-In with ping data (data
//! digest over padding) and an INQUIRY. tgtd checks our digests and we
//! check its. A NOP-Out whose header digest has its bytes reversed must get
//! no answer, so the check cannot pass with either byte order.
//!
//! An interop test of the engine's PDU codec; it lives here, not with the
//! engine's tests, because it needs the harness that starts a real peer.
//!
//! Skips (saying why) when tgtd is absent or cannot start, unless
//! `ISCSI_HARNESS_REQUIRE_PEERS=1`, which turns the skip into a failure.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::peers::tgtd_or_skip;
use iscsi_engine::pdu::{
    Cdb, Decoder, Digests, Encoder, Header, Isid, LoginRequest, Lun, NopOut, Pdu, RESERVED_TAG,
    ScsiCommand, Stage, TaskAttr,
};

const TARGET: &str = "iqn.2026-11.test:t";
const INITIATOR: &str = "iqn.2026-11.test:pdu-initiator";

/// One iSCSI connection driven by the engine's codec over a blocking socket.
struct Conn {
    stream: TcpStream,
    encoder: Encoder,
    decoder: Decoder,
    rx: BytesMut,
}

impl Conn {
    fn send(&mut self, pdu: &Pdu) {
        let mut tx = BytesMut::new();
        self.encoder.encode(pdu, &mut tx);
        self.stream.write_all(&tx).expect("send");
    }

    /// The next PDU, or `None` on EOF, reset or timeout.
    fn recv(&mut self) -> Option<Pdu> {
        loop {
            if let Some(pdu) = self
                .decoder
                .decode(&mut self.rx)
                .expect("decoding tgtd's PDU")
            {
                return Some(pdu);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.rx.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    fn set_digests(&mut self, digests: Digests) {
        self.encoder.digests = digests;
        self.decoder.digests = digests;
    }
}

fn text(keys: &[&str]) -> Bytes {
    let mut v = Vec::new();
    for k in keys {
        v.extend_from_slice(k.as_bytes());
        v.push(0);
    }
    Bytes::from(v)
}

fn keys(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0)
        .filter(|k| !k.is_empty())
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

struct Session {
    cmd_sn: u32,
    exp_stat_sn: u32,
}

/// Security stage with AuthMethod=None, then the operational stage
/// negotiating both digests; returns with the digests on.
fn login(conn: &mut Conn) -> Session {
    let isid = Isid([0x80, 0x00, 0x12, 0x34, 0x56, 0x78]);
    let mut req = LoginRequest {
        transit: true,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::LoginOperationalNegotiation,
        isid,
        itt: 0,
        cmd_sn: 1,
        ..LoginRequest::default()
    };
    let mut data = text(&[
        &format!("InitiatorName={INITIATOR}"),
        &format!("TargetName={TARGET}"),
        "SessionType=Normal",
        "AuthMethod=None",
    ]);
    let mut negotiated = Vec::new();
    for _ in 0..6 {
        conn.send(&Pdu::new(Header::LoginRequest(req.clone()), data));
        let pdu = conn.recv().expect("login response");
        let Header::LoginResponse(resp) = pdu.header else {
            panic!("expected a Login Response, got {:?}", pdu.header);
        };
        assert_eq!(
            (resp.status_class, resp.status_detail),
            (0, 0),
            "login failed: {:?}",
            keys(&pdu.data)
        );
        if resp.csg == Stage::LoginOperationalNegotiation {
            negotiated.extend(keys(&pdu.data));
        }
        req.exp_stat_sn = resp.stat_sn.wrapping_add(1);
        req.tsih = resp.tsih;
        if resp.transit && resp.nsg == Stage::FullFeaturePhase {
            for key in ["HeaderDigest=CRC32C", "DataDigest=CRC32C"] {
                assert!(
                    negotiated.iter().any(|k| k == key),
                    "{key} not in {negotiated:?}"
                );
            }
            // Digests apply from the first PDU after the final Login Response.
            conn.set_digests(Digests {
                header: true,
                data: true,
            });
            return Session {
                cmd_sn: resp.exp_cmd_sn,
                exp_stat_sn: resp.stat_sn.wrapping_add(1),
            };
        }
        data = if resp.transit && resp.nsg == Stage::LoginOperationalNegotiation {
            req.csg = Stage::LoginOperationalNegotiation;
            req.nsg = Stage::FullFeaturePhase;
            text(&["HeaderDigest=CRC32C", "DataDigest=CRC32C"])
        } else {
            Bytes::new()
        };
    }
    panic!("login did not reach the full feature phase");
}

fn nop_out(s: &Session, itt: u32, ping: &Bytes) -> Pdu {
    Pdu::new(
        Header::NopOut(NopOut {
            immediate: true,
            lun: Lun(0),
            itt,
            ttt: RESERVED_TAG,
            cmd_sn: s.cmd_sn,
            exp_stat_sn: s.exp_stat_sn,
        }),
        ping.clone(),
    )
}

fn exchange(conn: &mut Conn, s: &mut Session) {
    // NOP-Out with 18 bytes of ping data: two bytes of padding under the
    // data digest; tgtd echoes the data in its NOP-In.
    let ping = Bytes::from_static(b"iscsi-harness ping");
    conn.send(&nop_out(s, 0x1000, &ping));
    let pdu = conn
        .recv()
        .expect("tgtd closed the connection instead of a NOP-In");
    let Header::NopIn(nop_in) = &pdu.header else {
        panic!("expected a NOP-In, got {:?}", pdu.header);
    };
    assert_eq!(nop_in.itt, 0x1000);
    assert_eq!(pdu.data, ping);
    s.exp_stat_sn = nop_in.stat_sn.wrapping_add(1);

    // INQUIRY to LUN 1; tgtd answers with Data-In (data digest on its side).
    conn.send(&Pdu::bare(Header::ScsiCommand(ScsiCommand {
        final_: true,
        read: true,
        attr: TaskAttr::Simple,
        lun: Lun::from_index(1),
        itt: 0x1001,
        expected_data_transfer_length: 96,
        cmd_sn: s.cmd_sn,
        exp_stat_sn: s.exp_stat_sn,
        cdb: Cdb::new(&[0x12, 0, 0, 0, 96, 0]),
        ..ScsiCommand::default()
    })));
    s.cmd_sn = s.cmd_sn.wrapping_add(1);
    let mut inquiry = Vec::new();
    let status = loop {
        let pdu = conn.recv().expect("INQUIRY answer");
        match pdu.header {
            Header::DataIn(d) => {
                assert_eq!(d.itt, 0x1001);
                inquiry.extend_from_slice(&pdu.data);
                if d.status_present {
                    s.exp_stat_sn = d.stat_sn.wrapping_add(1);
                    break d.status;
                }
            }
            Header::ScsiResponse(r) => {
                assert_eq!(r.itt, 0x1001);
                s.exp_stat_sn = r.stat_sn.wrapping_add(1);
                assert_eq!(r.response, 0);
                break r.status;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(status, 0, "INQUIRY status");
    assert!(inquiry.len() >= 36, "short INQUIRY data: {inquiry:02x?}");
    assert_eq!(inquiry[0] & 0x1f, 0, "LUN 1 is a direct-access device");
}

/// A NOP-Out whose header digest bytes are reversed (big-endian) must not
/// be answered: tgtd checks the digest, so the order we use is the only one
/// it accepts.
fn reversed_digest_is_refused(conn: &mut Conn, s: &Session) {
    let mut tx = BytesMut::new();
    conn.encoder
        .encode(&nop_out(s, 0x1002, &Bytes::new()), &mut tx);
    let digest = &mut tx[48..52];
    assert_ne!(digest[0], digest[3]);
    digest.reverse();
    conn.stream.write_all(&tx).expect("send");
    conn.stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    if let Some(pdu) = conn.recv() {
        panic!("tgtd answered a PDU with a byte-swapped header digest: {pdu:?}");
    }
}

#[test]
fn pdu_digests_interop_with_tgtd() {
    // tgtd offers no digests by default: make CRC32C its only choice.
    let digests = [("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")];
    let Some(target) = tgtd_or_skip("tgtd digest interop", TARGET, &digests) else {
        return;
    };

    let stream = TcpStream::connect(target.addr()).expect("connect to tgtd");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut conn = Conn {
        stream,
        encoder: Encoder::default(),
        decoder: Decoder::default(),
        rx: BytesMut::new(),
    };
    let mut session = login(&mut conn);
    exchange(&mut conn, &mut session);
    reversed_digest_is_refused(&mut conn, &session);
    drop(conn);
    drop(target);
}
