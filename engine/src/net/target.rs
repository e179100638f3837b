//! The target's async driver: accepts connections on a [`Listener`], moves
//! bytes between each socket and the sans-IO [`Endpoint`], executes
//! commands on a [`Backend`], and fires the endpoint's timers.
//!
//! Per connection a reader task feeds received bytes to the endpoint and a
//! writer task writes what the endpoint queues; both are short loops. The
//! endpoint and the backend sit behind one lock, taken for the time it
//! takes to process one read's worth of PDUs.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::{Listener, Stream};
use crate::pdu::{Encoder, Lun};
use crate::scsi::{CommandRequest, CommandResult, Device, Nexus, TaskManagement};
use crate::target::{ConnId, Endpoint, Event, Execute};

/// Where commands are executed: the devices of every target node.
pub trait Backend: Send + 'static {
    fn execute(&mut self, target: &str, lun: Lun, request: CommandRequest<'_>) -> CommandResult;
    fn task_management(&mut self, target: &str, nexus: &Nexus, lun: Lun, function: TaskManagement);
    fn nexus_lost(&mut self, target: &str, nexus: &Nexus);
    /// What of this command goes on after [`Backend::execute`] returned:
    /// work that finishes later (a SANITIZE), and how long its response
    /// waits (that work, or a simulated disk's latency).
    fn background(&mut self, _execute: &Execute, _result: &CommandResult) -> Background {
        Background::default()
    }
    /// The background work of this command is done.
    fn finish_background(&mut self, _execute: &Execute) {}
}

/// Timing of a command's work beyond [`Backend::execute`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Background {
    /// Call [`Backend::finish_background`] after this long.
    pub finish_after: Option<Duration>,
    /// Send the response after this long (at once when `None`).
    pub respond_after: Option<Duration>,
}

/// How fast a SANITIZE OVERWRITE goes over the medium.
const SANITIZE_OVERWRITE_BYTES_PER_SEC: f64 = 128.0 * 1024.0 * 1024.0;
/// How long a BLOCK ERASE or CRYPTO ERASE takes.
const SANITIZE_ERASE_TIME: Duration = Duration::from_millis(100);

/// The plain backend: one [`Device`] per target node name. SANITIZE runs
/// in the background for as long as the medium would take (SBC-4
/// "SANITIZE command"): OVERWRITE at 128 MiB/s, the erases in 100 ms.
#[derive(Default)]
pub struct Devices {
    pub targets: BTreeMap<String, Device>,
}

impl Devices {
    pub fn new(mut targets: BTreeMap<String, Device>) -> Devices {
        for device in targets.values_mut() {
            device.set_background_sanitize(true);
        }
        Devices { targets }
    }
}

impl Backend for Devices {
    fn execute(&mut self, target: &str, lun: Lun, request: CommandRequest<'_>) -> CommandResult {
        match self.targets.get_mut(target) {
            Some(device) => device.execute(lun, request),
            None => unreachable_target(target),
        }
    }

    fn task_management(&mut self, target: &str, nexus: &Nexus, lun: Lun, function: TaskManagement) {
        if let Some(device) = self.targets.get_mut(target) {
            device.task_management(nexus, lun, function);
        }
    }

    fn nexus_lost(&mut self, target: &str, nexus: &Nexus) {
        if let Some(device) = self.targets.get_mut(target) {
            device.nexus_lost(nexus);
        }
    }

    fn background(&mut self, x: &Execute, result: &CommandResult) -> Background {
        const SANITIZE: u8 = 0x48;
        let (Some(device), Some(lun)) = (self.targets.get(&*x.target), x.lun.index()) else {
            return Background::default();
        };
        if x.cdb.opcode() != SANITIZE
            || result.status != crate::scsi::status::GOOD
            || !device.sanitize_in_progress(lun)
        {
            return Background::default();
        }
        let overwrite = x.cdb.base[1] & 0x1f == 0x01;
        let time = if overwrite {
            let bytes = device.luns().get(&lun).map_or(0, |lu| lu.store().len());
            Duration::from_secs_f64(bytes as f64 / SANITIZE_OVERWRITE_BYTES_PER_SEC)
                .max(SANITIZE_ERASE_TIME)
        } else {
            SANITIZE_ERASE_TIME
        };
        let immediate = x.cdb.base[1] & 0x80 != 0;
        Background {
            finish_after: Some(time),
            respond_after: (!immediate).then_some(time),
        }
    }

    fn finish_background(&mut self, x: &Execute) {
        if let (Some(device), Some(lun)) = (self.targets.get_mut(&*x.target), x.lun.index()) {
            device.complete_sanitize(lun);
        }
    }
}

/// A command for a target the endpoint knows but the backend does not:
/// answered as a target failure rather than a panic.
fn unreachable_target(target: &str) -> CommandResult {
    warn!(target, "no device for target");
    let sense = crate::scsi::sense::Sense::new(
        crate::scsi::sense::key::HARDWARE_ERROR,
        crate::scsi::sense::Asc::INTERNAL_TARGET_FAILURE,
    );
    CommandResult {
        status: crate::scsi::status::CHECK_CONDITION,
        sense: Some(sense.to_fixed()),
        data_in: bytes::Bytes::new(),
        data_out_wanted: None,
    }
}

/// Limits of the driver itself.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Bytes asked of the socket per read.
    pub read_size: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 256,
            read_size: 256 * 1024,
        }
    }
}

struct Core<B> {
    endpoint: Endpoint,
    backend: B,
}

/// A running target: the endpoint, its backend, and the wake-ups of each
/// connection's writer.
pub struct TargetServer<B: Backend> {
    core: Mutex<Core<B>>,
    writers: Mutex<BTreeMap<ConnId, Arc<Notify>>>,
    timer: Notify,
    changed: Notify,
    options: ServerOptions,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<B: Backend> TargetServer<B> {
    pub fn new(endpoint: Endpoint, backend: B, options: ServerOptions) -> Arc<Self> {
        Arc::new(TargetServer {
            core: Mutex::new(Core { endpoint, backend }),
            writers: Mutex::new(BTreeMap::new()),
            timer: Notify::new(),
            changed: Notify::new(),
            options,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Core<B>> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the backend (for inspection by tests and tools).
    pub fn with_backend<R>(&self, f: impl FnOnce(&mut B) -> R) -> R {
        f(&mut self.lock().backend)
    }

    pub fn connection_count(&self) -> usize {
        self.lock().endpoint.connection_count()
    }

    pub fn session_count(&self) -> usize {
        self.lock().endpoint.session_count()
    }

    /// Serves connections from `listener` until `shutdown` resolves, then
    /// asks every session to log out and waits (bounded by the endpoint's
    /// logout timeout) for them to go.
    pub async fn serve<L: Listener>(
        self: Arc<Self>,
        mut listener: L,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let local = listener.local_addr()?;
        let timer = tokio::spawn(self.clone().run_timer());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.clone().start_connection(stream, peer, local),
                    Err(e) => warn!(%e, "accept failed"),
                },
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        info!("shutting down: asking sessions to log out");
        let logout_timeout = {
            let mut core = self.lock();
            core.endpoint.shutdown(now());
            self.run_events(&mut core);
            core.endpoint.config().logout_timeout
        };
        self.timer.notify_one();
        let give_up = tokio::time::Instant::now() + logout_timeout + Duration::from_secs(1);
        while !self.lock().endpoint.is_idle() {
            if tokio::time::timeout_at(give_up, self.changed.notified())
                .await
                .is_err()
            {
                warn!("connections still open after the logout timeout");
                break;
            }
        }
        timer.abort();
        Ok(())
    }

    fn start_connection<S: Stream>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        local: SocketAddr,
    ) {
        let id = {
            let mut core = self.lock();
            if core.endpoint.connection_count() >= self.options.max_connections {
                warn!(%peer, "too many connections: refused");
                return;
            }
            core.endpoint.accept(peer, local, now())
        };
        let notify = Arc::new(Notify::new());
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, notify.clone());
        self.timer.notify_one();
        let (reader, writer) = tokio::io::split(stream);
        let read_task = tokio::spawn(self.clone().read_loop(id, reader));
        tokio::spawn(self.write_loop(id, writer, notify, read_task));
    }

    async fn read_loop<R: tokio::io::AsyncRead + Unpin>(
        self: Arc<Self>,
        id: ConnId,
        mut reader: R,
    ) {
        let mut buf = BytesMut::with_capacity(self.options.read_size);
        loop {
            if buf.capacity() - buf.len() < self.options.read_size / 4 {
                buf.reserve(self.options.read_size);
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {
                    let mut core = self.lock();
                    core.endpoint.handle_input(id, &mut buf, now());
                    self.run_events(&mut core);
                    if core.endpoint.is_closing(id) {
                        break;
                    }
                }
                Err(e) => {
                    debug!(%id, %e, "read failed");
                    break;
                }
            }
        }
        let mut core = self.lock();
        if !core.endpoint.is_closing(id) {
            core.endpoint.handle_closed(id, now());
        }
        self.run_events(&mut core);
        drop(core);
        self.wake_writer(id);
    }

    async fn write_loop<W: tokio::io::AsyncWrite + Unpin>(
        self: Arc<Self>,
        id: ConnId,
        writer: W,
        notify: Arc<Notify>,
        read_task: tokio::task::JoinHandle<()>,
    ) {
        let mut writer = BufWriter::with_capacity(64 * 1024, writer);
        let mut header = BytesMut::with_capacity(1024);
        let mut batch = Vec::with_capacity(64);
        let result: io::Result<()> = async {
            loop {
                let closing = {
                    let mut core = self.lock();
                    while let Some(t) = core.endpoint.poll_transmit(id) {
                        batch.push(t);
                    }
                    core.endpoint.is_closing(id)
                };
                for t in batch.drain(..) {
                    let encoder = Encoder { digests: t.digests };
                    header.clear();
                    encoder.encode_header(&t.pdu, &mut header);
                    writer.write_all(&header).await?;
                    writer.write_all(&t.pdu.data).await?;
                    writer
                        .write_all(encoder.trailer(&t.pdu.data).as_ref())
                        .await?;
                }
                writer.flush().await?;
                if closing {
                    return Ok(());
                }
                notify.notified().await;
            }
        }
        .await;
        if let Err(e) = result {
            debug!(%id, %e, "write failed");
        }
        let _ = writer.shutdown().await;
        read_task.abort();
        {
            let mut core = self.lock();
            core.endpoint.handle_closed(id, now());
            self.run_events(&mut core);
        }
        self.writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.changed.notify_waiters();
    }

    async fn run_timer(self: Arc<Self>) {
        loop {
            let deadline = self.lock().endpoint.poll_timeout();
            match deadline {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep_until(at) => {
                            let mut core = self.lock();
                            core.endpoint.handle_timeout(now());
                            self.run_events(&mut core);
                        }
                        () = self.timer.notified() => {}
                    }
                }
                None => self.timer.notified().await,
            }
        }
    }

    /// Finishes a command's background work and sends a held response,
    /// each at its time.
    async fn run_background(
        self: Arc<Self>,
        x: Execute,
        background: Background,
        held: Option<CommandResult>,
    ) {
        let start = tokio::time::Instant::now();
        // Finishing comes first when both are due at once.
        let mut steps = [
            (background.finish_after, true),
            (background.respond_after, false),
        ];
        steps.sort_by_key(|&(at, finish)| (at, !finish));
        let mut held = held;
        for (at, finish) in steps {
            let Some(at) = at else { continue };
            tokio::time::sleep_until(start + at).await;
            let mut core = self.lock();
            if finish {
                core.backend.finish_background(&x);
            } else if let Some(result) = held.take() {
                core.endpoint.complete(x.task, result, now());
            }
            self.run_events(&mut core);
        }
    }

    /// The planted bug `ack-before-write`: the WRITE already answered GOOD
    /// reaches the medium only a little later.
    #[cfg(feature = "planted-bugs")]
    async fn planted_late_write(self: Arc<Self>, x: Execute) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut core = self.lock();
        let _ = x.with_request(|request| core.backend.execute(&x.target, x.lun, request));
    }

    fn wake_writer(&self, id: ConnId) {
        if let Some(n) = self
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            n.notify_one();
        }
    }

    /// Does what the endpoint asks: executes commands (at once, or after
    /// the backend's delay), applies task management, wakes writers.
    fn run_events(self: &Arc<Self>, core: &mut Core<B>) {
        while let Some(event) = core.endpoint.poll_event() {
            match event {
                Event::Execute(x) => {
                    #[cfg(feature = "planted-bugs")]
                    if crate::planted::active(
                        core.endpoint.config().planted,
                        crate::planted::PlantedBug::AckBeforeWrite,
                    ) && matches!(x.cdb.opcode(), 0x0a | 0x2a | 0xaa | 0x8a)
                    {
                        let good = CommandResult::good(bytes::Bytes::new());
                        core.endpoint.complete(x.task, good, now());
                        tokio::spawn(self.clone().planted_late_write(x));
                        continue;
                    }
                    let result =
                        x.with_request(|request| core.backend.execute(&x.target, x.lun, request));
                    let background = core.backend.background(&x, &result);
                    if background == Background::default() {
                        core.endpoint.complete(x.task, result, now());
                        continue;
                    }
                    let held = if background.respond_after.is_none() {
                        core.endpoint.complete(x.task, result, now());
                        None
                    } else {
                        Some(result)
                    };
                    tokio::spawn(self.clone().run_background(x, background, held));
                }
                Event::TaskManagement {
                    target,
                    nexus,
                    lun,
                    function,
                } => core.backend.task_management(&target, &nexus, lun, function),
                Event::NexusLost { target, nexus } => core.backend.nexus_lost(&target, &nexus),
                Event::Transmit(id) | Event::Close(id) => self.wake_writer(id),
            }
        }
        self.timer.notify_one();
    }
}
