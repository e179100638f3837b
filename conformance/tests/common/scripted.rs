//! A blocking iSCSI client that sends exactly the PDUs a test scripts,
//! built from the engine's own PDU codec and login state machine: hostile
//! and out-of-order traffic no real initiator would send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iscsi_engine::login::initiator::{
    InitiatorConfig, InitiatorLogin, InitiatorLoginStep, InitiatorOutcome,
};
use iscsi_engine::pdu::{
    Cdb, Decoder, Digests, Encoder, Header, Isid, Lun, Pdu, ScsiCommand, TaskAttr,
};
use iscsi_engine::text::{Preferences, SessionType};
use rand::SeedableRng;

/// A blocking iSCSI client that sends exactly the PDUs a test scripts.
pub struct Scripted {
    pub stream: TcpStream,
    buf: BytesMut,
    pub decoder: Decoder,
    pub encoder: Encoder,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub next_itt: u32,
}

impl Scripted {
    pub fn connect(addr: SocketAddr) -> Scripted {
        let stream = TcpStream::connect(addr).expect("connect to target");
        stream.set_nodelay(true).ok();
        Scripted {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: Decoder {
                max_recv_data_segment_length: 1 << 20,
                ..Decoder::default()
            },
            encoder: Encoder::default(),
            cmd_sn: 0,
            exp_stat_sn: 0,
            next_itt: 1,
        }
    }

    pub fn send(&mut self, pdu: &Pdu) {
        let mut out = BytesMut::new();
        self.encoder.encode(pdu, &mut out);
        self.send_raw(&out);
    }

    /// Writes bytes; a target that already closed is not an error here.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// The next PDU, `Ok(None)` when the target closed the connection,
    /// `Err` on timeout.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Pdu>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(pdu)) => return Ok(Some(pdu)),
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable PDU from target: {e}")),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out waiting for a PDU".into());
            }
            self.stream.set_read_timeout(Some(left)).ok();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err("timed out waiting for a PDU".into());
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// Whether the target closes the connection within `timeout` (PDUs it
    /// sends first, such as a Reject, are skipped).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(_) => return false,
            }
        }
        false
    }

    /// Logs in to a normal session of `target` with AuthMethod None.
    pub fn login(
        &mut self,
        initiator: &str,
        target: &str,
        isid: u8,
    ) -> Result<InitiatorOutcome, String> {
        let config = InitiatorConfig {
            initiator_name: initiator.into(),
            initiator_alias: None,
            isid: Isid([0x80, 0, 0, 0, 0, isid]),
            tsih: 0,
            cid: 0,
            itt: 0,
            session_type: SessionType::Normal,
            target_name: Some(target.into()),
            chap: None,
            mutual_chap: None,
            prefs: Preferences::default(),
            cmd_sn: 1,
            exp_stat_sn: 0,
            extra_keys: Vec::new(),
        };
        let mut login = InitiatorLogin::new(config);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let first = login.start();
        self.send(&first);
        loop {
            let pdu = self
                .recv(Duration::from_secs(5))?
                .ok_or("target closed during login")?;
            let Header::LoginResponse(h) = &pdu.header else {
                return Err(format!(
                    "expected a Login Response, got {}",
                    pdu.opcode().name()
                ));
            };
            match login.handle(h, &pdu.data, &mut rng) {
                InitiatorLoginStep::Send(next) => self.send(&next),
                InitiatorLoginStep::Complete(outcome) => {
                    self.cmd_sn = outcome.cmd_sn;
                    self.exp_stat_sn = outcome.exp_stat_sn;
                    let digests = Digests {
                        header: outcome.connection.header_digest,
                        data: outcome.connection.data_digest,
                    };
                    self.encoder.digests = digests;
                    self.decoder.digests = digests;
                    return Ok(*outcome);
                }
                InitiatorLoginStep::Failed(e) => return Err(e.to_string()),
            }
        }
    }

    /// Sends a read-type SCSI command and returns (status, data, sense).
    pub fn read_command(
        &mut self,
        lun: u16,
        cdb: &[u8],
        expected: u32,
    ) -> Result<(u8, Bytes, Bytes), String> {
        let itt = self.next_itt;
        self.next_itt += 1;
        let cmd = ScsiCommand {
            final_: true,
            read: expected > 0,
            attr: TaskAttr::Simple,
            lun: Lun::from_index(lun),
            itt,
            expected_data_transfer_length: expected,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            cdb: Cdb::new(cdb),
            ..ScsiCommand::default()
        };
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.send(&Pdu::bare(Header::ScsiCommand(cmd)));
        let mut data = BytesMut::new();
        loop {
            let pdu = self
                .recv(Duration::from_secs(5))?
                .ok_or("target closed the connection")?;
            match pdu.header {
                Header::DataIn(h) if h.itt == itt => {
                    data.extend_from_slice(&pdu.data);
                    if h.status_present {
                        self.exp_stat_sn = h.stat_sn.wrapping_add(1);
                        return Ok((h.status, data.freeze(), Bytes::new()));
                    }
                }
                Header::ScsiResponse(h) if h.itt == itt => {
                    self.exp_stat_sn = h.stat_sn.wrapping_add(1);
                    let sense = if pdu.data.len() >= 2 {
                        pdu.data.slice(2..)
                    } else {
                        Bytes::new()
                    };
                    return Ok((h.status, data.freeze(), sense));
                }
                _ => {}
            }
        }
    }

    /// INQUIRY on `lun`: the standard data.
    pub fn inquiry(&mut self, lun: u16) -> Result<Bytes, String> {
        let (status, data, _) = self.read_command(lun, &[0x12, 0, 0, 0, 96, 0], 96)?;
        if status != 0 {
            return Err(format!("INQUIRY status {status:#x}"));
        }
        Ok(data)
    }
}
