//! `iscsi-harness target --config FILE`: several targets, LUNs, ACLs and
//! CHAP accounts in TOML.
//!
//! ```toml
//! listen = "127.0.0.1:3260"
//! params = ["MaxBurstLength=262144"]
//!
//! [[target]]
//! iqn = "iqn.2026-11.org.example:disk1"
//! allow = ["192.168.0.0/16", "iqn.2026-11.org.example:host1"]
//! chap = ["user:secret"]
//! mutual_chap = "target:secret2"
//!
//! [[target.lun]]
//! id = 1
//! backing = "file:/srv/disk1.img"
//! readonly = false
//! ```

use std::path::Path;

use serde::Deserialize;

use super::spec::{parse_credentials, parse_lun};
use super::{ServeSpec, TargetSpec};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    #[serde(default)]
    params: Vec<String>,
    queue_depth: Option<u32>,
    #[serde(rename = "target", default)]
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    iqn: String,
    alias: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    chap: Vec<String>,
    mutual_chap: Option<String>,
    #[serde(rename = "lun", default)]
    luns: Vec<Lun>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lun {
    id: u16,
    backing: String,
    #[serde(default)]
    removable: bool,
    #[serde(default)]
    readonly: bool,
    block_size: Option<u32>,
}

pub fn load(path: &Path) -> Result<ServeSpec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<ServeSpec, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let listen = file.listen.as_deref().unwrap_or("127.0.0.1:3260");
    let listen = listen
        .parse()
        .map_err(|_| format!("listen = {listen:?} is not an address:port"))?;
    let mut targets = Vec::new();
    for t in file.targets {
        let mut luns = Vec::new();
        for l in t.luns {
            let mut text = format!("{}={}", l.id, l.backing);
            if l.removable {
                text.push_str(",removable");
            }
            if l.readonly {
                text.push_str(",readonly");
            }
            if let Some(bs) = l.block_size {
                text.push_str(&format!(",bs={bs}"));
            }
            luns.push(parse_lun(&text).map_err(|e| format!("target {}: {e}", t.iqn))?);
        }
        targets.push(TargetSpec {
            alias: t.alias,
            luns,
            chap: t
                .chap
                .iter()
                .map(|c| parse_credentials(c))
                .collect::<Result<_, _>>()?,
            mutual_chap: t
                .mutual_chap
                .as_deref()
                .map(parse_credentials)
                .transpose()?,
            allow: t
                .allow
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()?,
            iqn: t.iqn,
        });
    }
    Ok(ServeSpec {
        listen,
        targets,
        params: file.params,
        queue_depth: file.queue_depth.unwrap_or(128),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_targets() {
        let spec = parse(
            r#"
            listen = "127.0.0.1:3261"
            params = ["ImmediateData=No"]
            [[target]]
            iqn = "iqn.2026-11.org.example:a"
            allow = ["10.0.0.0/8"]
            chap = ["u:s"]
            [[target.lun]]
            id = 1
            backing = "mem:64MiB"
            removable = true
            [[target]]
            iqn = "iqn.2026-11.org.example:b"
            [[target.lun]]
            id = 0
            backing = "mem:1G"
            block_size = 4096
            "#,
        )
        .unwrap();
        assert_eq!(spec.listen.port(), 3261);
        assert_eq!(spec.targets.len(), 2);
        assert!(spec.targets[0].luns[0].removable);
        assert_eq!(
            spec.targets[0].chap,
            vec![("u".to_string(), "s".to_string())]
        );
        assert_eq!(spec.targets[1].luns[0].block_size, 4096);
        assert!(parse("[[target]]\niqn = \"iqn.x\"\nbogus = 1\n").is_err());
        assert!(parse("listen = \"nowhere\"\n").is_err());
    }
}
