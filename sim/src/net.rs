//! turmoil's simulated TCP as an engine [`Network`], with the failures a
//! real network gives and turmoil does not.
//!
//! turmoil drops the SYN of a connect across a partition and answers
//! `ConnectionRefused`, and it silently stalls an established stream whose
//! segments were dropped. A real initiator behind a firewall that rejects
//! (or a router without a route) gets `EHOSTUNREACH`, "No route to host",
//! on connect; one behind a black hole waits for its SYN retries to time
//! out. [`Routes`] holds which direction between which hosts is down and
//! how, and [`SimNetwork::connect`] answers accordingly, with the same
//! `io::ErrorKind` the OS would give, so the engines handle exactly the
//! error they would meet in production.
//!
//! Every stream is wrapped in a [`TapStream`] that hands the bytes each
//! side writes to [`crate::wire::Wire`], which decodes them into trace
//! lines, checks protocol invariants and keeps them for `--pcap`.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use iscsi_engine::net::{Listener, Network};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::{ConnKey, Wire};

/// How connects fail while a route is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteFault {
    /// An ICMP host-unreachable comes back: connect fails with
    /// `HostUnreachable` ("No route to host", errno 113) after a round trip.
    Unreachable,
    /// Nothing comes back: connect fails with `TimedOut` after the SYN
    /// retries (Linux: about 127 s), unless the caller gives up first.
    Blackhole,
}

/// How long a rejected connect takes to fail.
pub const UNREACHABLE_DELAY: Duration = Duration::from_millis(3);
/// How long a black-holed connect takes to time out (tcp_syn_retries=6).
pub const BLACKHOLE_TIMEOUT: Duration = Duration::from_secs(127);

/// Which directed routes between hosts are down.
#[derive(Debug, Default)]
pub struct Routes {
    down: Mutex<BTreeMap<(String, String), RouteFault>>,
}

impl Routes {
    pub fn new() -> Arc<Routes> {
        Arc::new(Routes::default())
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), RouteFault>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_down(&self, from: &str, to: &str, fault: RouteFault) {
        self.map().insert((from.to_string(), to.to_string()), fault);
    }

    pub fn set_up(&self, from: &str, to: &str) {
        self.map().remove(&(from.to_string(), to.to_string()));
    }

    pub fn clear(&self) {
        self.map().clear();
    }

    /// How a connect from `from` to `to` fails, if the route is down.
    pub fn fault(&self, from: &str, to: &str) -> Option<RouteFault> {
        self.map().get(&(from.to_string(), to.to_string())).copied()
    }
}

/// The network of one simulated host.
#[derive(Clone)]
pub struct SimNetwork {
    host: Arc<str>,
    routes: Arc<Routes>,
    wire: Arc<Wire>,
}

impl SimNetwork {
    pub fn new(host: &str, routes: Arc<Routes>, wire: Arc<Wire>) -> SimNetwork {
        SimNetwork {
            host: host.into(),
            routes,
            wire,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

fn host_of(addr: SocketAddr) -> String {
    turmoil::reverse_lookup(addr.ip()).unwrap_or_else(|| addr.ip().to_string())
}

impl Network for SimNetwork {
    type Stream = TapStream;
    type Listener = SimListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<SimListener> {
        let inner = turmoil::net::TcpListener::bind(addr).await?;
        Ok(SimListener {
            inner,
            host: self.host.clone(),
            wire: self.wire.clone(),
        })
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TapStream> {
        let peer = host_of(addr);
        match self.routes.fault(&self.host, &peer) {
            Some(RouteFault::Unreachable) => {
                tokio::time::sleep(UNREACHABLE_DELAY).await;
                return Err(io::Error::new(
                    io::ErrorKind::HostUnreachable,
                    "No route to host",
                ));
            }
            Some(RouteFault::Blackhole) => {
                tokio::time::sleep(BLACKHOLE_TIMEOUT).await;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Connection timed out",
                ));
            }
            None => {}
        }
        let inner = turmoil::net::TcpStream::connect(addr).await?;
        let key = ConnKey {
            client: inner.local_addr()?,
            server: inner.peer_addr()?,
        };
        self.wire.opened(key, &self.host);
        Ok(TapStream {
            inner,
            wire: self.wire.clone(),
            key,
            from_client: true,
            host: self.host.clone(),
        })
    }
}

/// A listening socket of a simulated host.
pub struct SimListener {
    inner: turmoil::net::TcpListener,
    host: Arc<str>,
    wire: Arc<Wire>,
}

impl Listener for SimListener {
    type Stream = TapStream;

    async fn accept(&mut self) -> io::Result<(TapStream, SocketAddr)> {
        let (inner, peer) = self.inner.accept().await?;
        let key = ConnKey {
            client: peer,
            server: inner.local_addr()?,
        };
        self.wire.opened(key, &host_of(peer));
        let stream = TapStream {
            inner,
            wire: self.wire.clone(),
            key,
            from_client: false,
            host: self.host.clone(),
        };
        Ok((stream, peer))
    }

    /// The host's own address rather than the wildcard turmoil insists
    /// on binding: as if the target listened on `192.168.0.1:3260`. (The
    /// target reports this address in SendTargets, RFC 7143 Appendix C,
    /// and `0.0.0.0` is no address to connect to.)
    fn local_addr(&self) -> io::Result<SocketAddr> {
        let bound = self.inner.local_addr()?;
        if bound.ip().is_unspecified() {
            Ok(SocketAddr::new(turmoil::lookup(&*self.host), bound.port()))
        } else {
            Ok(bound)
        }
    }
}

/// A simulated TCP stream whose written bytes are recorded.
pub struct TapStream {
    inner: turmoil::net::TcpStream,
    wire: Arc<Wire>,
    key: ConnKey,
    from_client: bool,
    host: Arc<str>,
}

impl AsyncRead for TapStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TapStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            this.wire
                .sent(this.key, this.from_client, &this.host, &buf[..*n]);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = &result {
            this.wire.closed(this.key, this.from_client, &this.host);
        }
        result
    }
}
