//! What crossed the simulated wire: every byte each host wrote, decoded
//! into PDUs for the trace and the protocol [`checker`](crate::checker),
//! and kept as a capture when `--pcap` asks for one.
//!
//! The decoding follows each connection from its login: the negotiated
//! HeaderDigest and DataDigest (the last value either side sent) take
//! effect after the final Login Response (RFC 7143 §11.12.4, §13.1), just
//! as the engines switch. A sender whose bytes do not decode broke the
//! protocol, and the run fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use iscsi_engine::pdu::{
    Decoder, Digests, Header, MAX_DATA_SEGMENT_LENGTH, Pdu, RESERVED_TAG, Stage,
};

use crate::checker::{Clearing, ConnChecker};
use crate::pcap::PcapWriter;
use crate::trace::Log;

/// A TCP connection: the initiator's (connecting) and the target's
/// (listening) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnKey {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

#[derive(Debug)]
struct Direction {
    buf: BytesMut,
    decoder: Decoder,
    /// Undecodable bytes were seen: stop decoding this direction.
    broken: bool,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            buf: BytesMut::new(),
            decoder: Decoder {
                digests: Digests::default(),
                max_recv_data_segment_length: MAX_DATA_SEGMENT_LENGTH,
            },
            broken: false,
        }
    }
}

#[derive(Debug)]
struct Conn {
    id: u32,
    /// [client → server, server → client].
    dirs: [Direction; 2],
    header_digest: bool,
    data_digest: bool,
    checker: ConnChecker,
    /// A side shut down: the connection carries no new commands.
    closed: bool,
}

struct State {
    conns: BTreeMap<ConnKey, Conn>,
    next_id: u32,
    /// Counts every decoded PDU: the checkers' notion of "when".
    seq: u64,
    pcap: Option<PcapWriter>,
}

/// The recorder shared by every simulated host of a run.
pub struct Wire {
    log: Log,
    state: Mutex<State>,
    /// Whether decoded PDUs are checked (off for scenarios that send
    /// malformed PDUs on purpose).
    check: bool,
}

/// When the capture starts: 2026-01-01T00:00:00Z, the world's epoch.
pub const EPOCH: Duration = Duration::from_secs(1_767_225_600);

impl Wire {
    pub fn new(log: Log, pcap: bool, check: bool) -> Arc<Wire> {
        Arc::new(Wire {
            log,
            state: Mutex::new(State {
                conns: BTreeMap::new(),
                next_id: 1,
                seq: 0,
                pcap: pcap.then(|| PcapWriter::new(EPOCH)),
            }),
            check,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The capture, when one was asked for.
    pub fn pcap(&self) -> Option<Vec<u8>> {
        self.lock().pcap.as_ref().map(|p| p.bytes().to_vec())
    }

    /// A connection was established (called by both ends; the first call
    /// registers it).
    pub fn opened(&self, key: ConnKey, client_host: &str) {
        let now = self.log.now();
        let mut s = self.lock();
        if s.conns.contains_key(&key) {
            return;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.conns.insert(
            key,
            Conn {
                id,
                dirs: [Direction::new(), Direction::new()],
                header_digest: false,
                data_digest: false,
                checker: ConnChecker::new(),
                closed: false,
            },
        );
        if let Some(p) = &mut s.pcap {
            p.open(now, key.client, key.server);
        }
        drop(s);
        self.log.line(
            client_host,
            format_args!("c{id} connect {} -> {}", key.client, key.server),
        );
    }

    /// One side shut its direction down.
    pub fn closed(&self, key: ConnKey, from_client: bool, host: &str) {
        let now = self.log.now();
        let mut s = self.lock();
        let Some(conn) = s.conns.get_mut(&key) else {
            return;
        };
        conn.closed = true;
        let id = conn.id;
        if let Some(p) = &mut s.pcap {
            p.fin(now, key.client, key.server, from_client);
        }
        drop(s);
        let arrow = if from_client { ">" } else { "<" };
        self.log.line(host, format_args!("c{id}{arrow} FIN"));
    }

    /// Bytes one side wrote.
    pub fn sent(&self, key: ConnKey, from_client: bool, host: &str, bytes: &[u8]) {
        let now = self.log.now();
        let mut lines = Vec::new();
        let mut failures = Vec::new();
        let mut clearing = None;
        {
            let mut s = self.lock();
            if let Some(p) = &mut s.pcap {
                p.data(now, key.client, key.server, from_client, bytes);
            }
            let mut seq = s.seq;
            let Some(conn) = s.conns.get_mut(&key) else {
                return;
            };
            let side = usize::from(!from_client);
            let arrow = if from_client { ">" } else { "<" };
            conn.dirs[side].buf.extend_from_slice(bytes);
            loop {
                let dir = &mut conn.dirs[side];
                if dir.broken {
                    dir.buf.clear();
                    break;
                }
                let pdu = match dir.decoder.decode(&mut dir.buf) {
                    Ok(None) => break,
                    Ok(Some(pdu)) => pdu,
                    Err(e) => {
                        dir.broken = true;
                        failures.push(format!("c{} sent an undecodable PDU: {e}", conn.id));
                        break;
                    }
                };
                seq += 1;
                lines.push(format!("c{}{arrow} {}", conn.id, describe(&pdu)));
                follow_login(conn, &pdu);
                if self.check {
                    let result = if from_client {
                        conn.checker
                            .initiator_pdu(&pdu.header, pdu.data.len() as u32, seq)
                            .map(|()| None)
                    } else {
                        conn.checker.target_pdu(&pdu.header, &pdu.data, seq)
                    };
                    match result {
                        Ok(Some((c, reset, since))) => {
                            clearing = Some((key.server, c, reset, since))
                        }
                        Ok(None) => {}
                        Err(e) => failures.push(format!("c{}: protocol: {e}", conn.id)),
                    }
                }
            }
            s.seq = seq;
            if let Some((server, what, reset, since)) = clearing {
                clear_others(&mut s, key, server, what, reset, since);
            }
        }
        for line in lines {
            self.log.line(host, line);
        }
        for f in failures {
            self.log.fail(host, f);
        }
    }
}

/// A TMF that ended tasks of every session of the target (LUN reset, ...)
/// ends them in the checkers of the other connections too.
fn clear_others(
    s: &mut State,
    key: ConnKey,
    server: SocketAddr,
    what: Clearing,
    reset: bool,
    since: u64,
) {
    for (k, c) in s.conns.iter_mut() {
        if k.server == server && *k != key && !c.closed {
            c.checker.clear(what, None);
            if reset {
                c.checker.expect_unit_attention(what, since);
            }
        }
    }
}

/// Tracks the digest keys of the login and switches the decoders after
/// the final Login Response.
fn follow_login(conn: &mut Conn, pdu: &Pdu) {
    match &pdu.header {
        Header::LoginRequest(_) | Header::LoginResponse(_) => {
            for (k, v) in keys(&pdu.data) {
                match k {
                    "HeaderDigest" => conn.header_digest = v == "CRC32C",
                    "DataDigest" => conn.data_digest = v == "CRC32C",
                    _ => {}
                }
            }
        }
        _ => return,
    }
    if let Header::LoginResponse(h) = &pdu.header {
        if h.transit && h.nsg == Stage::FullFeaturePhase && h.status_class == 0 {
            let digests = Digests {
                header: conn.header_digest,
                data: conn.data_digest,
            };
            for d in &mut conn.dirs {
                d.decoder.digests = digests;
            }
        }
    }
}

/// The key=value pairs of a text data segment.
fn keys(data: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    data.split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .filter_map(|kv| kv.split_once('='))
}

/// The length of a CDB by its group code (SPC-5 §4.2.5.1).
fn cdb_len(opcode: u8) -> usize {
    match opcode >> 5 {
        0 => 6,
        1 | 2 => 10,
        4 => 16,
        5 => 12,
        _ => 16,
    }
}

/// Sense key, ASC and ASCQ of a SCSI Response's data segment (fixed or
/// descriptor format), as `key/asc/ascq`.
fn sense_of(data: &[u8]) -> Option<String> {
    let len = u16::from_be_bytes([*data.first()?, *data.get(1)?]) as usize;
    let sense = data.get(2..2 + len)?;
    let (key, asc, ascq) = match sense.first()? & 0x7f {
        0x70 | 0x71 => (sense.get(2)? & 0x0f, *sense.get(12)?, *sense.get(13)?),
        0x72 | 0x73 => (sense.get(1)? & 0x0f, *sense.get(2)?, *sense.get(3)?),
        _ => return None,
    };
    Some(format!("{key:x}/{asc:02x}/{ascq:02x}"))
}

/// Text keys for the trace, with the CHAP values shortened.
fn text(data: &[u8]) -> String {
    let mut out = String::new();
    for (k, v) in keys(data) {
        let v = if k.starts_with("CHAP_") && v.len() > 12 {
            format!("{}..", &v[..12])
        } else {
            v.to_string()
        };
        let _ = write!(out, " {k}={v}");
    }
    out
}

fn itt(t: u32) -> String {
    if t == RESERVED_TAG {
        "-".to_string()
    } else {
        format!("{t:#x}")
    }
}

/// One PDU as a trace line: opcode and the fields that matter.
pub fn describe(pdu: &Pdu) -> String {
    let n = pdu.data.len();
    let flag = |b: bool, c: char| if b { c } else { '-' };
    match &pdu.header {
        Header::ScsiCommand(h) => {
            let cdb = &h.cdb.base[..cdb_len(h.cdb.opcode()).min(16)];
            format!(
                "SCSI-Command itt={} cmdsn={} {}{}{}{} lun={} cdb={} edtl={} data={n}",
                itt(h.itt),
                h.cmd_sn,
                flag(h.immediate, 'I'),
                flag(h.final_, 'F'),
                flag(h.read, 'R'),
                flag(h.write, 'W'),
                h.lun.index().map_or(-1, i32::from),
                hex::encode(cdb),
                h.expected_data_transfer_length,
            )
        }
        Header::ScsiResponse(h) => format!(
            "SCSI-Response itt={} statsn={} expcmdsn={} maxcmdsn={} status={:#04x} response={} residual={}{}{}",
            itt(h.itt),
            h.stat_sn,
            h.exp_cmd_sn,
            h.max_cmd_sn,
            h.status,
            h.response,
            h.residual_count,
            if h.overflow {
                "O"
            } else if h.underflow {
                "U"
            } else {
                ""
            },
            sense_of(&pdu.data)
                .map(|s| format!(" sense={s}"))
                .unwrap_or_default(),
        ),
        Header::DataIn(h) => format!(
            "Data-In itt={} datasn={} offset={} len={n} {}{}{}",
            itt(h.itt),
            h.data_sn,
            h.buffer_offset,
            flag(h.final_, 'F'),
            flag(h.status_present, 'S'),
            if h.status_present {
                format!(
                    " status={:#04x} statsn={} expcmdsn={} maxcmdsn={}",
                    h.status, h.stat_sn, h.exp_cmd_sn, h.max_cmd_sn
                )
            } else {
                String::new()
            },
        ),
        Header::DataOut(h) => format!(
            "Data-Out itt={} ttt={} datasn={} offset={} len={n} {}",
            itt(h.itt),
            itt(h.ttt),
            h.data_sn,
            h.buffer_offset,
            flag(h.final_, 'F'),
        ),
        Header::R2t(h) => format!(
            "R2T itt={} ttt={:#x} r2tsn={} offset={} len={} statsn={}",
            itt(h.itt),
            h.ttt,
            h.r2t_sn,
            h.buffer_offset,
            h.desired_data_transfer_length,
            h.stat_sn,
        ),
        Header::NopOut(h) => format!(
            "NOP-Out itt={} ttt={} cmdsn={}{} data={n}",
            itt(h.itt),
            itt(h.ttt),
            h.cmd_sn,
            if h.immediate { " I" } else { "" },
        ),
        Header::NopIn(h) => format!(
            "NOP-In itt={} ttt={} statsn={} expcmdsn={} maxcmdsn={} data={n}",
            itt(h.itt),
            itt(h.ttt),
            h.stat_sn,
            h.exp_cmd_sn,
            h.max_cmd_sn,
        ),
        Header::TaskMgmtRequest(h) => format!(
            "TMF-Request itt={} function={} ref={} lun={} cmdsn={}{}",
            itt(h.itt),
            h.function & 0x7f,
            itt(h.referenced_task_tag),
            h.lun.index().map_or(-1, i32::from),
            h.cmd_sn,
            if h.immediate { " I" } else { "" },
        ),
        Header::TaskMgmtResponse(h) => format!(
            "TMF-Response itt={} response={} statsn={} expcmdsn={} maxcmdsn={}",
            itt(h.itt),
            h.response,
            h.stat_sn,
            h.exp_cmd_sn,
            h.max_cmd_sn,
        ),
        Header::LoginRequest(h) => format!(
            "Login-Request itt={} isid={} tsih={} cid={} csg={} nsg={} {}{} cmdsn={}{}",
            itt(h.itt),
            h.isid,
            h.tsih,
            h.cid,
            h.csg as u8,
            h.nsg as u8,
            flag(h.transit, 'T'),
            flag(h.continue_, 'C'),
            h.cmd_sn,
            text(&pdu.data),
        ),
        Header::LoginResponse(h) => format!(
            "Login-Response itt={} tsih={} status={:02x}{:02x} csg={} nsg={} {}{} statsn={}{}",
            itt(h.itt),
            h.tsih,
            h.status_class,
            h.status_detail,
            h.csg as u8,
            h.nsg as u8,
            flag(h.transit, 'T'),
            flag(h.continue_, 'C'),
            h.stat_sn,
            text(&pdu.data),
        ),
        Header::TextRequest(h) => format!(
            "Text-Request itt={} cmdsn={} {}{}{}",
            itt(h.itt),
            h.cmd_sn,
            flag(h.final_, 'F'),
            flag(h.continue_, 'C'),
            text(&pdu.data),
        ),
        Header::TextResponse(h) => format!(
            "Text-Response itt={} statsn={} {}{}{}",
            itt(h.itt),
            h.stat_sn,
            flag(h.final_, 'F'),
            flag(h.continue_, 'C'),
            text(&pdu.data),
        ),
        Header::LogoutRequest(h) => format!(
            "Logout-Request itt={} reason={} cid={} cmdsn={}",
            itt(h.itt),
            h.reason,
            h.cid,
            h.cmd_sn,
        ),
        Header::LogoutResponse(h) => format!(
            "Logout-Response itt={} response={} statsn={}",
            itt(h.itt),
            h.response,
            h.stat_sn,
        ),
        Header::AsyncMessage(h) => format!(
            "Async-Message event={} statsn={} param3={}",
            h.async_event, h.stat_sn, h.parameter3,
        ),
        Header::Reject(h) => format!(
            "Reject reason={:#04x} statsn={} rejected={}",
            h.reason,
            h.stat_sn,
            pdu.data
                .first()
                .and_then(|b| iscsi_engine::pdu::Opcode::from_u8(*b))
                .map_or("?", |o| o.name()),
        ),
        Header::SnackRequest(h) => format!(
            "SNACK type={} itt={} begrun={} runlength={}",
            h.snack_type,
            itt(h.itt),
            h.beg_run,
            h.run_length,
        ),
    }
}
