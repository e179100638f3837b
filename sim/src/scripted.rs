//! A minimal scripted iSCSI client for the simulation: it logs in with the
//! engine's login state machine and then sends exactly the PDUs a test
//! scripts, over any [`Network`]. The async counterpart of the blocking
//! client in `conformance/tests/common`, for checks below the initiator
//! engine (the target's own answers, PDU by PDU).

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

/// How long the client waits for one PDU.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that sends scripted PDUs.
pub struct Scripted<N: Network> {
    stream: N::Stream,
    buf: BytesMut,
    pub decoder: Decoder,
    pub encoder: Encoder,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    pub next_itt: u32,
}

/// What a scripted SCSI command got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u8,
    pub data: Bytes,
    pub sense: Bytes,
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
            decoder: Decoder {
                max_recv_data_segment_length: 1 << 20,
                ..Decoder::default()
            },
            encoder: Encoder::default(),
            cmd_sn: 0,
            exp_stat_sn: 0,
            next_itt: 1,
        })
    }

    pub async fn send(&mut self, pdu: &Pdu) -> Result<(), String> {
        let mut out = BytesMut::new();
        self.encoder.encode(pdu, &mut out);
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.stream.flush().await.map_err(|e| format!("send: {e}"))
    }

    /// The next PDU; `Ok(None)` when the target closed the connection.
    pub async fn recv(&mut self) -> Result<Option<Pdu>, String> {
        loop {
            match self.decoder.decode(&mut self.buf) {
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

    /// Logs in to a normal session of `target`.
    pub async fn login(
        &mut self,
        initiator: &str,
        target: &str,
        isid: Isid,
        prefs: Preferences,
        seed: u64,
    ) -> Result<InitiatorOutcome, String> {
        let config = InitiatorConfig {
            initiator_name: initiator.into(),
            initiator_alias: None,
            isid,
            tsih: 0,
            cid: 0,
            itt: 0,
            session_type: SessionType::Normal,
            target_name: Some(target.into()),
            chap: None,
            mutual_chap: None,
            prefs,
            cmd_sn: 1,
            exp_stat_sn: 0,
            extra_keys: Vec::new(),
        };
        let mut login = InitiatorLogin::new(config);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let first = login.start();
        self.send(&first).await?;
        loop {
            let pdu = self
                .recv()
                .await?
                .ok_or("the target closed the connection during login")?;
            let Header::LoginResponse(h) = &pdu.header else {
                return Err(format!(
                    "expected a Login Response, got {}",
                    pdu.opcode().name()
                ));
            };
            match login.handle(h, &pdu.data, &mut rng) {
                InitiatorLoginStep::Send(next) => self.send(&next).await?,
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

    /// Sends a SCSI command without Data-Out and collects its Data-In and
    /// status.
    pub async fn read_command(
        &mut self,
        lun: u16,
        cdb: &[u8],
        expected: u32,
    ) -> Result<Reply, String> {
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
        self.send(&Pdu::bare(Header::ScsiCommand(cmd))).await?;
        let mut data = BytesMut::new();
        loop {
            let pdu = self
                .recv()
                .await?
                .ok_or("the target closed the connection")?;
            match pdu.header {
                Header::DataIn(h) if h.itt == itt => {
                    data.extend_from_slice(&pdu.data);
                    if h.status_present {
                        self.exp_stat_sn = h.stat_sn.wrapping_add(1);
                        return Ok(Reply {
                            status: h.status,
                            data: data.freeze(),
                            sense: Bytes::new(),
                        });
                    }
                }
                Header::ScsiResponse(h) if h.itt == itt => {
                    self.exp_stat_sn = h.stat_sn.wrapping_add(1);
                    let sense = if pdu.data.len() >= 2 {
                        pdu.data.slice(2..)
                    } else {
                        Bytes::new()
                    };
                    return Ok(Reply {
                        status: h.status,
                        data: data.freeze(),
                        sense,
                    });
                }
                _ => {}
            }
        }
    }

    /// Standard INQUIRY data of `lun`.
    pub async fn inquiry(&mut self, lun: u16) -> Result<Bytes, String> {
        let reply = self.read_command(lun, &[0x12, 0, 0, 0, 96, 0], 96).await?;
        if reply.status != 0 {
            return Err(format!("INQUIRY status {:#x}", reply.status));
        }
        Ok(reply.data)
    }
}
