//! A TCP proxy between the guest (QEMU's `guestfwd`) and the target under
//! test, so the harness can cut live connections on command — "the network
//! dropped the connection" for any target, ours or another.
//!
//! Each accepted connection dials the current upstream; if that fails (the
//! target is down) the guest's connection is closed at once, as a refused
//! connect would be. Cuts are either immediate ([`Proxy::cut_all`]) or armed
//! to fire once a number of bytes has gone upstream ([`Proxy::arm_cut`]), to
//! land in the middle of a large write.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::error::{IoContext, Result};

/// Counters a report can print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from the guest.
    pub accepted: u64,
    /// Of those, how many reached the target.
    pub forwarded: u64,
    /// Connections the proxy cut.
    pub cut: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    upstream: Mutex<Option<SocketAddr>>,
    /// Live (guest side, target side) pairs.
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    /// Cut everything once this many more bytes went upstream (0 = unarmed).
    armed: AtomicU64,
    accepted: AtomicU64,
    forwarded: AtomicU64,
    cut: AtomicU64,
}

/// A running proxy on a loopback port; stops (and closes everything) on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").ctx(|| "bind the proxy".into())?;
        listener
            .set_nonblocking(true)
            .ctx(|| "set the proxy non-blocking".into())?;
        let addr = listener.local_addr().ctx(|| "proxy address".into())?;
        let shared = Arc::new(Shared::default());
        *shared.upstream.lock().unwrap_or_else(|e| e.into_inner()) = Some(upstream);
        let s = shared.clone();
        let acceptor = thread::spawn(move || accept_loop(listener, s));
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where the guest's forward must point.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Points new connections at another upstream (a restarted target).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(upstream);
    }

    /// Closes every live connection now; returns how many.
    pub fn cut_all(&self) -> u64 {
        cut_all(&self.shared)
    }

    /// Cuts every live connection once `bytes` more bytes have gone upstream.
    pub fn arm_cut(&self, bytes: u64) {
        self.shared.armed.store(bytes.max(1), Ordering::SeqCst);
    }

    /// Whether an armed cut has not fired yet.
    pub fn cut_pending(&self) -> bool {
        self.shared.armed.load(Ordering::SeqCst) != 0
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.shared.accepted.load(Ordering::SeqCst),
            forwarded: self.shared.forwarded.load(Ordering::SeqCst),
            cut: self.shared.cut.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        cut_all(&self.shared);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn cut_all(shared: &Shared) -> u64 {
    let live = std::mem::take(&mut *shared.live.lock().unwrap_or_else(|e| e.into_inner()));
    let n = live.len() as u64;
    // Count first: whoever sees the connection close may read the stats.
    shared.cut.fetch_add(n, Ordering::SeqCst);
    for (_, g, t) in live {
        let _ = g.shutdown(Shutdown::Both);
        let _ = t.shutdown(Shutdown::Both);
    }
    n
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let guest = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = guest.set_nonblocking(false);
        let upstream = *shared.upstream.lock().unwrap_or_else(|e| e.into_inner());
        let target =
            upstream.and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).ok());
        let Some(target) = target else {
            // Target down: the guest sees its connection closed.
            let _ = guest.shutdown(Shutdown::Both);
            continue;
        };
        shared.forwarded.fetch_add(1, Ordering::SeqCst);
        let _ = guest.set_nodelay(true);
        let _ = target.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let (Ok(g2), Ok(t2), Ok(g3), Ok(t3)) = (
            guest.try_clone(),
            target.try_clone(),
            guest.try_clone(),
            target.try_clone(),
        ) else {
            continue;
        };
        shared
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, g3, t3));
        let up = shared.clone();
        thread::spawn(move || pump(guest, target, Some(up), id));
        let down = shared.clone();
        thread::spawn(move || {
            pump(t2, g2, None, id);
            forget(&down, id);
        });
    }
}

/// Copies `from` → `to` until either side closes; upstream pumps count bytes
/// for an armed cut.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<Shared>>, id: u64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(shared) = &count {
            let armed = shared.armed.load(Ordering::SeqCst);
            if armed != 0 {
                if armed <= n as u64 {
                    shared.armed.store(0, Ordering::SeqCst);
                    cut_all(shared);
                    break;
                }
                shared.armed.fetch_sub(n as u64, Ordering::SeqCst);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    if let Some(shared) = &count {
        forget(shared, id);
    }
}

fn forget(shared: &Shared, id: u64) {
    shared
        .live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _, _)| *i != id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = thread::spawn(move || {
            for s in l.incoming().take(2) {
                let mut s = s.unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, h)
    }

    #[test]
    fn forwards_and_cuts_after_armed_bytes() {
        let (addr, _h) = echo_server();
        let proxy = Proxy::start(addr).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");

        proxy.arm_cut(10);
        let _ = c.write_all(&[7u8; 64]);
        // The connection is closed: reads end (EOF or reset) instead of echoing.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.len() < 64);
        assert_eq!(proxy.stats().cut, 1);
        assert!(!proxy.cut_pending());

        // A new connection works again.
        let mut c2 = TcpStream::connect(proxy.addr()).unwrap();
        c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c2.write_all(b"pong").unwrap();
        c2.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        assert_eq!(proxy.stats().forwarded, 2);
    }

    #[test]
    fn closes_guest_connections_while_target_is_down() {
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = Proxy::start(dead).unwrap();
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(proxy.stats().forwarded, 0);
    }
}
