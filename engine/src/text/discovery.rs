//! SendTargets (RFC 7143 §13.3, Appendix C) and the TargetAddress format
//! (§13.8): what a target answers to `SendTargets=...` in a Text Request,
//! and how an initiator reads the answer.
//!
//! The answer is a sequence of records, each a `TargetName` followed by
//! its `TargetAddress` pairs; this is the one place where keys repeat
//! within a text, so it is parsed here and not by the negotiator.

use std::net::SocketAddr;

use super::codec::TextError;
use super::params::SessionType;

/// What an initiator asks for with SendTargets (§13.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTargetsRequest {
    /// `All`: every target the initiator may see (discovery sessions only).
    All,
    /// `<iSCSI name>`: that target only.
    Target(String),
    /// Empty value: the session's own target (normal sessions only).
    Session,
}

impl SendTargetsRequest {
    /// The request a value stands for, or `None` when the target must
    /// answer `SendTargets=Reject` (`All` in a normal session, an empty
    /// value in a discovery session).
    pub fn parse(value: &str, session_type: SessionType) -> Option<SendTargetsRequest> {
        match (value, session_type) {
            ("All", SessionType::Discovery) => Some(SendTargetsRequest::All),
            ("All", SessionType::Normal) => None,
            ("", SessionType::Normal) => Some(SendTargetsRequest::Session),
            ("", SessionType::Discovery) => None,
            (name, _) => Some(SendTargetsRequest::Target(name.to_string())),
        }
    }
}

/// One portal of a target: `address:port,tag` (§13.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAddress {
    /// A host name, an IPv4 address, or an IPv6 address in brackets.
    pub host: String,
    pub port: u16,
    pub portal_group_tag: Option<u16>,
}

/// The well-known iSCSI port (§13.8: the default when no port is given).
pub const ISCSI_PORT: u16 = 3260;

impl TargetAddress {
    pub fn from_socket(addr: SocketAddr, portal_group_tag: u16) -> TargetAddress {
        let host = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        TargetAddress {
            host,
            port: addr.port(),
            portal_group_tag: Some(portal_group_tag),
        }
    }

    /// Parses `domainname[:port][,portal-group-tag]` (§13.8).
    pub fn parse(value: &str) -> Result<TargetAddress, TextError> {
        let bad = || TextError::InvalidAddress(value.chars().take(64).collect());
        let (hostport, tag) = match value.rsplit_once(',') {
            Some((hp, tag)) => (hp, Some(tag.parse::<u16>().map_err(|_| bad())?)),
            None => (value, None),
        };
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => ISCSI_PORT,
                None => return Err(bad()),
            };
            (format!("[{ip}]"), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (hostport.to_string(), ISCSI_PORT),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad());
        }
        Ok(TargetAddress {
            host,
            port,
            portal_group_tag: tag,
        })
    }
}

impl std::fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if let Some(tag) = self.portal_group_tag {
            write!(f, ",{tag}")?;
        }
        Ok(())
    }
}

/// One target of a SendTargets answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    pub name: String,
    pub addresses: Vec<TargetAddress>,
}

/// The pairs of a SendTargets answer (Appendix C).
pub fn encode_send_targets(records: &[TargetRecord]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in records {
        out.push(("TargetName".to_string(), r.name.clone()));
        for a in &r.addresses {
            out.push(("TargetAddress".to_string(), a.to_string()));
        }
    }
    out
}

/// Reads a SendTargets answer; other keys (e.g. TargetAlias) are skipped.
pub fn parse_send_targets(pairs: &[(String, String)]) -> Result<Vec<TargetRecord>, TextError> {
    let mut records: Vec<TargetRecord> = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "TargetName" => records.push(TargetRecord {
                name: v.clone(),
                addresses: Vec::new(),
            }),
            "TargetAddress" => {
                let record = records.last_mut().ok_or(TextError::OrphanAddress)?;
                record.addresses.push(TargetAddress::parse(v)?);
            }
            _ => {}
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("All", SessionType::Discovery, Some(SendTargetsRequest::All))]
    #[case("All", SessionType::Normal, None)]
    #[case("", SessionType::Normal, Some(SendTargetsRequest::Session))]
    #[case("", SessionType::Discovery, None)]
    #[case("iqn.2024-01.com.example:a", SessionType::Discovery, Some(SendTargetsRequest::Target("iqn.2024-01.com.example:a".into())))]
    fn requests(
        #[case] value: &str,
        #[case] st: SessionType,
        #[case] expect: Option<SendTargetsRequest>,
    ) {
        assert_eq!(SendTargetsRequest::parse(value, st), expect);
    }

    #[rstest]
    #[case("10.0.0.1:3261,2", "10.0.0.1", 3261, Some(2))]
    #[case("10.0.0.1", "10.0.0.1", 3260, None)]
    #[case("[fe80::1]:3260,1", "[fe80::1]", 3260, Some(1))]
    #[case("[fe80::1]", "[fe80::1]", 3260, None)]
    #[case("storage.example.com:860", "storage.example.com", 860, None)]
    fn addresses(
        #[case] text: &str,
        #[case] host: &str,
        #[case] port: u16,
        #[case] tag: Option<u16>,
    ) {
        let a = TargetAddress::parse(text).unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.portal_group_tag),
            (host, port, tag)
        );
        if text.contains(':') && text.contains(',') {
            assert_eq!(a.to_string(), text);
        }
    }

    #[rstest]
    #[case("10.0.0.1:port")]
    #[case("10.0.0.1:3260,x")]
    #[case("[fe80::1")]
    #[case("[fe80::1]x")]
    #[case(":3260")]
    fn bad_addresses(#[case] text: &str) {
        assert!(TargetAddress::parse(text).is_err(), "{text}");
    }

    #[test]
    fn send_targets_round_trip() {
        let records = vec![
            TargetRecord {
                name: "iqn.2024-01.com.example:a".into(),
                addresses: vec![
                    TargetAddress::from_socket("10.0.0.1:3260".parse().unwrap(), 1),
                    TargetAddress::from_socket("[2001:db8::1]:3260".parse().unwrap(), 2),
                ],
            },
            TargetRecord {
                name: "iqn.2024-01.com.example:b".into(),
                addresses: vec![],
            },
        ];
        let pairs = encode_send_targets(&records);
        assert_eq!(pairs[2].1, "[2001:db8::1]:3260,2");
        assert_eq!(parse_send_targets(&pairs).unwrap(), records);
    }

    #[test]
    fn address_before_name_is_malformed() {
        let pairs = vec![("TargetAddress".to_string(), "10.0.0.1:3260,1".to_string())];
        assert_eq!(parse_send_targets(&pairs), Err(TextError::OrphanAddress));
    }
}
