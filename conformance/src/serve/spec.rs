//! The `--lun N=SPEC` and `--param Key=Value` forms of `iscsi-harness target`.

use std::path::PathBuf;

use iscsi_engine::store::parse_size;
use iscsi_engine::text::Preferences;

/// Where a LUN's blocks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// Thin memory of this many bytes.
    Memory(u64),
    /// A file; created sparse with `size` if missing.
    File { path: PathBuf, size: Option<u64> },
    /// A block device.
    Device(PathBuf),
}

/// One LUN as the command line or the configuration file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunSpec {
    pub id: u16,
    pub backing: Backing,
    pub block_size: u32,
    pub removable: bool,
    pub readonly: bool,
}

/// Parses `N=mem:SIZE`, `N=file:PATH`, `N=dev:PATH`, each optionally
/// followed by `,removable`, `,readonly`, `,bs=4096`, `,size=SIZE` (file).
pub fn parse_lun(text: &str) -> Result<LunSpec, String> {
    let (id, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("--lun {text:?}: expected N=mem:SIZE, N=file:PATH or N=dev:PATH"))?;
    let id: u16 = id
        .trim()
        .parse()
        .ok()
        .filter(|n| *n < 16384)
        .ok_or_else(|| format!("--lun {text:?}: LUN number must be 0..16383"))?;
    let mut parts = rest.split(',');
    let backing = parts.next().unwrap_or_default();
    let mut spec = LunSpec {
        id,
        backing: Backing::Memory(0),
        block_size: 512,
        removable: false,
        readonly: false,
    };
    let mut size = None;
    for opt in parts {
        match opt.split_once('=') {
            None if opt == "removable" => spec.removable = true,
            None if opt == "readonly" => spec.readonly = true,
            Some(("bs", v)) => {
                spec.block_size = match v {
                    "512" => 512,
                    "4096" | "4k" | "4K" => 4096,
                    _ => return Err(format!("--lun {text:?}: block size must be 512 or 4096")),
                }
            }
            Some(("size", v)) => {
                size = Some(parse_size(v).ok_or_else(|| format!("--lun {text:?}: bad size {v:?}"))?)
            }
            _ => {
                return Err(format!(
                    "--lun {text:?}: unknown option {opt:?} (removable, readonly, bs=N, size=SIZE)"
                ));
            }
        }
    }
    spec.backing = match backing.split_once(':') {
        Some(("mem", s)) => {
            let bytes = parse_size(s)
                .ok_or_else(|| format!("--lun {text:?}: bad size {s:?} (e.g. 1GiB, 512M)"))?;
            if bytes < spec.block_size as u64 {
                return Err(format!("--lun {text:?}: size must be at least one block"));
            }
            Backing::Memory(bytes)
        }
        Some(("file", p)) if !p.is_empty() => Backing::File {
            path: PathBuf::from(p),
            size,
        },
        Some(("dev", p)) if !p.is_empty() => Backing::Device(PathBuf::from(p)),
        _ => {
            return Err(format!(
                "--lun {text:?}: backing must be mem:SIZE, file:PATH or dev:PATH"
            ));
        }
    };
    Ok(spec)
}

/// Parses `USER:SECRET`.
pub fn parse_credentials(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((u, s)) if !u.is_empty() && !s.is_empty() => Ok((u.to_string(), s.to_string())),
        _ => Err("CHAP credentials must be USER:SECRET".to_string()),
    }
}

/// Applies `Key=Value` to the target's negotiation preferences: the target
/// then answers (or offers) that value, within the RFC's rules.
pub fn apply_param(prefs: &mut Preferences, text: &str) -> Result<(), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--param {text:?}: expected Key=Value"))?;
    let number = |lo: u32, hi: u32| -> Result<u32, String> {
        value
            .parse::<u32>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(|| format!("--param {key}: {value:?} is not a number in {lo}..={hi}"))
    };
    let boolean = || -> Result<bool, String> {
        match value {
            "Yes" | "yes" => Ok(true),
            "No" | "no" => Ok(false),
            _ => Err(format!("--param {key}: expected Yes or No, got {value:?}")),
        }
    };
    let digests = || -> Result<Vec<String>, String> {
        value
            .split(',')
            .map(|d| match d {
                "CRC32C" | "crc32c" => Ok("CRC32C".to_string()),
                "None" | "none" => Ok("None".to_string()),
                _ => Err(format!(
                    "--param {key}: digest must be CRC32C or None, got {d:?}"
                )),
            })
            .collect()
    };
    match key {
        "HeaderDigest" => prefs.header_digest = digests()?,
        "DataDigest" => prefs.data_digest = digests()?,
        "MaxConnections" => prefs.max_connections = number(1, 65535)? as u16,
        "InitialR2T" => prefs.initial_r2t = boolean()?,
        "ImmediateData" => prefs.immediate_data = boolean()?,
        "MaxRecvDataSegmentLength" => prefs.max_recv_data_segment_length = number(512, 16_777_215)?,
        "MaxBurstLength" => prefs.max_burst_length = number(512, 16_777_215)?,
        "FirstBurstLength" => prefs.first_burst_length = number(512, 16_777_215)?,
        "DefaultTime2Wait" => prefs.default_time2wait = number(0, 3600)? as u16,
        "DefaultTime2Retain" => prefs.default_time2retain = number(0, 3600)? as u16,
        "MaxOutstandingR2T" => prefs.max_outstanding_r2t = number(1, 65535)? as u16,
        "ErrorRecoveryLevel" => {
            prefs.error_recovery_level = number(0, 0).map_err(|_| {
                format!(
                    "--param ErrorRecoveryLevel: only 0 is supported by this target, got {value:?}"
                )
            })? as u8
        }
        "DataPDUInOrder" | "DataSequenceInOrder" => {
            if !boolean()? {
                return Err(format!("--param {key}: this target requires Yes"));
            }
        }
        _ => {
            return Err(format!(
                "--param {key}: not a negotiable key of this target"
            ));
        }
    }
    if prefs.first_burst_length > prefs.max_burst_length {
        prefs.first_burst_length = prefs.max_burst_length;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lun_specs() {
        assert_eq!(
            parse_lun("1=mem:1GiB").unwrap(),
            LunSpec {
                id: 1,
                backing: Backing::Memory(1 << 30),
                block_size: 512,
                removable: false,
                readonly: false
            }
        );
        let s = parse_lun("2=file:/tmp/x.img,size=64M,removable,readonly,bs=4096").unwrap();
        assert_eq!(
            s.backing,
            Backing::File {
                path: "/tmp/x.img".into(),
                size: Some(64 << 20)
            }
        );
        assert!(s.removable && s.readonly);
        assert_eq!(s.block_size, 4096);
        assert_eq!(
            parse_lun("0=dev:/dev/sdb").unwrap().backing,
            Backing::Device("/dev/sdb".into())
        );
        assert!(parse_lun("1=mem:lots").is_err());
        assert!(parse_lun("x=mem:1G").is_err());
        assert!(parse_lun("1=tape:/dev/st0").is_err());
        assert!(parse_lun("1=mem:1G,fast").is_err());
        assert!(parse_lun("99999=mem:1G").is_err());
    }

    #[test]
    fn params_force_preferences() {
        let mut p = iscsi_engine::target::default_preferences();
        apply_param(&mut p, "ImmediateData=No").unwrap();
        apply_param(&mut p, "MaxBurstLength=16384").unwrap();
        apply_param(&mut p, "HeaderDigest=CRC32C").unwrap();
        assert!(!p.immediate_data);
        assert_eq!(p.max_burst_length, 16384);
        assert!(p.first_burst_length <= 16384);
        assert_eq!(p.header_digest, vec!["CRC32C".to_string()]);
        assert!(apply_param(&mut p, "MaxBurstLength=12").is_err());
        assert!(apply_param(&mut p, "Bogus=1").is_err());
        assert!(apply_param(&mut p, "ErrorRecoveryLevel=2").is_err());
    }
}
