//! The run's trace: one canonical line per event, and its hash.
//!
//! A line is `TIME HOST WHAT...`: simulated time (seconds, millisecond
//! resolution: turmoil advances time in ticks), the host the event happened
//! on, then the event — a PDU sent (decoded from the simulated TCP streams
//! by [`crate::wire`]), an engine state change (the engine's `INFO`+
//! `tracing` events, collected by [`TraceLayer`]), a fault the world
//! applied, or a workload operation. The hash of all lines (FNV-1a, see
//! [`crate::hash`]) names the run: same seed, same hash, on any machine.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::hash::Fnv64;

/// Lines kept for a failure report even when the full trace is not.
const TAIL: usize = 60;

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    hasher: Fnv64,
    count: u64,
    keep: Option<Vec<String>>,
    tail: VecDeque<String>,
}

impl Trace {
    /// A trace that keeps every line when `keep` (for `--trace` and the
    /// golden traces), else only the hash and the last lines.
    pub fn new(keep: bool) -> Trace {
        Trace {
            hasher: Fnv64::new(),
            count: 0,
            keep: keep.then(Vec::new),
            tail: VecDeque::with_capacity(TAIL),
        }
    }

    pub fn push(&mut self, line: String) {
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        self.count += 1;
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        if let Some(keep) = &mut self.keep {
            keep.push(line);
        }
    }

    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every line, when the trace keeps them.
    pub fn lines(&self) -> Option<&[String]> {
        self.keep.as_deref()
    }

    /// The last lines.
    pub fn tail(&self) -> impl Iterator<Item = &String> {
        self.tail.iter()
    }
}

/// Formats simulated time as `SSSS.mmm`.
pub fn stamp(t: Duration) -> String {
    format!("{:4}.{:03}", t.as_secs(), t.subsec_millis())
}

struct LogInner {
    trace: Mutex<Trace>,
    failures: Mutex<Vec<String>>,
    /// Simulated time in microseconds, set by the world before each step.
    clock: AtomicU64,
}

/// The shared log of one run: the trace and the failures found. Cheap to
/// clone; every part of the world (network taps, tracing layer, workloads,
/// the fault driver) writes here.
#[derive(Clone)]
pub struct Log(Arc<LogInner>);

impl Log {
    pub fn new(keep_trace: bool) -> Log {
        Log(Arc::new(LogInner {
            trace: Mutex::new(Trace::new(keep_trace)),
            failures: Mutex::new(Vec::new()),
            clock: AtomicU64::new(0),
        }))
    }

    /// Sets the simulated time stamped on the lines that follow.
    pub fn set_clock(&self, t: Duration) {
        self.0.clock.store(t.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn now(&self) -> Duration {
        Duration::from_micros(self.0.clock.load(Ordering::Relaxed))
    }

    pub fn trace(&self) -> MutexGuard<'_, Trace> {
        self.0.trace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `TIME HOST what` to the trace.
    pub fn line(&self, host: &str, what: impl std::fmt::Display) {
        let line = format!("{} {host} {what}", stamp(self.now()));
        self.trace().push(line);
    }

    /// Records a failure (a broken invariant, a wrong result, a workload
    /// that could not finish); the run fails.
    pub fn fail(&self, host: &str, what: impl std::fmt::Display) {
        let what = what.to_string();
        self.line(host, format_args!("FAIL {what}"));
        let mut failures = self.0.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < 32 {
            failures.push(format!("{} {host}: {what}", stamp(self.now())));
        }
    }

    pub fn failed(&self) -> bool {
        !self
            .0
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub fn failures(&self) -> Vec<String> {
        self.0
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The name of the turmoil host a span belongs to.
struct NodeName(String);

/// A `tracing` layer that turns the engine's `INFO`, `WARN` and `ERROR`
/// events into trace lines, naming the turmoil host (from turmoil's `node`
/// span) they happened on.
pub struct TraceLayer {
    log: Log,
}

impl TraceLayer {
    pub fn new(log: Log) -> TraceLayer {
        TraceLayer { log }
    }

    fn wanted(metadata: &Metadata<'_>) -> bool {
        if metadata.is_span() {
            return metadata.name() == "node";
        }
        *metadata.level() <= Level::INFO && metadata.target().starts_with("iscsi_engine")
    }
}

/// Collects an event's message and fields as `message k=v ...`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// Takes the `name` field of turmoil's `node` span.
struct NameVisitor(Option<String>);

impl Visit for NameVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "name" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::wanted(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        Self::wanted(metadata)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        let mut visitor = NameVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(name), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(NodeName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let host = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<NodeName>().map(|n| n.0.clone()))
            })
            .unwrap_or_else(|| "-".to_string());
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            _ => "info",
        };
        self.log.line(
            &host,
            format_args!("{level} {}{}", fields.message, fields.rest),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_line_in_order() {
        let mut a = Trace::new(false);
        a.push("x".into());
        a.push("y".into());
        let mut b = Trace::new(true);
        b.push("y".into());
        b.push("x".into());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(b.lines().unwrap().len(), 2);
        assert!(a.lines().is_none());
    }

    #[test]
    fn stamps_are_fixed_width() {
        assert_eq!(stamp(Duration::from_millis(12_345)), "  12.345");
    }
}
