//! Proves the CRC32C digest byte order (RFC 7143 §13.1, Appendix B.4)
//! against a real peer: logs in to tgtd with HeaderDigest=CRC32C and
//! DataDigest=CRC32C, then exchanges a NOP-Out/NOP-In with ping data (data
//! digest over padding) and an INQUIRY. tgtd checks our digests and we
//! check its. A NOP-Out whose header digest has its bytes reversed must get
//! no answer, so the check cannot pass with either byte order.
//!
//! Skips (saying why) when tgtd is absent or cannot start, unless
//! `ISCSI_HARNESS_REQUIRE_PEERS=1`, which turns the skip into a failure.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_engine::pdu::{
    Cdb, Decoder, Digests, Encoder, Header, Isid, LoginRequest, Lun, NopOut, Pdu, RESERVED_TAG,
    ScsiCommand, Stage, TaskAttr,
};

const TARGET: &str = "iqn.2026-11.test:t";
const INITIATOR: &str = "iqn.2026-11.test:pdu-initiator";

fn require_peers() -> bool {
    std::env::var("ISCSI_HARNESS_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// Skips the test, or fails it when peers are required.
fn skip(why: &str) {
    assert!(!require_peers(), "ISCSI_HARNESS_REQUIRE_PEERS=1 but {why}");
    eprintln!("skipping tgtd digest interop: {why}");
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A tgtd we started, on its own control port; killed and cleaned on drop.
struct Tgtd {
    child: Child,
    tgtadm: PathBuf,
    control_port: u16,
    portal_port: u16,
    image: PathBuf,
    log: PathBuf,
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        // tgtd does not always exit on SIGTERM; Child::kill sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.image);
        for suffix in ["", ".lock"] {
            let socket = format!("/var/run/tgtd/socket.{}{suffix}", self.control_port);
            let _ = std::fs::remove_file(socket);
        }
    }
}

impl Tgtd {
    fn tgtadm(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.tgtadm)
            .arg("-C")
            .arg(self.control_port.to_string())
            .args(["--lld", "iscsi"])
            .args(args)
            .output()
            .map_err(|e| format!("tgtadm: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tgtadm {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts tgtd on 127.0.0.1 with one target and a 64 MiB LUN 1.
    fn start(tgtd: &Path, tgtadm: &Path, attempt: u16) -> Result<Tgtd, String> {
        // tgtd accepts control ports below 32768; keep clear of other users.
        let control_port = 20_000 + (std::process::id() as u16 % 5_000) * 2 + attempt;
        let portal_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let tag = format!("iscsi-harness-pdu-{}-{attempt}", std::process::id());
        let image = PathBuf::from(format!("/dev/shm/{tag}.img"));
        let log = std::env::temp_dir().join(format!("{tag}.log"));
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(64 << 20))
            .map_err(|e| format!("creating {}: {e}", image.display()))?;
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(tgtd)
            .args(["-f", "-C", &control_port.to_string(), "--iscsi"])
            .arg(format!("portal=127.0.0.1:{portal_port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("spawning tgtd: {e}"))?;
        let mut t = Tgtd {
            child,
            tgtadm: tgtadm.to_path_buf(),
            control_port,
            portal_port,
            image,
            log,
        };
        let mut ready = Err(String::from("tgtd did not come up"));
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            if !t.alive() {
                let log = std::fs::read_to_string(&t.log).unwrap_or_default();
                return Err(format!("tgtd exited: {}", log.trim()));
            }
            ready = t.tgtadm(&["--op", "show", "--mode", "target"]);
            if ready.is_ok() {
                break;
            }
        }
        ready?;
        t.tgtadm(&[
            "--op", "new", "--mode", "target", "--tid", "1", "-T", TARGET,
        ])?;
        let image = t.image.display().to_string();
        t.tgtadm(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            &image,
        ])?;
        t.tgtadm(&[
            "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
        ])?;
        // tgtd offers no digests by default: make CRC32C its only choice.
        for key in ["HeaderDigest", "DataDigest"] {
            t.tgtadm(&[
                "--op", "update", "--mode", "target", "--tid", "1", "--name", key, "--value",
                "CRC32C",
            ])?;
        }
        if !t.alive() {
            return Err("tgtd exited during set-up".into());
        }
        Ok(t)
    }
}

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
    let (Some(tgtd), Some(tgtadm)) = (find_tool("tgtd"), find_tool("tgtadm")) else {
        skip("tgtd/tgtadm not found (Debian package `tgt`)");
        return;
    };
    let mut started = Err(String::new());
    for attempt in 0..3 {
        started = Tgtd::start(&tgtd, &tgtadm, attempt);
        if started.is_ok() {
            break;
        }
    }
    let target = match started {
        Ok(t) => t,
        Err(why) => {
            skip(&format!("tgtd could not start: {why}"));
            return;
        }
    };

    let stream = TcpStream::connect(("127.0.0.1", target.portal_port)).expect("connect to tgtd");
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
