//! The scenarios: each a named module that sets up a world (target
//! configuration, initiator software, scripted faults) and says which
//! fault kinds the swarm may add on top.
//!
//! A run is `(scenario, seed)`: [`run`] derives the fault mix and the
//! scenario's own choices from the seed, builds the world and runs it.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultKind, FaultMix};
use crate::rng::Seeds;
use crate::world::{self, RunOptions, RunResult, TARGET, WorldSetup};

pub mod abort_task;
pub mod caw_race;
pub mod discovery;
pub mod hold_release;
pub mod initiator_crash;
pub mod inquiry;
pub mod large_transfers;
pub mod login_chap;
pub mod login_digests;
pub mod logout_during_io;
pub mod lun_reset;
pub mod media_errors;
pub mod no_route;
pub mod nop_keepalive;
pub mod persistent_reservations;
pub mod r2t_matrix;
pub mod scsi;
pub mod soak;
pub mod target_crash;
pub mod torn_writes;

/// What a scenario's builder gets: the run's seeds, an RNG for its own
/// choices, and the fault mix the swarm chose.
pub struct Ctx<'a> {
    pub seeds: Seeds,
    pub rng: ChaCha8Rng,
    pub mix: &'a FaultMix,
}

/// One scenario.
pub struct Scenario {
    pub name: &'static str,
    /// One line on what it exercises.
    pub summary: &'static str,
    /// The fault kinds the swarm may turn on for it.
    pub faults: &'static [FaultKind],
    pub build: fn(&mut Ctx<'_>) -> WorldSetup,
}

/// Every scenario, in `sim list` order.
pub fn all() -> &'static [Scenario] {
    static ALL: &[Scenario] = &[
        inquiry::SCENARIO,
        login_digests::SCENARIO,
        login_chap::SCENARIO,
        discovery::SCENARIO,
        r2t_matrix::SCENARIO,
        large_transfers::SCENARIO,
        abort_task::SCENARIO,
        lun_reset::SCENARIO,
        nop_keepalive::SCENARIO,
        no_route::SCENARIO,
        target_crash::SCENARIO,
        torn_writes::SCENARIO,
        initiator_crash::SCENARIO,
        logout_during_io::SCENARIO,
        persistent_reservations::SCENARIO,
        caw_race::SCENARIO,
        media_errors::SCENARIO,
        hold_release::SCENARIO,
        soak::SCENARIO,
    ];
    ALL
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    all().iter().find(|s| s.name == name)
}

/// When the swarm's faults may start: after the first logins.
const FAULTS_FROM: Duration = Duration::from_secs(2);

/// The fault mix a seed gives a scenario.
pub fn mix_for(scenario: &Scenario, seed: u64) -> FaultMix {
    FaultMix::choose(&mut Seeds::new(seed).rng("mix"), scenario.faults)
}

/// Runs one scenario on one seed.
pub fn run(scenario: &Scenario, seed: u64, options: &RunOptions) -> (FaultMix, RunResult) {
    let seeds = Seeds::new(seed);
    let mix = mix_for(scenario, seed);
    let mut ctx = Ctx {
        seeds,
        rng: seeds.rng("scenario"),
        mix: &mix,
    };
    let mut setup = (scenario.build)(&mut ctx);
    let names: Vec<String> = setup.initiators.iter().map(|i| i.name.clone()).collect();
    let luns: Vec<(u16, u64)> = setup
        .target
        .luns
        .iter()
        .map(|l| (l.lun, crate::workload::IoParams::default().hot))
        .collect();
    let plan = mix.plan(
        &mut seeds.rng("plan"),
        TARGET,
        &names,
        &luns,
        FAULTS_FROM,
        setup.heal_at,
    );
    setup.faults.merge(&plan);
    let options = RunOptions {
        disruptive: options.disruptive || mix.disrupts(),
        ..options.clone()
    };
    let result = world::run(setup, seeds, &options);
    (mix, result)
}

/// A world with the standard target and `hosts` initiators running the
/// I/O workload with `params`; `config` adjusts each host's session.
pub fn io_world(
    hosts: usize,
    params: crate::workload::IoParams,
    heal_at: Duration,
    config: fn(&mut iscsi_engine::net::initiator::SessionConfig),
) -> WorldSetup {
    use crate::workload::{Io, run as run_io, session_config};
    use iscsi_engine::login::AuthPolicy;
    let mut setup = WorldSetup::new(world::TargetSetup::standard(
        AuthPolicy::default(),
        64 << 20,
    ));
    setup.heal_at = heal_at;
    for h in 1..=hosts {
        let params = params.clone();
        setup.initiator(
            &format!("init-{h}"),
            world::software(move |ctx| {
                let params = params.clone();
                async move {
                    let mut c = session_config(&ctx);
                    config(&mut c);
                    run_io(Io::new(ctx, params, c)).await
                }
            }),
        );
    }
    setup
}
