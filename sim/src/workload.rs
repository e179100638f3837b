//! The block I/O workload: concurrent reads, writes (some with FUA) and
//! SYNCHRONIZE CACHE through the initiator engine's [`Session`], every one
//! recorded in the [`crate::oracle`] and every read checked.
//!
//! It behaves like a careful host: one ISID for the life of the host (so a
//! new login reinstates the old session, RFC 7143 §6.3.5), UNIT ATTENTION
//! cleared with TEST UNIT READY after each login, a new login when the
//! session gives up (replacement timeout), never two writes in flight to
//! one block. Errors are judged: a transport error is expected only while
//! faults can cause one; a MEDIUM ERROR only where a sector went bad;
//! anything else fails the run.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use iscsi_engine::net::initiator::{InitiatorError, Isid, Session, SessionConfig};
use iscsi_engine::scsi::sense::key;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::net::SimNetwork;
use crate::world::{HostCtx, Phase, TARGET_IQN};

/// The shape of the I/O.
#[derive(Debug, Clone)]
pub struct IoParams {
    pub lun: u16,
    /// Most operations fall in blocks `0..hot`.
    pub hot: u64,
    /// Every block the workload may touch: `0..region`.
    pub region: u64,
    /// Ordinary operations are 1..=`max_blocks` blocks.
    pub max_blocks: u32,
    /// One operation in `large_one_in` is large: up to `large_blocks`.
    pub large_one_in: u32,
    pub large_blocks: u32,
    /// Concurrent workers (the queue depth).
    pub workers: usize,
    /// Operations each worker does in the liveness phase.
    pub final_ops: u32,
    /// Percentages of reads and flushes; the rest are writes, of which
    /// `fua_percent` use FUA.
    pub read_percent: u32,
    pub flush_percent: u32,
    pub fua_percent: u32,
    /// Each worker pauses up to this long between operations.
    pub think: Duration,
}

impl Default for IoParams {
    fn default() -> Self {
        IoParams {
            lun: 1,
            hot: 256,
            region: 4096,
            max_blocks: 16,
            large_one_in: 40,
            large_blocks: 1024,
            workers: 4,
            final_ops: 20,
            read_percent: 45,
            flush_percent: 5,
            fua_percent: 10,
            think: Duration::from_millis(20),
        }
    }
}

/// The session configuration every workload host uses: a fixed ISID per
/// host, shorter timers than open-iscsi's so that recovery fits in a run.
pub fn session_config(ctx: &HostCtx) -> SessionConfig {
    let mut config = SessionConfig::new(&initiator_name(&ctx.name), TARGET_IQN, ctx.portal);
    config.isid = Some(host_isid(&ctx.name));
    config.replacement_timeout = Duration::from_secs(40);
    config.command_timeout = Some(Duration::from_secs(30));
    config.planted = ctx.world.planted();
    config
}

/// The initiator name of a host.
pub fn initiator_name(host: &str) -> String {
    format!("iqn.2026-01.org.iscsi-harness.sim:{host}")
}

/// A fixed, random-format ISID per host name (RFC 7143 §11.12.5).
pub fn host_isid(host: &str) -> Isid {
    let h = crate::hash::Fnv64::of(host.as_bytes()).to_be_bytes();
    Isid([0x80, h[0], h[1], h[2], h[3], h[4]])
}

/// How an error is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Expected while faults can strike.
    Transient,
    /// The session is gone for good: log in again.
    SessionLost,
    /// A MEDIUM ERROR (reads of bad sectors).
    Medium,
    /// Never acceptable.
    Wrong(String),
}

/// Judges an initiator error.
pub fn judge(e: &InitiatorError) -> Judged {
    use InitiatorError as E;
    match e {
        E::Closed | E::ReplacementTimeout { .. } => Judged::SessionLost,
        E::Connect { .. }
        | E::LoginTimeout { .. }
        | E::CommandTimeout(_)
        | E::ConnectionLost
        | E::RetriesExhausted(_)
        | E::Aborted => Judged::Transient,
        E::CheckCondition { key: k, .. } if *k == key::UNIT_ATTENTION => Judged::Transient,
        E::CheckCondition { key: k, .. } if *k == key::MEDIUM_ERROR => Judged::Medium,
        E::Login { error, .. } => match error.status() {
            Some(s) if s.class() == 2 => Judged::Wrong(e.to_string()),
            _ => Judged::Transient,
        },
        other => Judged::Wrong(other.to_string()),
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Ok,
    /// MEDIUM ERROR on a bad sector.
    Medium,
    /// A tolerated failure (the outcome of a write is then unknown).
    Failed,
}

/// Counts of one host's workload.
#[derive(Debug, Default, Clone, Copy)]
pub struct IoStats {
    pub ops: u64,
    pub transient: u64,
    pub medium: u64,
    pub logins: u64,
}

/// One host's workload: the session it shares between its workers.
pub struct Io {
    pub ctx: HostCtx,
    pub params: IoParams,
    config: SessionConfig,
    session: RefCell<Option<(u64, Session<SimNetwork>)>>,
    generation: Cell<u64>,
    logging_in: tokio::sync::Mutex<()>,
    pub stats: RefCell<IoStats>,
    /// Every tolerated error, as text (scenarios look for expected ones).
    pub errors: RefCell<Vec<String>>,
    /// A logout was asked for at this time: operations started after it
    /// may find the session closed.
    pub closing_since: Cell<Option<tokio::time::Instant>>,
}

impl Io {
    pub fn new(ctx: HostCtx, params: IoParams, config: SessionConfig) -> Rc<Io> {
        Rc::new(Io {
            ctx,
            params,
            config,
            session: RefCell::new(None),
            generation: Cell::new(0),
            logging_in: tokio::sync::Mutex::new(()),
            stats: RefCell::new(IoStats::default()),
            errors: RefCell::new(Vec::new()),
            closing_since: Cell::new(None),
        })
    }

    /// A transport-level failure: fine while faults strike, a bug when
    /// nothing could have caused it.
    pub fn tolerate(&self, what: &str, e: &InitiatorError) -> Result<(), String> {
        if self.ctx.world.disruptive() {
            self.stats.borrow_mut().transient += 1;
            self.ctx.trace(format_args!("{what}: {e}"));
            let mut errors = self.errors.borrow_mut();
            if errors.len() < 256 {
                errors.push(e.to_string());
            }
            Ok(())
        } else {
            Err(format!("{what} failed without any fault: {e}"))
        }
    }

    /// The current session, logging in (again) when there is none.
    pub async fn session(&self) -> Result<(u64, Session<SimNetwork>), String> {
        if let Some(s) = self.session.borrow().as_ref() {
            return Ok(s.clone());
        }
        let _guard = self.logging_in.lock().await;
        if let Some(s) = self.session.borrow().as_ref() {
            return Ok(s.clone());
        }
        let mut backoff = Duration::from_millis(500);
        loop {
            let n = {
                let mut st = self.stats.borrow_mut();
                st.logins += 1;
                st.logins
            };
            let seed = self.ctx.seed(&format!("login{n}"));
            match Session::login(self.ctx.net.clone(), self.config.clone(), seed).await {
                Ok(s) => {
                    self.clear_unit_attention(&s).await?;
                    let generation = self.generation.get() + 1;
                    self.generation.set(generation);
                    *self.session.borrow_mut() = Some((generation, s.clone()));
                    self.ctx
                        .trace(format_args!("logged in tsih={:#x}", s.tsih()));
                    return Ok((generation, s));
                }
                Err(e) => match judge(&e) {
                    Judged::Wrong(w) => return Err(format!("login: {w}")),
                    _ => self.tolerate("login", &e)?,
                },
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(8));
        }
    }

    /// Forgets a session that gave up.
    pub fn lost(&self, generation: u64) {
        let mut slot = self.session.borrow_mut();
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }

    /// TEST UNIT READY until GOOD: the first command of a nexus meets the
    /// power-on unit attention (SAM-5).
    async fn clear_unit_attention(&self, s: &Session<SimNetwork>) -> Result<(), String> {
        for _ in 0..8 {
            match s
                .command(self.params.lun, &[0, 0, 0, 0, 0, 0], Bytes::new(), 0)
                .await
            {
                Ok(o) if o.status == 0 => return Ok(()),
                Ok(_) => continue,
                Err(e) => match judge(&e) {
                    Judged::Wrong(w) => return Err(format!("TEST UNIT READY: {w}")),
                    _ => {
                        self.tolerate("TEST UNIT READY", &e)?;
                        return Ok(());
                    }
                },
            }
        }
        Err("TEST UNIT READY never came back GOOD".into())
    }

    /// Handles an operation's error.
    fn judge_error(
        &self,
        what: &str,
        generation: u64,
        started: tokio::time::Instant,
        e: &InitiatorError,
        range: Option<(u64, u32)>,
    ) -> Result<Done, String> {
        match judge(e) {
            Judged::Wrong(w) => Err(format!("{what}: {w}")),
            Judged::SessionLost => {
                self.lost(generation);
                if self.closing_since.get().is_some_and(|t| started >= t) {
                    self.ctx
                        .trace(format_args!("{what}: {e} (after the logout began)"));
                    return Ok(Done::Failed);
                }
                self.tolerate(what, e).map(|()| Done::Failed)
            }
            Judged::Transient => self.tolerate(what, e).map(|()| Done::Failed),
            Judged::Medium => {
                let bs = u64::from(self.ctx.world.oracle().block_size());
                let bad = range.is_some_and(|(lba, n)| {
                    self.ctx
                        .world
                        .disk(self.params.lun)
                        .is_some_and(|d| d.was_bad(lba * bs, u64::from(n) * bs))
                });
                if bad {
                    self.stats.borrow_mut().medium += 1;
                    self.ctx
                        .trace(format_args!("{what}: MEDIUM ERROR (bad sector)"));
                    Ok(Done::Medium)
                } else {
                    Err(format!("{what}: MEDIUM ERROR where no sector is bad: {e}"))
                }
            }
        }
    }

    /// Reads blocks and checks them.
    pub async fn read(&self, lba: u64, n: u32) -> Result<Done, String> {
        let (generation, s) = self.session().await?;
        let lun = self.params.lun;
        let started = tokio::time::Instant::now();
        let id = self.ctx.world.oracle().begin_read(lun, lba, n);
        let what = format!("read lba={lba}+{n}");
        match s.read(lun, lba, n).await {
            Ok(data) => {
                let checked = self.ctx.world.oracle().end_read(id, &data);
                checked.map_err(|e| format!("{what}: {e}"))?;
                self.ctx.trace(format_args!("op#{id} {what} ok"));
                Ok(Done::Ok)
            }
            Err(e) => {
                self.ctx.world.oracle().abandon_read(id);
                self.judge_error(&what, generation, started, &e, Some((lba, n)))
            }
        }
    }

    /// Writes blocks (never two writes in flight to one block).
    pub async fn write(&self, lba: u64, n: u32, fua: bool) -> Result<Done, String> {
        let (generation, s) = self.session().await?;
        let lun = self.params.lun;
        while !self
            .ctx
            .world
            .try_lock_blocks(&self.ctx.name, lun, lba, u64::from(n))
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let started = tokio::time::Instant::now();
        let (id, data) = self.ctx.world.oracle().begin_write(lun, lba, n, fua);
        let result = if fua {
            s.write_fua(lun, lba, data).await
        } else {
            s.write(lun, lba, data).await
        };
        self.ctx.world.oracle().end_write(id, result.is_ok());
        self.ctx.world.unlock_blocks(lun, lba, u64::from(n));
        let what = format!("write{} lba={lba}+{n}", if fua { "-fua" } else { "" });
        match result {
            Ok(()) => {
                self.ctx.trace(format_args!("op#{id} {what} ok"));
                Ok(Done::Ok)
            }
            Err(e) => self.judge_error(&what, generation, started, &e, None),
        }
    }

    /// SYNCHRONIZE CACHE.
    pub async fn flush(&self) -> Result<Done, String> {
        let (generation, s) = self.session().await?;
        let started = tokio::time::Instant::now();
        let id = self.ctx.world.oracle().begin_flush(self.params.lun);
        let result = s.flush(self.params.lun).await;
        self.ctx.world.oracle().end_flush(id, result.is_ok());
        match result {
            Ok(()) => {
                self.ctx.trace(format_args!("op#{id} flush ok"));
                Ok(Done::Ok)
            }
            Err(e) => self.judge_error("flush", generation, started, &e, None),
        }
    }

    /// One random operation.
    pub async fn random_op(&self, rng: &mut ChaCha8Rng) -> Result<(), String> {
        let p = &self.params;
        let large = p.large_one_in > 0 && rng.random_ratio(1, p.large_one_in);
        let n = if large {
            rng.random_range(p.max_blocks..=p.large_blocks.max(p.max_blocks))
        } else {
            rng.random_range(1..=p.max_blocks)
        };
        let span = if large { p.region } else { p.hot };
        let lba = rng.random_range(0..span.saturating_sub(u64::from(n)).max(1));
        let roll = rng.random_range(0..100);
        if roll < p.read_percent {
            self.read(lba, n).await?;
        } else if roll < p.read_percent + p.flush_percent {
            self.flush().await?;
        } else {
            let fua = rng.random_range(0..100) < p.fua_percent;
            self.write(lba, n, fua).await?;
        }
        self.stats.borrow_mut().ops += 1;
        Ok(())
    }

    /// Reads back every hot block, retrying transport failures, and checks
    /// them all.
    pub async fn verify(&self) -> Result<(), String> {
        let step = 64u64;
        let mut lba = 0;
        while lba < self.params.hot {
            let n = step.min(self.params.hot - lba) as u32;
            match self.read(lba, n).await? {
                Done::Ok => lba += step,
                Done::Failed => tokio::time::sleep(Duration::from_millis(200)).await,
                Done::Medium => {
                    // Check the readable blocks one by one.
                    let mut b = lba;
                    while b < lba + u64::from(n) {
                        match self.read(b, 1).await? {
                            Done::Ok | Done::Medium => b += 1,
                            Done::Failed => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    }
                    lba += step;
                }
            }
        }
        Ok(())
    }

    /// Logs out now, with whatever is in flight: no operation starts on
    /// the session from here on, and new ones wait for the next login.
    pub async fn logout_now(&self) -> Result<(), InitiatorError> {
        let _guard = self.logging_in.lock().await;
        let taken = self.session.borrow_mut().take();
        let Some((_, s)) = taken else {
            return Ok(());
        };
        self.closing_since.set(Some(tokio::time::Instant::now()));
        s.logout().await
    }

    /// Logs out, if a session is up.
    pub async fn logout(&self) -> Result<(), String> {
        let taken = self.session.borrow_mut().take();
        if let Some((_, s)) = taken {
            if let Err(e) = s.logout().await {
                self.tolerate("logout", &e)?;
            }
        }
        Ok(())
    }
}

/// The whole workload of one host: workers until the faults heal, then
/// `final_ops` each, the read-back of the hot blocks, and logout.
pub async fn run(io: Rc<Io>) -> Result<(), String> {
    io.session().await?;
    let mut workers = Vec::new();
    for w in 0..io.params.workers {
        let io = io.clone();
        let seed = io.ctx.seed(&format!("worker{w}"));
        workers.push(tokio::task::spawn_local(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut after_heal = 0;
            while after_heal < io.params.final_ops {
                if io.ctx.world.phase() == Phase::Liveness {
                    after_heal += 1;
                }
                io.random_op(&mut rng).await?;
                let think = io.params.think.as_micros() as u64;
                if think > 0 {
                    let pause = rng.random_range(0..=think);
                    tokio::time::sleep(Duration::from_micros(pause)).await;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for w in workers {
        w.await.map_err(|e| format!("worker: {e}"))??;
    }
    io.verify().await?;
    io.logout().await
}
