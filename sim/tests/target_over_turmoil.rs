//! The production target, unchanged, over turmoil's simulated network: a
//! minimal scripted client logs in and reads INQUIRY (issue 3, item 4).
//! Everything the simulation builds on starts here.

use iscsi_engine::login::AuthPolicy;
use iscsi_engine::pdu::Isid;
use iscsi_engine::text::Preferences;
use iscsi_sim::rng::Seeds;
use iscsi_sim::scripted::Scripted;
use iscsi_sim::world::{self, RunOptions, TARGET_IQN, TargetSetup, WorldSetup, software};

fn run(seed: u64) -> world::RunResult {
    let mut setup = WorldSetup::new(TargetSetup::standard(AuthPolicy::default(), 16 << 20));
    setup.initiator(
        "init-1",
        software(|ctx| async move {
            let mut c = Scripted::connect(&ctx.net, ctx.portal).await?;
            let isid = Isid([0x80, 0, 0, 0, 0, 1]);
            c.login(
                "iqn.2026-01.sim:scripted",
                TARGET_IQN,
                isid,
                Preferences::default(),
                ctx.seed("login"),
            )
            .await?;
            let data = c.inquiry(1).await?;
            if &data[8..16] != b"HARNESS " || &data[16..24] != b"SIM-DISK" {
                return Err(format!("unexpected INQUIRY data {:?}", &data[8..32]));
            }
            ctx.trace("INQUIRY ok");
            Ok(())
        }),
    );
    world::run(
        setup,
        Seeds::new(seed),
        &RunOptions {
            keep_trace: true,
            ..RunOptions::default()
        },
    )
}

#[test]
fn a_scripted_client_logs_in_and_reads_inquiry() {
    let result = run(1);
    let lines = result.trace_lines.clone().unwrap_or_default();
    if std::env::var_os("SHOW_TRACE").is_some() {
        println!("{}", lines.join("\n"));
    }
    assert!(
        result.passed(),
        "{:#?}\n{}",
        result.failures,
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("INQUIRY ok")));
    assert!(lines.iter().any(|l| l.contains("Login-Response")));
    assert_eq!(run(1).trace_hash, result.trace_hash, "same seed, same run");
    assert_ne!(
        run(2).trace_hash,
        result.trace_hash,
        "another seed, another run"
    );
}
