//! `login-digests`: every permutation of HeaderDigest and DataDigest
//! offers (RFC 7143 §13.1): each side offers `None`, `CRC32C`, or both in
//! either order; list negotiation (§6.2.1) picks the first value of the
//! initiator's list that the target accepts. The seed chooses the
//! permutation among those with a value in common (what a list without
//! one leads to is the peers' policy, not the protocol's); the login must
//! negotiate exactly the expected digests, which then carry I/O (the wire
//! checker re-verifies every CRC32C it decodes).

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "login-digests",
    summary: "HeaderDigest x DataDigest offer permutations, then I/O with the result",
    faults: FaultKind::TIMING,
    build,
};

const OFFERS: &[&[&str]] = &[
    &["None"],
    &["CRC32C"],
    &["None", "CRC32C"],
    &["CRC32C", "None"],
];

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// List negotiation: the first of the offer that the answerer accepts.
fn pick(offer: &[&str], accepted: &[&str]) -> Option<bool> {
    offer
        .iter()
        .find(|o| accepted.contains(o))
        .map(|v| *v == "CRC32C")
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let mut choose = || OFFERS[ctx.rng.random_range(0..OFFERS.len())];
    let (ih, id) = (choose(), choose());
    let (mut th, mut td) = (choose(), choose());
    while pick(ih, th).is_none() {
        th = choose();
    }
    while pick(id, td).is_none() {
        td = choose();
    }
    let (header, data) = (pick(ih, th).unwrap_or(false), pick(id, td).unwrap_or(false));
    let mut target = TargetSetup::standard(Default::default(), 16 << 20);
    target.config.preferences.header_digest = list(th);
    target.config.preferences.data_digest = list(td);
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(6);
    setup.initiator(
        "init-1",
        software(move |ctx| async move {
            ctx.trace(format_args!(
                "offers: initiator header={ih:?} data={id:?}, target header={th:?} data={td:?}"
            ));
            let mut config = session_config(&ctx);
            config.preferences.header_digest = list(ih);
            config.preferences.data_digest = list(id);
            let params = IoParams {
                hot: 64,
                final_ops: 10,
                ..IoParams::default()
            };
            let io = Io::new(ctx.clone(), params, config);
            let (_, s) = io.session().await?;
            let (_, conn) = s.negotiated();
            if (conn.header_digest, conn.data_digest) != (header, data) {
                return Err(format!(
                    "negotiated HeaderDigest={} DataDigest={}, expected {header} {data}",
                    conn.header_digest, conn.data_digest
                ));
            }
            run_io(io).await
        }),
    );
    setup
}
