//! A blocking iSCSI client that sends exactly the PDUs a test scripts:
//! hostile and out-of-order traffic no real initiator would send. It
//! drives the simulation's sans-IO [`Script`] (the engine's codec and
//! login state machine) over a `std` socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use iscsi_engine::pdu::{Isid, Pdu};
use iscsi_engine::text::Preferences;
use iscsi_sim::scripted::{INQUIRY_CDB, Reply, Script};
use rand::SeedableRng;

/// A blocking iSCSI client that sends exactly the PDUs a test scripts.
pub struct Scripted {
    stream: TcpStream,
    buf: BytesMut,
    pub script: Script,
}

impl Scripted {
    pub fn connect(addr: SocketAddr) -> Scripted {
        let stream = TcpStream::connect(addr).expect("connect to target");
        stream.set_nodelay(true).ok();
        Scripted {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
            script: Script::default(),
        }
    }

    pub fn send(&mut self, pdu: &Pdu) {
        let out = self.script.encode(pdu);
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
            match self.script.decoder.decode(&mut self.buf) {
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
    pub fn login(&mut self, initiator: &str, target: &str, isid: u8) -> Result<(), String> {
        let isid = Isid([0x80, 0, 0, 0, 0, isid]);
        let mut login = Script::login(initiator, target, isid, Preferences::default());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let first = login.start();
        self.send(&first);
        loop {
            let pdu = self
                .recv(Duration::from_secs(5))?
                .ok_or("target closed during login")?;
            match self.script.login_step(&mut login, &pdu, &mut rng)? {
                Some(next) => self.send(&next),
                None => return Ok(()),
            }
        }
    }

    /// Sends a read-type SCSI command and collects its Data-In and status.
    pub fn read_command(&mut self, lun: u16, cdb: &[u8], expected: u32) -> Result<Reply, String> {
        let (cmd, mut collector) = self.script.read_command(lun, cdb, expected);
        self.send(&cmd);
        loop {
            let pdu = self
                .recv(Duration::from_secs(5))?
                .ok_or("target closed the connection")?;
            if let Some(reply) = collector.absorb(&mut self.script, pdu) {
                return Ok(reply);
            }
        }
    }

    /// INQUIRY on `lun`: the standard data.
    pub fn inquiry(&mut self, lun: u16) -> Result<Bytes, String> {
        let reply = self.read_command(lun, &INQUIRY_CDB, 96)?;
        if reply.status != 0 {
            return Err(format!("INQUIRY status {:#x}", reply.status));
        }
        Ok(reply.data)
    }
}
