//! What a target endpoint serves: target nodes, their LUNs, access control,
//! authentication, negotiation preferences and timers.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::login::target::{AuthPolicy, TargetNode};
use crate::text::Preferences;

/// One entry of a target node's access list (what `tgtadm --op bind -I`
/// takes): everyone, one initiator name, or a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acl {
    All,
    /// An initiator name (compared case-insensitively, RFC 3722).
    Initiator(String),
    /// An address prefix such as `192.168.0.0/16` or `::1/128`.
    Network(IpNet),
}

impl Acl {
    pub fn allows(&self, initiator: &str, peer: SocketAddr) -> bool {
        match self {
            Acl::All => true,
            Acl::Initiator(name) => name.eq_ignore_ascii_case(initiator),
            Acl::Network(net) => net.contains(peer.ip()),
        }
    }
}

impl FromStr for Acl {
    type Err = String;

    /// `ALL`, a CIDR (`10.0.0.0/8`), a bare address, or an iSCSI name.
    fn from_str(s: &str) -> Result<Acl, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Acl::All);
        }
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Acl::Network(net));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("iqn.") || lower.starts_with("eui.") || lower.starts_with("naa.") {
            return Ok(Acl::Initiator(s.to_string()));
        }
        Err(format!(
            "{s:?} is neither ALL, an address or CIDR, nor an iSCSI name (iqn./eui./naa.)"
        ))
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<IpNet, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(format!("bad prefix length in {s:?}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// One target node: its name and authentication, the LUN numbers it
/// exposes, and who may log in.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub node: TargetNode,
    pub luns: Vec<u16>,
    /// Empty: nobody may log in (as tgt before `--op bind`).
    pub acl: Vec<Acl>,
}

/// Everything a target endpoint needs to know.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub targets: Vec<TargetConfig>,
    /// Authentication for discovery sessions.
    pub discovery_auth: AuthPolicy,
    /// What the target offers and accepts in negotiation.
    pub preferences: Preferences,
    /// Commands a session may have outstanding (the CmdSN window).
    pub queue_depth: u32,
    /// Ping a connection with NOP-In after this long without input.
    pub nop_in_interval: Option<Duration>,
    /// Drop a connection whose ping is not answered within this time.
    pub nop_in_timeout: Duration,
    /// Drop a connection that has not completed login within this time.
    pub login_timeout: Duration,
    /// After an Async logout request, drop connections that have not
    /// logged out within this time.
    pub logout_timeout: Duration,
    /// The largest Expected Data Transfer Length accepted for a command;
    /// bounds the memory one command can hold.
    pub max_transfer_length: u32,
    /// Portal addresses reported by SendTargets (`host:port`). Empty: the
    /// address the initiator connected to.
    pub portals: Vec<String>,
    /// A planted bug to switch on (simulation only; without the
    /// `planted-bugs` feature this does nothing).
    pub planted: Option<crate::planted::PlantedBug>,
}

impl EndpointConfig {
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets
            .iter()
            .find(|t| t.node.name.eq_ignore_ascii_case(name))
    }
}

/// The target's default negotiation preferences: digests allowed but not
/// required, large bursts, immediate data and unsolicited data allowed.
pub fn default_preferences() -> Preferences {
    Preferences {
        header_digest: vec!["None".into(), "CRC32C".into()],
        data_digest: vec!["None".into(), "CRC32C".into()],
        max_connections: 1,
        initial_r2t: false,
        immediate_data: true,
        max_recv_data_segment_length: 262_144,
        max_burst_length: 1_048_576,
        first_burst_length: 262_144,
        default_time2wait: 2,
        default_time2retain: 20,
        max_outstanding_r2t: 16,
        data_pdu_in_order: true,
        data_sequence_in_order: true,
        error_recovery_level: 0,
        ..Preferences::default()
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            targets: Vec::new(),
            discovery_auth: AuthPolicy::default(),
            preferences: default_preferences(),
            queue_depth: 128,
            nop_in_interval: Some(Duration::from_secs(30)),
            nop_in_timeout: Duration::from_secs(30),
            login_timeout: Duration::from_secs(30),
            logout_timeout: Duration::from_secs(10),
            max_transfer_length: 64 << 20,
            portals: Vec::new(),
            planted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_parsing_and_matching() {
        let peer: SocketAddr = "192.168.4.7:5000".parse().unwrap();
        assert!("ALL".parse::<Acl>().unwrap().allows("iqn.x", peer));
        assert!(
            "192.168.0.0/16"
                .parse::<Acl>()
                .unwrap()
                .allows("iqn.x", peer)
        );
        assert!(!"10.0.0.0/8".parse::<Acl>().unwrap().allows("iqn.x", peer));
        assert!("192.168.4.7".parse::<Acl>().unwrap().allows("iqn.x", peer));
        assert!(
            "iqn.2026-11.a:b"
                .parse::<Acl>()
                .unwrap()
                .allows("IQN.2026-11.A:B", peer)
        );
        assert!(
            !"iqn.2026-11.a:b"
                .parse::<Acl>()
                .unwrap()
                .allows("iqn.2026-11.a:c", peer)
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Acl>()
                .unwrap()
                .allows("x", "[::ffff:1.2.3.4]:1".parse().unwrap())
        );
        assert!(
            "::1/128"
                .parse::<Acl>()
                .unwrap()
                .allows("x", "[::1]:3260".parse().unwrap())
        );
        assert!("bogus".parse::<Acl>().is_err());
        assert!("10.0.0.0/33".parse::<Acl>().is_err());
    }
}
