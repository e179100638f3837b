//! Our initiator against Debian's tgtd, started here on loopback with a
//! RAM-backed file (issue 4, "Must show" 1): discovery and `ls` from the
//! command line, 16 MiB of random data written at LBA 2048, read back and
//! found in tgtd's backing file; the command line's write and read; then
//! CRC32C digests. The perf comparison with `iscsi-perf` is
//! `initiator_perf.rs`, alone in its binary so that nothing runs beside it.
//!
//! Skips (saying why) when tgtd is missing or cannot start, unless
//! `ISCSI_HARNESS_REQUIRE_PEERS=1`, which turns a skip into a failure.

mod common;

use bytes::Bytes;
use common::peers::tgtd_or_skip;
use common::target::harness;
use iscsi_engine::net::TokioNetwork;
use iscsi_engine::net::initiator::{Session, SessionConfig};

const TARGET: &str = "iqn.2026-11.org.iscsi-harness.test:tgtd";
const INITIATOR: &str = "iqn.2026-11.org.iscsi-harness.test:initiator";
const MIB: usize = 1 << 20;

fn stdout_of(args: &[&str]) -> String {
    let out = harness(args);
    assert!(
        out.status.success(),
        "iscsi-harness {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn tgtd_discover_ls_and_a_16_mib_round_trip() {
    let Some(mut t) = tgtd_or_skip("tgtd round trip", TARGET, &[]) else {
        return;
    };
    let portal = t.addr().to_string();
    let discovered = stdout_of(&["initiator", "discover", &portal]);
    assert_eq!(discovered, format!("{portal},1 {TARGET}\n"));

    let ls = stdout_of(&["initiator", "ls", &format!("iscsi://{portal}")]);
    eprintln!("{ls}");
    assert!(
        ls.contains(&format!("Target:{TARGET} Portal:{portal},1")),
        "{ls}"
    );
    assert!(
        ls.contains("Lun:0    Type:STORAGE_ARRAY_CONTROLLER"),
        "{ls}"
    );
    assert!(
        ls.contains("Lun:1    Type:DIRECT_ACCESS (Size:64M)"),
        "{ls}"
    );

    // 16 MiB of random data at LBA 2048 through the Rust API.
    let data = Bytes::from(random(16 * MIB, 42));
    let addr = t.addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let s = Session::login(TokioNetwork, SessionConfig::new(INITIATOR, TARGET, addr), 1)
            .await
            .expect("login to tgtd");
        let (params, conn) = s.negotiated();
        eprintln!("negotiated with tgtd: {params:?} {conn:?}");
        s.write(1, 2048, data.clone()).await.expect("write");
        s.flush(1).await.expect("SYNCHRONIZE CACHE");
        let back = s
            .read(1, 2048, (16 * MIB / 512) as u32)
            .await
            .expect("read");
        assert!(back == data, "the data read back differs");
        s.logout().await.expect("logout");
    });
    let file = std::fs::read(t.lun_file()).unwrap();
    assert!(
        file[2048 * 512..2048 * 512 + 16 * MIB] == data[..],
        "tgtd's backing file does not hold the data"
    );

    // The command line's write and read of the same blocks.
    let small = random(8192, 7);
    let path = std::env::temp_dir().join(format!("iscsi-harness-cli-{}.bin", std::process::id()));
    std::fs::write(&path, &small).unwrap();
    stdout_of(&[
        "initiator",
        "write",
        &t.url(),
        "100",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    let out = harness(&["initiator", "read", &t.url(), "100", "16"]);
    assert!(out.status.success());
    assert!(out.stdout == small, "CLI read differs from CLI write");
    let file = std::fs::read(t.lun_file()).unwrap();
    assert!(file[100 * 512..100 * 512 + 8192] == small[..]);

    // CRC32C header and data digests, once tgtd is told to offer them.
    for key in ["HeaderDigest", "DataDigest"] {
        t.tgtd.set_param(key, "CRC32C").expect("enabling digests");
    }
    runtime.block_on(async {
        let mut config = SessionConfig::new(INITIATOR, TARGET, addr);
        config.preferences.header_digest = vec!["CRC32C".into()];
        config.preferences.data_digest = vec!["CRC32C".into()];
        let s = Session::login(TokioNetwork, config, 2)
            .await
            .expect("login with digests");
        let (_, conn) = s.negotiated();
        assert!(conn.header_digest && conn.data_digest);
        let data = Bytes::from(random(MIB + 512, 3));
        s.write(1, 8192, data.clone()).await.expect("write");
        let back = s
            .read(1, 8192, (data.len() / 512) as u32)
            .await
            .expect("read");
        assert!(back == data, "digested read back differs");
        s.logout().await.expect("logout");
    });
}
