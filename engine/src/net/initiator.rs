//! The initiator's async driver and its Rust API: a [`Session`] that logs
//! in to a target over any [`Network`] and runs SCSI commands, any number
//! of them concurrently (clone the handle), while the sans-IO
//! [`crate::initiator::Session`] makes every protocol decision — including
//! reconnection and the retry of commands after a lost connection.
//!
//! Per connection a reader task feeds received bytes to the core and a
//! writer task writes what the core queues; a timer task fires the core's
//! deadlines. All three are short loops around one lock. Time comes from
//! `tokio::time` only, so the same code runs under turmoil's simulated
//! clock, and randomness only from the seed given to [`Session::login`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, info};

use super::Network;
use crate::initiator::{
    self as proto, Command, Completion, ConnectionId, Event, TaskId, connect_error_message,
};
use crate::pdu::Encoder;
use crate::scsi::sense::key;

pub use crate::initiator::{
    InitiatorError, Residual, ScsiOutcome, SenseInfo, SessionConfig, State, initiator_preferences,
};
pub use crate::login::Credentials;
pub use crate::pdu::{Isid, TmfFunction};
pub use crate::text::{ConnectionParams, Preferences, SessionParams, TargetRecord};

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 256 * 1024;
/// Unit attentions retried by the convenience commands, as the Linux SCSI
/// midlayer does (a reinstated session reports I_T NEXUS LOSS OCCURRED).
const UNIT_ATTENTION_RETRIES: usize = 5;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The standard INQUIRY data (SPC-5 §6.7.2) an initiator shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    pub peripheral_qualifier: u8,
    pub device_type: u8,
    pub removable: bool,
    pub version: u8,
    pub vendor: String,
    pub product: String,
    pub revision: String,
    pub raw: Bytes,
}

impl Inquiry {
    fn parse(raw: Bytes) -> Result<Inquiry, InitiatorError> {
        if raw.len() < 36 {
            return Err(InitiatorError::ShortTransfer {
                expected: 36,
                got: raw.len() as u32,
            });
        }
        let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&raw[r]).trim().to_string();
        Ok(Inquiry {
            peripheral_qualifier: raw[0] >> 5,
            device_type: raw[0] & 0x1f,
            removable: raw[1] & 0x80 != 0,
            version: raw[2],
            vendor: text(8..16),
            product: text(16..32),
            revision: text(32..36),
            raw,
        })
    }

    /// libiscsi's name of the peripheral device type (as `iscsi-ls` prints).
    pub fn device_type_name(&self) -> &'static str {
        device_type_name(self.device_type)
    }
}

/// libiscsi's names of SPC-5 peripheral device types.
pub fn device_type_name(t: u8) -> &'static str {
    match t {
        0x00 => "DIRECT_ACCESS",
        0x01 => "SEQUENTIAL_ACCESS",
        0x02 => "PRINTER",
        0x03 => "PROCESSOR",
        0x04 => "WRITE_ONCE",
        0x05 => "MMC",
        0x06 => "SCANNER",
        0x07 => "OPTICAL_MEMORY",
        0x08 => "MEDIUM_CHANGER",
        0x09 => "COMMUNICATIONS",
        0x0c => "STORAGE_ARRAY_CONTROLLER",
        0x0d => "ENCLOSURE_SERVICES",
        0x0e => "SIMPLIFIED_DIRECT_ACCESS",
        0x0f => "OPTICAL_CARD_READER",
        0x11 => "OBJECT_STORAGE",
        0x12 => "AUTOMATION",
        0x1e => "WELL_KNOWN_LUN",
        _ => "UNKNOWN",
    }
}

/// A logical unit's size (READ CAPACITY, SBC-4 §5.20, §5.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Number of logical blocks (the last LBA + 1).
    pub blocks: u64,
    pub block_size: u32,
}

impl Capacity {
    pub fn bytes(&self) -> u64 {
        self.blocks * u64::from(self.block_size)
    }
}

/// What reads and writes need to know of a logical unit.
#[derive(Debug, Clone, Copy)]
struct LunInfo {
    block_size: u32,
    /// Blocks per command.
    chunk: u32,
}

/// The largest single command this API issues when the logical unit sets
/// no limit.
const MAX_CHUNK_BYTES: u32 = 16 << 20;

impl LunInfo {
    fn new(block_size: u32, max_transfer_blocks: u32) -> LunInfo {
        let cap = (MAX_CHUNK_BYTES / block_size).max(1);
        let chunk = match max_transfer_blocks {
            0 => cap,
            n => n.min(cap),
        };
        LunInfo { block_size, chunk }
    }

    /// `(lba, blocks)` of each command of a transfer.
    fn split(self, lba: u64, blocks: u32) -> impl Iterator<Item = (u64, u32)> {
        let chunk = self.chunk;
        (0..blocks.div_ceil(chunk)).map(move |i| {
            let done = i * chunk;
            (lba + u64::from(done), chunk.min(blocks - done))
        })
    }
}

/// One command of a split transfer.
struct Chunk {
    cdb: Vec<u8>,
    data_out: Bytes,
    expected_in: u32,
}

/// A connection's tasks, aborted when the core lets the connection go.
struct ConnIo {
    writer: Arc<Notify>,
    tasks: Vec<AbortHandle>,
}

/// Where a request's result goes.
enum Waiter {
    One(oneshot::Sender<Result<Completion, InitiatorError>>),
    /// A command of [`Session::submit_batch`]: its tag and the channel.
    Batch(u64, CompletionSender),
}

impl Waiter {
    fn send(self, result: Result<Completion, InitiatorError>) {
        match self {
            Waiter::One(tx) => {
                let _ = tx.send(result);
            }
            Waiter::Batch(tag, tx) => {
                let _ = tx.send((tag, scsi(result)));
            }
        }
    }
}

/// The channel the results of [`Session::submit_batch`] arrive on, each
/// with the caller's tag.
pub type CompletionSender =
    tokio::sync::mpsc::UnboundedSender<(u64, Result<ScsiOutcome, InitiatorError>)>;

/// One command of [`Session::submit_batch`].
#[derive(Debug, Clone)]
pub struct BatchCommand {
    /// The caller's tag, returned with the result.
    pub tag: u64,
    pub lun: u16,
    pub cdb: [u8; 16],
    /// The CDB's length (6, 10, 12 or 16).
    pub cdb_len: u8,
    pub data_out: Bytes,
    pub expected_in: u32,
}

struct Core {
    session: proto::Session,
    waiters: BTreeMap<TaskId, Waiter>,
    login: Option<oneshot::Sender<Result<(), InitiatorError>>>,
    conns: BTreeMap<ConnectionId, ConnIo>,
    /// The deadline the timer task sleeps until.
    armed: Option<Instant>,
    luns: BTreeMap<u16, LunInfo>,
    closed: bool,
}

struct Shared<N: Network> {
    network: N,
    core: Mutex<Core>,
    timer: Notify,
}

/// Ends the session when the last user handle goes away.
struct Owner<N: Network>(Arc<Shared<N>>);

impl<N: Network> Drop for Owner<N> {
    fn drop(&mut self) {
        let mut core = self.0.lock();
        if !core.closed {
            core.session.abort();
            self.0.pump(&mut core);
        }
    }
}

/// A logged-in iSCSI session (clone it to share it between tasks).
pub struct Session<N: Network> {
    shared: Arc<Shared<N>>,
    _owner: Arc<Owner<N>>,
}

impl<N: Network> Clone for Session<N> {
    fn clone(&self) -> Self {
        Session {
            shared: self.shared.clone(),
            _owner: self._owner.clone(),
        }
    }
}

impl<N: Network> std::fmt::Debug for Session<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.shared.lock();
        f.debug_struct("Session")
            .field("target", &core.session.config().target_name)
            .field("isid", &core.session.isid())
            .field("tsih", &core.session.tsih())
            .field("state", &core.session.state())
            .finish()
    }
}

/// A command submitted with [`Session::start_command`]: its tag (for
/// ABORT TASK) and its result.
pub struct PendingCommand {
    tag: u32,
    rx: oneshot::Receiver<Result<Completion, InitiatorError>>,
}

impl PendingCommand {
    /// The command's Initiator Task Tag, for [`Session::task_management`].
    pub fn tag(&self) -> u32 {
        self.tag
    }

    pub async fn wait(self) -> Result<ScsiOutcome, InitiatorError> {
        scsi(self.rx.await.unwrap_or(Err(InitiatorError::Closed)))
    }
}

fn scsi(result: Result<Completion, InitiatorError>) -> Result<ScsiOutcome, InitiatorError> {
    match result? {
        Completion::Scsi(o) => Ok(o),
        other => Err(InitiatorError::Protocol(format!(
            "unexpected completion {other:?}"
        ))),
    }
}

impl<N: Network> Session<N> {
    /// Connects to `config.portal` and logs in. Fails with the connect
    /// error, the login status or a timeout; after this first login the
    /// session recovers from lost connections by itself.
    pub async fn login(
        network: N,
        config: SessionConfig,
        seed: u64,
    ) -> Result<Self, InitiatorError> {
        let session = proto::Session::new(config, seed, now());
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            network,
            core: Mutex::new(Core {
                session,
                waiters: BTreeMap::new(),
                login: Some(tx),
                conns: BTreeMap::new(),
                armed: None,
                luns: BTreeMap::new(),
                closed: false,
            }),
            timer: Notify::new(),
        });
        {
            let mut core = shared.lock();
            shared.pump(&mut core);
        }
        tokio::spawn(shared.clone().run_timer());
        // Dropping this future before the login ends abandons the session.
        let owner = Arc::new(Owner(shared.clone()));
        match rx.await {
            Ok(Ok(())) => Ok(Session {
                _owner: owner,
                shared,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(InitiatorError::Closed),
        }
    }

    /// Submits a request to the core and waits for its completion.
    async fn submit(
        &self,
        f: impl FnOnce(&mut proto::Session, Instant) -> TaskId,
    ) -> Result<Completion, InitiatorError> {
        let (_, rx) = self.enqueue(f);
        rx.await.unwrap_or(Err(InitiatorError::Closed))
    }

    fn enqueue(
        &self,
        f: impl FnOnce(&mut proto::Session, Instant) -> TaskId,
    ) -> (
        TaskId,
        oneshot::Receiver<Result<Completion, InitiatorError>>,
    ) {
        let (tx, rx) = oneshot::channel();
        let mut core = self.shared.lock();
        let id = f(&mut core.session, now());
        core.waiters.insert(id, Waiter::One(tx));
        self.shared.pump(&mut core);
        (id, rx)
    }

    /// Submits many commands under one lock; each result arrives on `sink`
    /// with its tag. The cheapest way to keep a queue full (the load
    /// generator uses it): one wake-up per batch of results rather than
    /// one per command.
    pub fn submit_batch(
        &self,
        commands: impl IntoIterator<Item = BatchCommand>,
        sink: &CompletionSender,
    ) {
        let mut core = self.shared.lock();
        let now = now();
        for c in commands {
            let len = usize::from(c.cdb_len).min(16);
            let cmd = Command::new(c.lun, &c.cdb[..len], c.data_out, c.expected_in);
            let id = core.session.command(cmd, now);
            core.waiters.insert(id, Waiter::Batch(c.tag, sink.clone()));
        }
        self.shared.pump(&mut core);
    }

    /// Any SCSI command: `data_out` for a write, `expected_in` bytes for a
    /// read. Every status the target delivers is `Ok` (see
    /// [`ScsiOutcome::check`]); errors are transport and session failures.
    pub async fn command(
        &self,
        lun: u16,
        cdb: &[u8],
        data_out: Bytes,
        expected_in: u32,
    ) -> Result<ScsiOutcome, InitiatorError> {
        self.start_command(lun, cdb, data_out, expected_in)
            .wait()
            .await
    }

    /// Submits a command and returns at once with its tag.
    pub fn start_command(
        &self,
        lun: u16,
        cdb: &[u8],
        data_out: Bytes,
        expected_in: u32,
    ) -> PendingCommand {
        let cmd = Command::new(lun, cdb, data_out, expected_in);
        let (id, rx) = self.enqueue(|s, now| s.command(cmd, now));
        PendingCommand { tag: id.0, rx }
    }

    /// A command that must end GOOD; UNIT ATTENTION is retried.
    async fn checked(
        &self,
        lun: u16,
        cdb: &[u8],
        data_out: Bytes,
        expected_in: u32,
    ) -> Result<ScsiOutcome, InitiatorError> {
        let mut attempt = 0;
        loop {
            let outcome = self
                .command(lun, cdb, data_out.clone(), expected_in)
                .await?;
            let unit_attention = outcome
                .sense
                .as_ref()
                .is_some_and(SenseInfo::is_unit_attention);
            if unit_attention && attempt < UNIT_ATTENTION_RETRIES {
                attempt += 1;
                debug!(lun, "unit attention: retrying");
                continue;
            }
            return outcome.check();
        }
    }

    /// Reads `blocks` logical blocks from `lba` (READ(10), or READ(16)
    /// beyond its reach), in several commands when the logical unit's
    /// MAXIMUM TRANSFER LENGTH asks for it (SBC-4 §6.6.4).
    pub async fn read(&self, lun: u16, lba: u64, blocks: u32) -> Result<Bytes, InitiatorError> {
        let info = self.lun_info(lun).await?;
        let total = u64::from(blocks) * u64::from(info.block_size);
        if total > u64::from(u32::MAX) {
            return Err(InitiatorError::InvalidRequest(format!(
                "a read of {total} bytes"
            )));
        }
        let chunks: Vec<Chunk> = info
            .split(lba, blocks)
            .map(|(at, n)| Chunk {
                cdb: rw_cdb(0x28, 0x88, at, n, false),
                data_out: Bytes::new(),
                expected_in: n * info.block_size,
            })
            .collect();
        let mut outcomes = self.run_chunks(lun, chunks).await?;
        let data = if outcomes.len() == 1 {
            outcomes.pop().expect("one").data
        } else {
            let mut buf = BytesMut::with_capacity(total as usize);
            for o in outcomes {
                buf.extend_from_slice(&o.data);
            }
            buf.freeze()
        };
        if data.len() as u64 != total {
            return Err(InitiatorError::ShortTransfer {
                expected: total as u32,
                got: data.len() as u32,
            });
        }
        Ok(data)
    }

    /// Writes `data` (whole blocks) at `lba`.
    pub async fn write(&self, lun: u16, lba: u64, data: Bytes) -> Result<(), InitiatorError> {
        self.write_with(lun, lba, data, false).await
    }

    /// Writes with FUA: the data is on stable storage when this returns.
    pub async fn write_fua(&self, lun: u16, lba: u64, data: Bytes) -> Result<(), InitiatorError> {
        self.write_with(lun, lba, data, true).await
    }

    async fn write_with(
        &self,
        lun: u16,
        lba: u64,
        data: Bytes,
        fua: bool,
    ) -> Result<(), InitiatorError> {
        let info = self.lun_info(lun).await?;
        let block = info.block_size as usize;
        if data.is_empty() || data.len() % block != 0 {
            return Err(InitiatorError::InvalidRequest(format!(
                "{} bytes is not a whole number of {block}-byte blocks",
                data.len()
            )));
        }
        let blocks = u32::try_from(data.len() / block)
            .map_err(|_| InitiatorError::InvalidRequest("write too long".into()))?;
        let chunks: Vec<Chunk> = info
            .split(lba, blocks)
            .map(|(at, n)| {
                let from = (at - lba) as usize * block;
                Chunk {
                    cdb: rw_cdb(0x2a, 0x8a, at, n, fua),
                    data_out: data.slice(from..from + n as usize * block),
                    expected_in: 0,
                }
            })
            .collect();
        self.run_chunks(lun, chunks).await.map(|_| ())
    }

    /// Submits every chunk at once, then collects them in order; each must
    /// end GOOD (a UNIT ATTENTION is retried).
    async fn run_chunks(
        &self,
        lun: u16,
        chunks: Vec<Chunk>,
    ) -> Result<Vec<ScsiOutcome>, InitiatorError> {
        let pending: Vec<PendingCommand> = chunks
            .iter()
            .map(|c| self.start_command(lun, &c.cdb, c.data_out.clone(), c.expected_in))
            .collect();
        let mut outcomes = Vec::with_capacity(chunks.len());
        for (p, c) in pending.into_iter().zip(chunks) {
            let outcome = p.wait().await?;
            let unit_attention = outcome
                .sense
                .as_ref()
                .is_some_and(SenseInfo::is_unit_attention);
            outcomes.push(if unit_attention {
                self.checked(lun, &c.cdb, c.data_out, c.expected_in).await?
            } else {
                outcome.check()?
            });
        }
        Ok(outcomes)
    }

    /// SYNCHRONIZE CACHE(10) of the whole logical unit.
    pub async fn flush(&self, lun: u16) -> Result<(), InitiatorError> {
        self.checked(lun, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], Bytes::new(), 0)
            .await
            .map(|_| ())
    }

    /// Standard INQUIRY data.
    pub async fn inquiry(&self, lun: u16) -> Result<Inquiry, InitiatorError> {
        let out = self
            .checked(lun, &[0x12, 0, 0, 0, 255, 0], Bytes::new(), 255)
            .await?;
        Inquiry::parse(out.data)
    }

    /// The LUNs REPORT LUNS lists (single-level LUNs only).
    pub async fn report_luns(&self) -> Result<Vec<u16>, InitiatorError> {
        let mut alloc: u32 = 16 + 8 * 256;
        loop {
            let mut cdb = [0u8; 12];
            cdb[0] = 0xa0;
            cdb[6..10].copy_from_slice(&alloc.to_be_bytes());
            let out = self.checked(0, &cdb, Bytes::new(), alloc).await?;
            let d = &out.data;
            if d.len() < 8 {
                return Err(InitiatorError::ShortTransfer {
                    expected: 8,
                    got: d.len() as u32,
                });
            }
            let list = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            if list.saturating_add(8) > alloc && alloc < (1 << 20) {
                alloc = list.saturating_add(8).min(1 << 20);
                continue;
            }
            let end = (8 + list as usize).min(d.len());
            return Ok(d[8..end]
                .chunks_exact(8)
                .filter_map(|e| {
                    let v = u64::from_be_bytes(e.try_into().expect("8 bytes"));
                    crate::pdu::Lun(v).index()
                })
                .collect());
        }
    }

    /// READ CAPACITY(16), falling back to READ CAPACITY(10) for targets
    /// that do not know it.
    pub async fn read_capacity(&self, lun: u16) -> Result<Capacity, InitiatorError> {
        let mut rc16 = [0u8; 16];
        rc16[0] = 0x9e;
        rc16[1] = 0x10;
        rc16[13] = 32;
        let capacity = match self.checked(lun, &rc16, Bytes::new(), 32).await {
            Ok(out) if out.data.len() >= 12 => {
                let d = &out.data;
                Capacity {
                    blocks: u64::from_be_bytes(d[0..8].try_into().expect("8")) + 1,
                    block_size: u32::from_be_bytes(d[8..12].try_into().expect("4")),
                }
            }
            Ok(_)
            | Err(InitiatorError::CheckCondition {
                key: key::ILLEGAL_REQUEST,
                ..
            }) => {
                let out = self
                    .checked(lun, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], Bytes::new(), 8)
                    .await?;
                let d = &out.data;
                if d.len() < 8 {
                    return Err(InitiatorError::ShortTransfer {
                        expected: 8,
                        got: d.len() as u32,
                    });
                }
                Capacity {
                    blocks: u64::from(u32::from_be_bytes(d[0..4].try_into().expect("4"))) + 1,
                    block_size: u32::from_be_bytes(d[4..8].try_into().expect("4")),
                }
            }
            Err(e) => return Err(e),
        };
        if capacity.block_size == 0 {
            return Err(InitiatorError::Protocol("block size 0".into()));
        }
        Ok(capacity)
    }

    /// The LUN's block size and transfer limit, cached after READ
    /// CAPACITY and the Block Limits VPD page (SBC-4 §6.6.4).
    async fn lun_info(&self, lun: u16) -> Result<LunInfo, InitiatorError> {
        if let Some(info) = self.shared.lock().luns.get(&lun) {
            return Ok(*info);
        }
        let cap = self.read_capacity(lun).await?;
        let max_blocks = match self
            .checked(lun, &[0x12, 0x01, 0xb0, 0, 64, 0], Bytes::new(), 64)
            .await
        {
            Ok(o) if o.data.len() >= 12 && o.data[1] == 0xb0 => {
                u32::from_be_bytes(o.data[8..12].try_into().expect("4"))
            }
            Ok(_) | Err(InitiatorError::CheckCondition { .. }) => 0,
            Err(e) => return Err(e),
        };
        let info = LunInfo::new(cap.block_size, max_blocks);
        self.shared.lock().luns.insert(lun, info);
        Ok(info)
    }

    /// A task management function (RFC 7143 §11.5); `referenced` is the tag
    /// of the task ABORT TASK names ([`PendingCommand::tag`]). Returns the
    /// TMF response code (§11.6.1; 0 is "function complete").
    pub async fn task_management(
        &self,
        lun: u16,
        function: TmfFunction,
        referenced: Option<u32>,
    ) -> Result<u8, InitiatorError> {
        match self
            .submit(|s, now| s.task_management(lun, function, referenced.map(TaskId), now))
            .await?
        {
            Completion::TaskManagement(r) => Ok(r),
            other => Err(InitiatorError::Protocol(format!(
                "unexpected completion {other:?}"
            ))),
        }
    }

    /// SendTargets on this session (its own target on a normal session,
    /// every target on a discovery session).
    pub async fn send_targets(&self) -> Result<Vec<TargetRecord>, InitiatorError> {
        match self.submit(|s, now| s.send_targets(now)).await? {
            Completion::SendTargets(r) => Ok(r),
            other => Err(InitiatorError::Protocol(format!(
                "unexpected completion {other:?}"
            ))),
        }
    }

    /// What the last login negotiated.
    pub fn negotiated(&self) -> (SessionParams, ConnectionParams) {
        let core = self.shared.lock();
        let (s, c) = core.session.negotiated();
        (s.clone(), *c)
    }

    pub fn state(&self) -> State {
        self.shared.lock().session.state()
    }

    pub fn isid(&self) -> Isid {
        self.shared.lock().session.isid()
    }

    pub fn tsih(&self) -> u16 {
        self.shared.lock().session.tsih()
    }

    /// How many times the session was reinstated after a lost connection.
    pub fn reinstatements(&self) -> u64 {
        self.shared.lock().session.reinstatements()
    }

    /// Logs out once every outstanding command has completed.
    pub async fn logout(self) -> Result<(), InitiatorError> {
        match self.submit(|s, now| s.logout(now)).await? {
            Completion::Logout => Ok(()),
            other => Err(InitiatorError::Protocol(format!(
                "unexpected completion {other:?}"
            ))),
        }
    }
}

/// READ/WRITE (10) when the LBA and length fit, else (16) (SBC-4 §5.15,
/// §5.16, §5.40, §5.41).
fn rw_cdb(op10: u8, op16: u8, lba: u64, blocks: u32, fua: bool) -> Vec<u8> {
    let flags = if fua { 0x08 } else { 0 };
    if lba <= u64::from(u32::MAX) && blocks <= u32::from(u16::MAX) {
        let mut c = vec![0u8; 10];
        c[0] = op10;
        c[1] = flags;
        c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
        c[7..9].copy_from_slice(&(blocks as u16).to_be_bytes());
        c
    } else {
        let mut c = vec![0u8; 16];
        c[0] = op16;
        c[1] = flags;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }
}

/// Logs in to a discovery session at `portal`, asks SendTargets=All, and
/// logs out (RFC 7143 §13.3, Appendix C).
pub async fn discover<N: Network>(
    network: N,
    portal: SocketAddr,
    initiator_name: &str,
    chap: Option<Credentials>,
    seed: u64,
) -> Result<Vec<TargetRecord>, InitiatorError> {
    let mut config = SessionConfig::discovery(initiator_name, portal);
    config.chap = chap;
    let session = Session::login(network, config, seed).await?;
    let records = session.send_targets().await?;
    session.logout().await?;
    Ok(records)
}

impl<N: Network> Shared<N> {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Does what the core asks: opens and closes connections, hands out
    /// results, wakes writers and the timer.
    fn pump(self: &Arc<Self>, core: &mut Core) {
        while let Some(event) = core.session.poll_event() {
            match event {
                Event::Connect { conn, addr } => {
                    let writer = Arc::new(Notify::new());
                    let task =
                        tokio::spawn(self.clone().run_connection(conn, addr, writer.clone()));
                    core.conns.insert(
                        conn,
                        ConnIo {
                            writer,
                            tasks: vec![task.abort_handle()],
                        },
                    );
                }
                Event::Close(conn) => {
                    if let Some(io) = core.conns.remove(&conn) {
                        for t in io.tasks {
                            t.abort();
                        }
                    }
                }
                Event::LoggedIn { reinstated } => {
                    if reinstated {
                        info!("session reinstated");
                    }
                    if let Some(tx) = core.login.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Event::Completed { task, result } => {
                    if let Some(w) = core.waiters.remove(&task) {
                        w.send(result);
                    }
                }
                Event::ScsiEvent { lun, sense } => {
                    info!(lun, sense = ?sense, "asynchronous SCSI event");
                }
                Event::Closed(result) => {
                    core.closed = true;
                    if let Some(tx) = core.login.take() {
                        let _ = tx.send(result.and(Err(InitiatorError::Closed)));
                    }
                    for (_, w) in std::mem::take(&mut core.waiters) {
                        w.send(Err(InitiatorError::Closed));
                    }
                }
            }
        }
        for (id, io) in &core.conns {
            if core.session.wants_write(*id) {
                io.writer.notify_one();
            }
        }
        let next = core.session.poll_timeout();
        let earlier = match (next, core.armed) {
            (Some(n), Some(a)) => n < a,
            (Some(_), None) => true,
            (None, _) => core.closed,
        };
        if earlier {
            self.timer.notify_one();
        }
    }

    async fn run_timer(self: Arc<Self>) {
        loop {
            let deadline = {
                let mut core = self.lock();
                if core.closed {
                    return;
                }
                core.armed = core.session.poll_timeout();
                core.armed
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        // Biased: tokio's branch RNG is seeded by the OS.
                        biased;
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                            let mut core = self.lock();
                            core.armed = None;
                            core.session.handle_timeout(now());
                            self.pump(&mut core);
                        }
                        () = self.timer.notified() => {}
                    }
                }
                None => self.timer.notified().await,
            }
        }
    }

    /// Opens one connection, then reads from it until it ends.
    async fn run_connection(
        self: Arc<Self>,
        conn: ConnectionId,
        addr: SocketAddr,
        writer: Arc<Notify>,
    ) {
        let stream = match self.network.connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                debug!(%conn, %addr, "connect: {}", connect_error_message(e.kind()));
                let mut core = self.lock();
                core.session.handle_connect_failed(conn, e.kind(), now());
                self.pump(&mut core);
                return;
            }
        };
        let (mut reader, write_half) = tokio::io::split(stream);
        {
            let mut core = self.lock();
            let Some(io) = core.conns.get_mut(&conn) else {
                return;
            };
            let task = tokio::spawn(self.clone().run_writer(conn, write_half, writer));
            io.tasks.push(task.abort_handle());
            core.session.handle_connected(conn, now());
            self.pump(&mut core);
        }
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        loop {
            if buf.capacity() - buf.len() < READ_SIZE / 4 {
                buf.reserve(READ_SIZE);
            }
            let read = reader.read_buf(&mut buf).await;
            let mut core = self.lock();
            match read {
                Ok(n) if n > 0 => {
                    core.session.handle_input(conn, &mut buf, now());
                    self.pump(&mut core);
                }
                other => {
                    if let Err(e) = other {
                        debug!(%conn, %e, "read failed");
                    }
                    core.session.handle_closed(conn, now());
                    self.pump(&mut core);
                    return;
                }
            }
        }
    }

    /// Writes what the core queues for `conn`, a batch per wake-up.
    async fn run_writer<W: tokio::io::AsyncWrite + Unpin>(
        self: Arc<Self>,
        conn: ConnectionId,
        writer: W,
        notify: Arc<Notify>,
    ) {
        let mut writer = BufWriter::with_capacity(256 * 1024, writer);
        let mut header = BytesMut::with_capacity(1024);
        let mut batch = Vec::with_capacity(64);
        loop {
            {
                let mut core = self.lock();
                while let Some(t) = core.session.poll_transmit(conn) {
                    batch.push(t);
                }
            }
            if batch.is_empty() {
                notify.notified().await;
                continue;
            }
            let written: std::io::Result<()> = async {
                for t in batch.drain(..) {
                    let encoder = Encoder { digests: t.digests };
                    header.clear();
                    encoder.encode_header(&t.pdu, &mut header);
                    writer.write_all(&header).await?;
                    if !t.pdu.data.is_empty() {
                        writer.write_all(&t.pdu.data).await?;
                        writer
                            .write_all(encoder.trailer(&t.pdu.data).as_ref())
                            .await?;
                    }
                }
                writer.flush().await
            }
            .await;
            if let Err(e) = written {
                debug!(%conn, %e, "write failed");
                let mut core = self.lock();
                core.session.handle_closed(conn, now());
                self.pump(&mut core);
                return;
            }
        }
    }
}
