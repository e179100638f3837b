//! libiscsi's URL form, `iscsi://[user[%secret]@]host[:port][/iqn[/lun]]`
//! (the `iscsi-ls`/`iscsi-perf` manual pages), with one-line errors.

use std::net::{SocketAddr, ToSocketAddrs};

use iscsi_engine::text::discovery::ISCSI_PORT;

/// A parsed `iscsi://` URL. A portal URL has neither target nor LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiUrl {
    pub user: Option<String>,
    pub secret: Option<String>,
    /// As written: a host name, an IPv4 address, or `[IPv6]`.
    pub host: String,
    pub port: u16,
    pub target: Option<String>,
    pub lun: Option<u16>,
}

impl IscsiUrl {
    /// Parses a URL; `what` names the argument in errors.
    pub fn parse(text: &str) -> Result<IscsiUrl, String> {
        let bad = |why: &str| format!("invalid URL {text:?}: {why}");
        let rest = text
            .strip_prefix("iscsi://")
            .ok_or_else(|| bad("it must start with iscsi://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, secret) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once('%') {
                Some((user, secret)) if !user.is_empty() => {
                    (Some(user.to_string()), Some(secret.to_string()))
                }
                None if !u.is_empty() => (Some(u.to_string()), None),
                _ => return Err(bad("empty CHAP user name before '@'")),
            },
        };
        let (host, port) = split_host_port(hostport).map_err(|w| bad(&w))?;
        let (target, lun) = match path {
            None | Some("") => (None, None),
            Some(p) => {
                let (iqn, lun) = match p.split_once('/') {
                    Some((iqn, lun)) => (iqn, Some(lun)),
                    None => (p, None),
                };
                if iqn.is_empty() {
                    return Err(bad("empty target name"));
                }
                let lun =
                    match lun {
                        None | Some("") => None,
                        Some(l) => Some(l.parse::<u16>().ok().filter(|n| *n < 0x4000).ok_or_else(
                            || bad(&format!("LUN {l:?} is not a number below 16384")),
                        )?),
                    };
                (Some(iqn.to_string()), lun)
            }
        };
        Ok(IscsiUrl {
            user,
            secret,
            host,
            port,
            target,
            lun,
        })
    }

    /// The portal's socket address (host names resolved).
    pub fn portal(&self) -> Result<SocketAddr, String> {
        resolve(&self.host, self.port)
    }

    /// The target and LUN, which commands on a LUN need.
    pub fn target_lun(&self, text: &str) -> Result<(String, u16), String> {
        match (&self.target, self.lun) {
            (Some(t), Some(l)) => Ok((t.clone(), l)),
            _ => Err(format!(
                "invalid URL {text:?}: expected iscsi://host[:port]/<target-iqn>/<lun>"
            )),
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`.
pub fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?} is not a number in 1..=65535"))
    };
    if let Some(rest) = hostport.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after an IPv6 address".to_string())?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => ISCSI_PORT,
            None => return Err(format!("unexpected {after:?} after ']'")),
        };
        return Ok((format!("[{ip}]"), port));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, port_of(p)?),
        None => (hostport, ISCSI_PORT),
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    Ok((host.to_string(), port))
}

/// Resolves a host (name, IPv4 or `[IPv6]`) and port.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))
}

/// A portal given as `host[:port]` or as an `iscsi://` URL.
pub fn parse_portal(text: &str) -> Result<(SocketAddr, IscsiUrl), String> {
    let url = if text.starts_with("iscsi://") {
        IscsiUrl::parse(text)?
    } else {
        let (host, port) =
            split_host_port(text).map_err(|w| format!("invalid address {text:?}: {w}"))?;
        IscsiUrl {
            user: None,
            secret: None,
            host,
            port,
            target: None,
            lun: None,
        }
    };
    Ok((url.portal()?, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let u =
            IscsiUrl::parse("iscsi://ronnie%pass%word@10.1.1.27:3261/iqn.2026-01.x:y/3").unwrap();
        assert_eq!(u.user.as_deref(), Some("ronnie"));
        assert_eq!(u.secret.as_deref(), Some("pass%word"));
        assert_eq!((u.host.as_str(), u.port), ("10.1.1.27", 3261));
        assert_eq!(u.target.as_deref(), Some("iqn.2026-01.x:y"));
        assert_eq!(u.lun, Some(3));
        assert_eq!(u.portal().unwrap(), "10.1.1.27:3261".parse().unwrap());
    }

    #[test]
    fn portal_urls_and_defaults() {
        let u = IscsiUrl::parse("iscsi://192.0.2.1").unwrap();
        assert_eq!((u.port, u.target.clone(), u.lun), (3260, None, None));
        let u = IscsiUrl::parse("iscsi://[2001:db8::1]:3261/").unwrap();
        assert_eq!(u.portal().unwrap(), "[2001:db8::1]:3261".parse().unwrap());
        let u = IscsiUrl::parse("iscsi://alice@[::1]/iqn.a:b").unwrap();
        assert_eq!((u.user.as_deref(), u.secret.clone()), (Some("alice"), None));
        assert_eq!((u.target.as_deref(), u.lun), (Some("iqn.a:b"), None));
        assert!(u.target_lun("x").is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, want) in [
            ("http://x/iqn/1", "must start with iscsi://"),
            ("iscsi://host:99999/iqn/1", "port"),
            ("iscsi://host:abc", "port"),
            ("iscsi:///iqn/1", "empty host"),
            ("iscsi://h//1", "empty target"),
            ("iscsi://h/iqn/x", "LUN \"x\""),
            ("iscsi://h/iqn/20000", "below 16384"),
            ("iscsi://%s@h/iqn/1", "empty CHAP user"),
            ("iscsi://[::1/iqn/1", "missing ']'"),
        ] {
            let e = IscsiUrl::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn bare_portals() {
        let (a, _) = parse_portal("127.0.0.1").unwrap();
        assert_eq!(a, "127.0.0.1:3260".parse().unwrap());
        let (a, _) = parse_portal("127.0.0.1:3999").unwrap();
        assert_eq!(a.port(), 3999);
        assert!(parse_portal("127.0.0.1:0").is_err());
    }
}
