//! `r2t-matrix`: the write data path under every negotiation of
//! InitialR2T × ImmediateData × FirstBurstLength × MaxBurstLength ×
//! MaxOutstandingR2T (RFC 7143 §13.10-§13.14, §13.17), plus each side's
//! MaxRecvDataSegmentLength (§13.12). The seed picks both sides' offers;
//! the negotiated values must follow the rules (InitialR2T: OR,
//! ImmediateData: AND, the lengths and MaxOutstandingR2T: minimum), and
//! then writes from one block to half a megabyte — immediate data,
//! unsolicited Data-Out, several R2Ts outstanding — must store exactly
//! what was sent (oracle) with every sequence number right (wire checker).

use std::time::Duration;

use rand::Rng;

use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, run as run_io, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "r2t-matrix",
    summary: "InitialR2T x ImmediateData x First/MaxBurstLength x MaxOutstandingR2T x MRDSL",
    faults: FaultKind::TIMING,
    build,
};

#[derive(Debug, Clone, Copy)]
struct Offer {
    initial_r2t: bool,
    immediate_data: bool,
    first_burst: u32,
    max_burst: u32,
    max_r2t: u16,
    mrdsl: u32,
}

fn offer(rng: &mut impl Rng) -> Offer {
    const FIRST: &[u32] = &[512, 4096, 8192];
    const MAX: &[u32] = &[8192, 16384, 65536, 262_144];
    const MRDSL: &[u32] = &[512, 4096, 8192, 65536, 262_144];
    Offer {
        initial_r2t: rng.random_bool(0.5),
        immediate_data: rng.random_bool(0.5),
        first_burst: FIRST[rng.random_range(0..FIRST.len())],
        max_burst: MAX[rng.random_range(0..MAX.len())],
        max_r2t: rng.random_range(1..=4),
        mrdsl: MRDSL[rng.random_range(0..MRDSL.len())],
    }
}

fn apply(p: &mut iscsi_engine::text::Preferences, o: &Offer) {
    p.initial_r2t = o.initial_r2t;
    p.immediate_data = o.immediate_data;
    p.first_burst_length = o.first_burst;
    p.max_burst_length = o.max_burst;
    p.max_outstanding_r2t = o.max_r2t;
    p.max_recv_data_segment_length = o.mrdsl;
}

fn build(ctx: &mut Ctx<'_>) -> WorldSetup {
    let (i, t) = (offer(&mut ctx.rng), offer(&mut ctx.rng));
    let mut target = TargetSetup::standard(Default::default(), 64 << 20);
    apply(&mut target.config.preferences, &t);
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(10);
    setup.initiator(
        "init-1",
        software(move |ctx| async move {
            ctx.trace(format_args!("initiator offers {i:?}"));
            ctx.trace(format_args!("target offers {t:?}"));
            let mut config = session_config(&ctx);
            apply(&mut config.preferences, &i);
            let params = IoParams {
                hot: 512,
                region: 4096,
                max_blocks: 64,
                large_one_in: 8,
                large_blocks: 512,
                final_ops: 8,
                think: Duration::from_millis(40),
                ..IoParams::default()
            };
            let io = Io::new(ctx.clone(), params, config);
            let (_, s) = io.session().await?;
            let (p, c) = s.negotiated();
            let (initial_r2t, immediate_data) = (
                i.initial_r2t || t.initial_r2t,
                i.immediate_data && t.immediate_data,
            );
            // §13.14: FirstBurstLength is Irrelevant when InitialR2T=Yes
            // and ImmediateData=No; whatever value is kept is then unused.
            let irrelevant = initial_r2t && !immediate_data;
            let want = (
                initial_r2t,
                immediate_data,
                if irrelevant {
                    p.first_burst_length
                } else {
                    i.first_burst.min(t.first_burst)
                },
                i.max_burst.min(t.max_burst),
                i.max_r2t.min(t.max_r2t),
                t.mrdsl,
            );
            let got = (
                p.initial_r2t,
                p.immediate_data,
                p.first_burst_length,
                p.max_burst_length,
                p.max_outstanding_r2t,
                c.max_xmit_data_segment_length,
            );
            if got != want {
                return Err(format!(
                    "negotiated (InitialR2T, ImmediateData, FirstBurstLength, MaxBurstLength, MaxOutstandingR2T, MaxXmitDataSegmentLength) = {got:?}, expected {want:?}"
                ));
            }
            run_io(io).await
        }),
    );
    setup
}
