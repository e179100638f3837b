//! A minimal scripted iSCSI client: it logs in with the engine's login
//! state machine and then sends exactly the PDUs a test scripts, for
//! checks below the initiator engine (the target's own answers, PDU by
//! PDU, hostile traffic no real initiator would send).
//!
//! [`Script`] is the sans-IO half (sequence numbers, digests, the PDUs of a
//! command and the collection of its reply); [`Scripted`] drives it over
//! any [`Network`] (turmoil or TCP). The blocking client of the
//! conformance tests drives the same [`Script`] over a `std` socket.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_engine::login::initiator::{
    InitiatorConfig, InitiatorLogin, InitiatorLoginStep, InitiatorOutcome,
};
use iscsi_engine::net::Network;
use iscsi_engine::pdu::{
    Cdb, Decoder, Digests, Encoder, Header, Isid, Lun, Pdu, ScsiCommand, TaskAttr,
};
use iscsi_engine::text::{Preferences, SessionType};
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the async client waits for one PDU.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest data segment a scripted client accepts.
const MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 1 << 20;

/// What a scripted SCSI command got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u8,
    pub data: Bytes,
    pub sense: Bytes,
}

/// The sans-IO state of a scripted connection: the codec with its digests,
/// CmdSN, ExpStatSN and the next ITT (RFC 7143 §4.2.2).
pub struct Script {
    pub decoder: Decoder,
    pub encoder: Encoder,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub next_itt: u32,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            decoder: Decoder {
                max_recv_data_segment_length: MAX_RECV_DATA_SEGMENT_LENGTH,
                ..Decoder::default()
            },
            encoder: Encoder::default(),
            cmd_sn: 0,
            exp_stat_sn: 0,
            next_itt: 1,
        }
    }
}

impl Script {
    /// A login to a normal session of `target` with AuthMethod None.
    pub fn login(initiator: &str, target: &str, isid: Isid, prefs: Preferences) -> InitiatorLogin {
        InitiatorLogin::new(InitiatorConfig {
            prefs,
            ..InitiatorConfig::leading(initiator, isid, SessionType::Normal, Some(target))
        })
    }

    /// Feeds one PDU of the login phase: `Ok(Some(pdu))` to send next,
    /// `Ok(None)` once the session is in full-feature phase (sequence
    /// numbers and digests taken from the outcome).
    pub fn login_step(
        &mut self,
        login: &mut InitiatorLogin,
        pdu: &Pdu,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<Option<Pdu>, String> {
        let Header::LoginResponse(h) = &pdu.header else {
            return Err(format!(
                "expected a Login Response, got {}",
                pdu.opcode().name()
            ));
        };
        match login.handle(h, &pdu.data, rng) {
            InitiatorLoginStep::Send(next) => Ok(Some(next)),
            InitiatorLoginStep::Complete(outcome) => {
                self.logged_in(&outcome);
                Ok(None)
            }
            InitiatorLoginStep::Failed(e) => Err(e.to_string()),
        }
    }

    fn logged_in(&mut self, outcome: &InitiatorOutcome) {
        self.cmd_sn = outcome.cmd_sn;
        self.exp_stat_sn = outcome.exp_stat_sn;
        let digests = Digests {
            header: outcome.connection.header_digest,
            data: outcome.connection.data_digest,
        };
        self.encoder.digests = digests;
        self.decoder.digests = digests;
    }

    /// The bytes of `pdu` on the wire.
    pub fn encode(&self, pdu: &Pdu) -> BytesMut {
        let mut out = BytesMut::new();
        self.encoder.encode(pdu, &mut out);
        out
    }

    /// A SCSI command without Data-Out expecting up to `expected` bytes
    /// of Data-In, with the next ITT and CmdSN, and the collector of its
    /// reply.
    pub fn read_command(&mut self, lun: u16, cdb: &[u8], expected: u32) -> (Pdu, ReplyCollector) {
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
        let collector = ReplyCollector {
            itt,
            data: BytesMut::new(),
        };
        (Pdu::bare(Header::ScsiCommand(cmd)), collector)
    }
}

/// Collects one command's Data-In and its status (phase-collapsed in the
/// last Data-In or in a SCSI Response, RFC 7143 §11.7.4).
pub struct ReplyCollector {
    itt: u32,
    data: BytesMut,
}

impl ReplyCollector {
    /// Takes a PDU from the target; `Some` once the command's status came.
    /// PDUs of other tasks are ignored.
    pub fn absorb(&mut self, script: &mut Script, pdu: Pdu) -> Option<Reply> {
        match pdu.header {
            Header::DataIn(h) if h.itt == self.itt => {
                self.data.extend_from_slice(&pdu.data);
                h.status_present.then(|| {
                    script.exp_stat_sn = h.stat_sn.wrapping_add(1);
                    Reply {
                        status: h.status,
                        data: std::mem::take(&mut self.data).freeze(),
                        sense: Bytes::new(),
                    }
                })
            }
            Header::ScsiResponse(h) if h.itt == self.itt => {
                script.exp_stat_sn = h.stat_sn.wrapping_add(1);
                // The sense data follows its two-byte length (§11.4.7.2).
                let sense = if pdu.data.len() >= 2 {
                    pdu.data.slice(2..)
                } else {
                    Bytes::new()
                };
                Some(Reply {
                    status: h.status,
                    data: std::mem::take(&mut self.data).freeze(),
                    sense,
                })
            }
            _ => None,
        }
    }
}

/// Standard INQUIRY (SPC-5 §6.7) of 96 bytes.
pub const INQUIRY_CDB: [u8; 6] = [0x12, 0, 0, 0, 96, 0];

/// A scripted connection over any [`Network`].
pub struct Scripted<N: Network> {
    stream: N::Stream,
    buf: BytesMut,
    pub script: Script,
}

impl<N: Network> Scripted<N> {
    pub async fn connect(network: &N, addr: std::net::SocketAddr) -> Result<Self, String> {
        let stream = network
            .connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        Ok(Scripted {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            script: Script::default(),
        })
    }

    pub async fn send(&mut self, pdu: &Pdu) -> Result<(), String> {
        let out = self.script.encode(pdu);
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.stream.flush().await.map_err(|e| format!("send: {e}"))
    }

    /// The next PDU; `Ok(None)` when the target closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Pdu>, String> {
        loop {
            match self.script.decoder.decode(&mut self.buf) {
                Ok(Some(pdu)) => return Ok(Some(pdu)),
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable PDU from the target: {e}")),
            }
            self.buf.reserve(64 * 1024);
            let read = tokio::time::timeout(RECV_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| "timed out waiting for a PDU".to_string())?;
            match read {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }

    /// Logs in to a normal session of `target` with AuthMethod None.
    pub async fn login(
        &mut self,
        initiator: &str,
        target: &str,
        isid: Isid,
        prefs: Preferences,
        seed: u64,
    ) -> Result<(), String> {
        let mut login = Script::login(initiator, target, isid, prefs);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let first = login.start();
        self.send(&first).await?;
        loop {
            let pdu = self
                .recv()
                .await?
                .ok_or("the target closed the connection during login")?;
            match self.script.login_step(&mut login, &pdu, &mut rng)? {
                Some(next) => self.send(&next).await?,
                None => return Ok(()),
            }
        }
    }

    /// Sends a SCSI command without Data-Out and collects its Data-In and
    /// status.
    pub async fn read_command(
        &mut self,
        lun: u16,
        cdb: &[u8],
        expected: u32,
    ) -> Result<Reply, String> {
        let (cmd, mut collector) = self.script.read_command(lun, cdb, expected);
        self.send(&cmd).await?;
        loop {
            let pdu = self
                .recv()
                .await?
                .ok_or("the target closed the connection")?;
            if let Some(reply) = collector.absorb(&mut self.script, pdu) {
                return Ok(reply);
            }
        }
    }

    /// Standard INQUIRY data of `lun`.
    pub async fn inquiry(&mut self, lun: u16) -> Result<Bytes, String> {
        let reply = self.read_command(lun, &INQUIRY_CDB, 96).await?;
        if reply.status != 0 {
            return Err(format!("INQUIRY status {:#x}", reply.status));
        }
        Ok(reply.data)
    }
}
