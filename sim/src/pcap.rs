//! Writes the simulated TCP traffic as a classic pcap file (Ethernet,
//! IPv4, TCP with real sequence and acknowledgement numbers), so that
//! Wireshark and tshark dissect the iSCSI inside.
//!
//! turmoil moves whole writes between hosts, not TCP segments; the capture
//! rebuilds the segments a real stack would have sent: a three-way
//! handshake when the connection opens, each write cut into segments of at
//! most one MSS, a FIN when a side shuts down. Wireshark's iSCSI heuristic
//! only looks at ports 3260 and 860, which is where the target listens.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Maximum segment size of the synthesised segments.
const MSS: usize = 1448;
/// The capture's link type: Ethernet.
const LINKTYPE_ETHERNET: u32 = 1;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// One TCP connection's state for the capture.
#[derive(Debug, Clone)]
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number of each side (client, server).
    seq: [u32; 2],
}

/// Builds a pcap file frame by frame.
#[derive(Debug)]
pub struct PcapWriter {
    out: Vec<u8>,
    flows: Vec<Flow>,
    /// Microseconds since the Unix epoch of the last frame (frames get
    /// distinct, increasing times even within one simulated millisecond).
    last_us: u64,
    epoch: Duration,
    ip_id: u16,
}

fn mac(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [0x02, 0x00, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(_) => [0x02, 0, 0, 0, 0, 1],
    }
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl PcapWriter {
    /// A capture whose time zero is `epoch` after the Unix epoch.
    pub fn new(epoch: Duration) -> PcapWriter {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        PcapWriter {
            out,
            flows: Vec::new(),
            last_us: 0,
            epoch,
            ip_id: 1,
        }
    }

    fn flow(&mut self, client: SocketAddr, server: SocketAddr) -> usize {
        if let Some(i) = self
            .flows
            .iter()
            .position(|f| f.client == client && f.server == server)
        {
            return i;
        }
        // Initial sequence numbers from the addresses: stable per run.
        let isn = |a: SocketAddr| {
            let h = crate::hash::Fnv64::of(a.to_string().as_bytes());
            (h as u32) & 0x7fff_ffff
        };
        self.flows.push(Flow {
            client,
            server,
            seq: [isn(client), isn(server)],
        });
        self.flows.len() - 1
    }

    /// A connection opened at `at`: SYN, SYN-ACK, ACK.
    pub fn open(&mut self, at: Duration, client: SocketAddr, server: SocketAddr) {
        let i = self.flow(client, server);
        self.segment(at, i, 0, SYN, &[]);
        self.flows[i].seq[0] = self.flows[i].seq[0].wrapping_add(1);
        self.segment(at, i, 1, SYN | ACK, &[]);
        self.flows[i].seq[1] = self.flows[i].seq[1].wrapping_add(1);
        self.segment(at, i, 0, ACK, &[]);
    }

    /// Bytes written by one side at `at`.
    pub fn data(
        &mut self,
        at: Duration,
        client: SocketAddr,
        server: SocketAddr,
        from_client: bool,
        bytes: &[u8],
    ) {
        let i = self.flow(client, server);
        let side = usize::from(!from_client);
        for piece in bytes.chunks(MSS) {
            self.segment(at, i, side, ACK | PSH, piece);
            self.flows[i].seq[side] = self.flows[i].seq[side].wrapping_add(piece.len() as u32);
        }
    }

    /// One side shut its direction down at `at`.
    pub fn fin(&mut self, at: Duration, client: SocketAddr, server: SocketAddr, from_client: bool) {
        let i = self.flow(client, server);
        let side = usize::from(!from_client);
        self.segment(at, i, side, FIN | ACK, &[]);
        self.flows[i].seq[side] = self.flows[i].seq[side].wrapping_add(1);
    }

    fn segment(&mut self, at: Duration, flow: usize, side: usize, flags: u8, payload: &[u8]) {
        let f = self.flows[flow].clone();
        let (src, dst) = if side == 0 {
            (f.client, f.server)
        } else {
            (f.server, f.client)
        };
        let (IpAddr::V4(sip), IpAddr::V4(dip)) = (src.ip(), dst.ip()) else {
            return;
        };
        let seq = f.seq[side];
        let ack = if flags & ACK != 0 { f.seq[1 - side] } else { 0 };
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&src.port().to_be_bytes());
        tcp.extend_from_slice(&dst.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push(5 << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&65_535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let tcp_len = (tcp.len() as u16).to_be_bytes();
        let pseudo = [&sip.octets()[..], &dip.octets()[..], &[0, 6], &tcp_len[..]].concat();
        let sum = checksum(&[&pseudo, &tcp]);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        let total = (20 + tcp.len()) as u16;
        let mut ip = Vec::with_capacity(20);
        ip.push(0x45);
        ip.push(0);
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&self.ip_id.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);
        ip.extend_from_slice(&0x4000u16.to_be_bytes());
        ip.push(64);
        ip.push(6);
        ip.extend_from_slice(&[0, 0]);
        ip.extend_from_slice(&sip.octets());
        ip.extend_from_slice(&dip.octets());
        let sum = checksum(&[&ip]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut frame = Vec::with_capacity(14 + ip.len() + tcp.len());
        frame.extend_from_slice(&mac(dst.ip()));
        frame.extend_from_slice(&mac(src.ip()));
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        let us = ((self.epoch + at).as_micros() as u64).max(self.last_us + 1);
        self.last_us = us;
        self.out
            .extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&frame);
    }

    /// The capture so far.
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_checksum_of_a_known_header() {
        // The example of RFC 1071 / Wikipedia's IPv4 header checksum.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&[&header]), 0xb861);
    }

    #[test]
    fn segments_carry_consecutive_sequence_numbers() {
        let c: SocketAddr = "192.168.0.2:49152".parse().unwrap();
        let s: SocketAddr = "192.168.0.1:3260".parse().unwrap();
        let mut p = PcapWriter::new(Duration::from_secs(1_700_000_000));
        p.open(Duration::ZERO, c, s);
        p.data(Duration::from_millis(1), c, s, true, &[0u8; 3000]);
        // 24-byte header, then 3 handshake frames of 54 bytes + 16 of
        // record header, then 3 data segments (1448, 1448, 104).
        let frames = 3 * (16 + 54) + 3 * (16 + 54) + 3000;
        assert_eq!(p.bytes().len(), 24 + frames);
        let seq_at = |off: usize| u32::from_be_bytes(p.bytes()[off..off + 4].try_into().unwrap());
        let first_data = 24 + 3 * 70;
        let second = first_data + 16 + 54 + 1448;
        let tcp_seq = 16 + 14 + 20 + 4;
        assert_eq!(
            seq_at(second + tcp_seq),
            seq_at(first_data + tcp_seq).wrapping_add(1448)
        );
    }
}
