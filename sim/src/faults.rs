//! Faults: what the world can do to the network, the hosts and the disk,
//! when it does it ([`FaultPlan`]), and which kinds a seed turns on
//! ([`FaultMix`], swarm testing: rare combinations get explored because
//! each seed leaves most kinds off and turns the others up).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::Rng;

use crate::backend::Latency;
use crate::net::RouteFault;

/// A kind of fault the swarm can turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Both directions between an initiator and the target drop
    /// everything; connects fail with "No route to host".
    Partition,
    /// Like [`FaultKind::Partition`], but nothing answers: connects time
    /// out.
    Blackhole,
    /// One direction drops everything.
    OneWay,
    /// Messages between two hosts are held, then released at once (a
    /// latency spike).
    Hold,
    /// The link's latency goes up for a while.
    SlowLink,
    /// The target host crashes (its write cache is lost) and restarts.
    CrashTarget,
    /// An initiator host crashes and restarts.
    CrashInitiator,
    /// The disk becomes slow for a while.
    SlowDisk,
    /// Sectors become unreadable.
    MediaError,
}

impl FaultKind {
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Partition,
        FaultKind::Blackhole,
        FaultKind::OneWay,
        FaultKind::Hold,
        FaultKind::SlowLink,
        FaultKind::CrashTarget,
        FaultKind::CrashInitiator,
        FaultKind::SlowDisk,
        FaultKind::MediaError,
    ];

    /// Kinds that change only timing: every scenario tolerates them.
    pub const TIMING: &'static [FaultKind] =
        &[FaultKind::Hold, FaultKind::SlowLink, FaultKind::SlowDisk];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Blackhole => "blackhole",
            FaultKind::OneWay => "one-way",
            FaultKind::Hold => "hold",
            FaultKind::SlowLink => "slow-link",
            FaultKind::CrashTarget => "crash-target",
            FaultKind::CrashInitiator => "crash-initiator",
            FaultKind::SlowDisk => "slow-disk",
            FaultKind::MediaError => "media-error",
        }
    }

    /// Whether this kind can make commands fail (rather than only slow).
    pub fn disrupts(self) -> bool {
        !FaultKind::TIMING.contains(&self)
    }
}

/// One thing the world does at a given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Cut both directions between two hosts.
    Partition {
        a: String,
        b: String,
        how: RouteFault,
    },
    /// Cut one direction.
    PartitionOneWay {
        from: String,
        to: String,
        how: RouteFault,
    },
    /// Heal both directions (releasing held messages).
    Repair {
        a: String,
        b: String,
    },
    Hold {
        a: String,
        b: String,
    },
    Release {
        a: String,
        b: String,
    },
    /// Set the link's maximum one-way latency.
    LinkLatency {
        a: String,
        b: String,
        max: Duration,
    },
    /// Crash a host; `silent`: its peers see nothing (a power cut), else
    /// its sockets are closed (a process crash).
    Crash {
        host: String,
        silent: bool,
    },
    /// Start a crashed host again.
    Restart {
        host: String,
    },
    /// The disk's latency from now on.
    DiskLatency(Latency),
    /// The sector at this byte offset of this LUN's disk fails reads.
    BadSector {
        lun: u16,
        offset: u64,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = |h: &RouteFault| match h {
            RouteFault::Unreachable => "unreachable",
            RouteFault::Blackhole => "blackhole",
        };
        match self {
            Action::Partition { a, b, how: h } => write!(f, "partition {a} <-> {b} ({})", how(h)),
            Action::PartitionOneWay { from, to, how: h } => {
                write!(f, "partition {from} -> {to} ({})", how(h))
            }
            Action::Repair { a, b } => write!(f, "repair {a} <-> {b}"),
            Action::Hold { a, b } => write!(f, "hold {a} <-> {b}"),
            Action::Release { a, b } => write!(f, "release {a} <-> {b}"),
            Action::LinkLatency { a, b, max } => {
                write!(f, "latency {a} <-> {b} max={}ms", max.as_millis())
            }
            Action::Crash { host, silent } => write!(
                f,
                "crash {host} ({})",
                if *silent { "power cut" } else { "process" }
            ),
            Action::Restart { host } => write!(f, "restart {host}"),
            Action::DiskLatency(l) => write!(
                f,
                "disk latency {}-{}us flush={}us",
                l.min.as_micros(),
                l.max.as_micros(),
                l.flush.as_micros()
            ),
            Action::BadSector { lun, offset } => {
                write!(f, "bad sector lun={lun} lba={}", offset / 512)
            }
        }
    }
}

/// Timed actions, in time order (stable for equal times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    actions: Vec<(Duration, Action)>,
}

impl FaultPlan {
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    pub fn at(&mut self, t: Duration, action: Action) -> &mut Self {
        let i = self.actions.partition_point(|(u, _)| *u <= t);
        self.actions.insert(i, (t, action));
        self
    }

    /// A fault for a while: `start` at `t`, `end` after `len`.
    pub fn during(&mut self, t: Duration, len: Duration, start: Action, end: Action) -> &mut Self {
        self.at(t, start);
        self.at(t + len, end)
    }

    /// The link between `a` and `b` down in both directions (`how`: "No
    /// route to host" or a black hole) from `t` for `len`, then repaired.
    pub fn cut(
        &mut self,
        t: Duration,
        len: Duration,
        a: &str,
        b: &str,
        how: RouteFault,
    ) -> &mut Self {
        let (a, b): (String, String) = (a.into(), b.into());
        self.during(
            t,
            len,
            Action::Partition {
                a: a.clone(),
                b: b.clone(),
                how,
            },
            Action::Repair { a, b },
        )
    }

    pub fn actions(&self) -> &[(Duration, Action)] {
        &self.actions
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn merge(&mut self, other: &FaultPlan) {
        for (t, a) in &other.actions {
            self.at(*t, a.clone());
        }
    }
}

/// How often one kind strikes, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Mean time between the end of one event and the start of the next.
    pub mean_gap: Duration,
    pub min_len: Duration,
    pub max_len: Duration,
}

/// The fault kinds a seed turned on, with their rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultMix {
    pub kinds: BTreeMap<FaultKind, Rate>,
}

impl FaultMix {
    /// No faults.
    pub fn none() -> FaultMix {
        FaultMix::default()
    }

    /// The swarm's choice for one seed among the `allowed` kinds: a quarter
    /// of the seeds run fault-free (where any transport error is a bug);
    /// the others turn each allowed kind on with probability 1/2 and give
    /// it its own rate.
    pub fn choose(rng: &mut impl Rng, allowed: &[FaultKind]) -> FaultMix {
        let mut kinds = BTreeMap::new();
        if allowed.is_empty() || rng.random_ratio(1, 4) {
            return FaultMix { kinds };
        }
        for &kind in FaultKind::ALL {
            let on = rng.random_bool(0.5);
            let gap = Duration::from_millis(rng.random_range(2_000..30_000));
            let (min, max) = match kind {
                FaultKind::Partition | FaultKind::Blackhole | FaultKind::OneWay => (500, 25_000),
                FaultKind::Hold => (100, 8_000),
                FaultKind::SlowLink => (1_000, 20_000),
                FaultKind::CrashTarget | FaultKind::CrashInitiator => (100, 8_000),
                FaultKind::SlowDisk => (1_000, 15_000),
                FaultKind::MediaError => (0, 0),
            };
            let min_len = Duration::from_millis(min);
            let max_len = Duration::from_millis(rng.random_range(min..=max).max(min));
            if on && allowed.contains(&kind) {
                kinds.insert(
                    kind,
                    Rate {
                        mean_gap: gap,
                        min_len,
                        max_len,
                    },
                );
            }
        }
        FaultMix { kinds }
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Whether some kind on can make commands fail.
    pub fn disrupts(&self) -> bool {
        self.kinds.keys().any(|k| k.disrupts())
    }

    /// Schedules this mix's events between `start` and `end` over the
    /// given hosts: each kind strikes again after an exponentially
    /// distributed gap; every event is over by `end`.
    pub fn plan(
        &self,
        rng: &mut impl Rng,
        target: &str,
        initiators: &[String],
        luns: &[(u16, u64)],
        start: Duration,
        end: Duration,
    ) -> FaultPlan {
        let mut plan = FaultPlan::new();
        for (&kind, rate) in &self.kinds {
            let mut t = start;
            loop {
                let gap = exponential(rng, rate.mean_gap);
                let len = if rate.max_len > rate.min_len {
                    rng.random_range(rate.min_len..=rate.max_len)
                } else {
                    rate.min_len
                };
                t += gap;
                if t + len >= end {
                    break;
                }
                let init = initiators[rng.random_range(0..initiators.len())].clone();
                let pair = |i: &String| (i.clone(), target.to_string());
                match kind {
                    FaultKind::Partition | FaultKind::Blackhole => {
                        let (a, b) = pair(&init);
                        let how = if kind == FaultKind::Partition {
                            RouteFault::Unreachable
                        } else {
                            RouteFault::Blackhole
                        };
                        plan.cut(t, len, &a, &b, how);
                    }
                    FaultKind::OneWay => {
                        let (mut from, mut to) = pair(&init);
                        if rng.random_bool(0.5) {
                            std::mem::swap(&mut from, &mut to);
                        }
                        plan.during(
                            t,
                            len,
                            Action::PartitionOneWay {
                                from: from.clone(),
                                to: to.clone(),
                                how: RouteFault::Unreachable,
                            },
                            Action::Repair { a: from, b: to },
                        );
                    }
                    FaultKind::Hold => {
                        let (a, b) = pair(&init);
                        plan.during(
                            t,
                            len,
                            Action::Hold {
                                a: a.clone(),
                                b: b.clone(),
                            },
                            Action::Release { a, b },
                        );
                    }
                    FaultKind::SlowLink => {
                        let (a, b) = pair(&init);
                        let max = Duration::from_millis(rng.random_range(20..400));
                        plan.during(
                            t,
                            len,
                            Action::LinkLatency {
                                a: a.clone(),
                                b: b.clone(),
                                max,
                            },
                            Action::LinkLatency {
                                a,
                                b,
                                max: LINK_LATENCY,
                            },
                        );
                    }
                    FaultKind::CrashTarget => {
                        let silent = rng.random_bool(0.5);
                        plan.during(
                            t,
                            len,
                            Action::Crash {
                                host: target.to_string(),
                                silent,
                            },
                            Action::Restart {
                                host: target.to_string(),
                            },
                        );
                    }
                    FaultKind::CrashInitiator => {
                        let silent = rng.random_bool(0.5);
                        plan.during(
                            t,
                            len,
                            Action::Crash {
                                host: init.clone(),
                                silent,
                            },
                            Action::Restart { host: init },
                        );
                    }
                    FaultKind::SlowDisk => {
                        let max = Duration::from_micros(rng.random_range(2_000..60_000));
                        let slow = Latency {
                            min: max / 4,
                            max,
                            flush: max * 2,
                        };
                        plan.during(
                            t,
                            len,
                            Action::DiskLatency(slow),
                            Action::DiskLatency(Latency::SSD),
                        );
                    }
                    FaultKind::MediaError => {
                        if let Some(&(lun, blocks)) = luns.first() {
                            let lba = rng.random_range(0..blocks.max(1));
                            plan.at(
                                t,
                                Action::BadSector {
                                    lun,
                                    offset: lba * 512,
                                },
                            );
                        }
                    }
                }
                t += len;
            }
        }
        plan
    }
}

/// The links' normal maximum one-way latency (turmoil draws each message's
/// latency from an exponential distribution below it).
pub const LINK_LATENCY: Duration = Duration::from_millis(2);

fn exponential(rng: &mut impl Rng, mean: Duration) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() * mean.as_secs_f64()).min(mean.as_secs_f64() * 8.0))
}

impl fmt::Display for FaultMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kinds.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (kind, rate) in &self.kinds {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(
                f,
                "{}(every~{:.1}s,{:.1}-{:.1}s)",
                kind.name(),
                rate.mean_gap.as_secs_f64(),
                rate.min_len.as_secs_f64(),
                rate.max_len.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn plans_are_reproducible_and_end_in_time() {
        let plan = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mix = FaultMix::choose(&mut rng, FaultKind::ALL);
            (
                mix.clone(),
                mix.plan(
                    &mut rng,
                    "target",
                    &["init-1".to_string()],
                    &[(1, 1024)],
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                ),
            )
        };
        assert_eq!(plan(7), plan(7));
        let mut any = false;
        for seed in 0..20 {
            let (_, p) = plan(seed);
            any |= !p.is_empty();
            assert!(
                p.actions()
                    .iter()
                    .all(|(t, _)| *t < Duration::from_secs(60))
            );
        }
        assert!(any);
    }
}
