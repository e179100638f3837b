//! Known bugs that the simulator must find (DESIGN.md, "Planted bugs").
//!
//! A simulator that never fails proves nothing; one that catches bugs we
//! put in on purpose shows what it can see. Each [`PlantedBug`] is a small
//! hook in the engine, compiled only with the `planted-bugs` cargo feature
//! (`#[cfg(feature = "planted-bugs")]`) and dormant unless a run selects it
//! through a configuration field (`EndpointConfig::planted`,
//! `Device::set_planted`, `SessionConfig::planted`). Production builds contain none of them.

/// One planted bug. The names are what `iscsi-harness sim plant list`
/// prints and `sim swarm --plant NAME` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PlantedBug {
    /// The target driver answers GOOD to a WRITE at once and stores the
    /// data only later (after the simulated disk's latency).
    AckBeforeWrite,
    /// A Data-In PDU carrying status (phase collapse, RFC 7143 §11.7.4)
    /// does not advance StatSN, so the next response repeats its StatSN
    /// (§4.2.2.2: StatSN is advanced by every status-bearing PDU).
    StatSnOffByOne,
    /// The last R2T of a write that needs more than one is never sent
    /// (§11.8): the write waits forever for data the target never asked for.
    R2tNeverSent,
    /// Data-In of a read skips a DataSN after the second PDU (§11.7.5:
    /// DataSN counts every Data-In of a command from 0 without gaps).
    DataSnGap,
    /// SYNCHRONIZE CACHE answers GOOD without flushing the volatile cache
    /// (SBC-4 §5.35): acknowledged data does not survive a crash.
    UnflushedCacheDurable,
    /// WRITE with FUA is acknowledged before its data is on stable
    /// storage (SBC-4 §5.42: FUA=1 writes to the medium first).
    FuaIgnored,
    /// The target accepts any CHAP_R for a known CHAP_N (RFC 7143 §12.1.3,
    /// RFC 1994): a wrong secret logs in.
    ChapResponseUnchecked,
    /// Persistent reservations are not enforced against writes (SPC-5,
    /// "Reservations"): a nexus without the reservation writes anyway.
    ReservationConflictIgnored,
    /// COMPARE AND WRITE compares only the first logical block (SBC-4
    /// §5.3: the whole verify instance must match).
    CompareFirstBlockOnly,
    /// LOGICAL UNIT RESET establishes no unit attention for the other
    /// I_T nexuses (SAM-5, "Logical unit reset").
    LunResetNoUnitAttention,
    /// The initiator hands out ITTs from a space of 32 without checking
    /// which are still in use (RFC 7143 §4.2.1: an ITT is unique among
    /// the session's outstanding tasks).
    IttReusedEarly,
    /// The initiator never gives up on an unanswered NOP-Out ping
    /// (§11.18): a dead link goes unnoticed.
    NopTimeoutIgnored,
}

impl PlantedBug {
    /// Every planted bug, in the order `sim plant list` prints them.
    pub const ALL: &'static [PlantedBug] = &[
        PlantedBug::AckBeforeWrite,
        PlantedBug::StatSnOffByOne,
        PlantedBug::R2tNeverSent,
        PlantedBug::DataSnGap,
        PlantedBug::UnflushedCacheDurable,
        PlantedBug::FuaIgnored,
        PlantedBug::ChapResponseUnchecked,
        PlantedBug::ReservationConflictIgnored,
        PlantedBug::CompareFirstBlockOnly,
        PlantedBug::LunResetNoUnitAttention,
        PlantedBug::IttReusedEarly,
        PlantedBug::NopTimeoutIgnored,
    ];

    /// The bug's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::AckBeforeWrite => "ack-before-write",
            PlantedBug::StatSnOffByOne => "statsn-off-by-one",
            PlantedBug::R2tNeverSent => "r2t-never-sent",
            PlantedBug::DataSnGap => "datasn-gap",
            PlantedBug::UnflushedCacheDurable => "unflushed-cache-durable",
            PlantedBug::FuaIgnored => "fua-ignored",
            PlantedBug::ChapResponseUnchecked => "chap-response-unchecked",
            PlantedBug::ReservationConflictIgnored => "reservation-conflict-ignored",
            PlantedBug::CompareFirstBlockOnly => "compare-first-block-only",
            PlantedBug::LunResetNoUnitAttention => "lun-reset-no-unit-attention",
            PlantedBug::IttReusedEarly => "itt-reused-early",
            PlantedBug::NopTimeoutIgnored => "nop-timeout-ignored",
        }
    }

    /// One line on what the bug does.
    pub fn describe(self) -> &'static str {
        match self {
            PlantedBug::AckBeforeWrite => "target acknowledges a WRITE before storing it",
            PlantedBug::StatSnOffByOne => {
                "a phase-collapsed Data-In does not advance StatSN (the next response repeats it)"
            }
            PlantedBug::R2tNeverSent => "the last R2T of a multi-R2T write is never sent",
            PlantedBug::DataSnGap => "Data-In skips a DataSN after the second PDU",
            PlantedBug::UnflushedCacheDurable => {
                "SYNCHRONIZE CACHE reports GOOD without flushing the write cache"
            }
            PlantedBug::FuaIgnored => "WRITE with FUA is acknowledged before it is durable",
            PlantedBug::ChapResponseUnchecked => "the target does not check the CHAP response",
            PlantedBug::ReservationConflictIgnored => {
                "persistent reservations do not stop other nexuses' writes"
            }
            PlantedBug::CompareFirstBlockOnly => "COMPARE AND WRITE compares only the first block",
            PlantedBug::LunResetNoUnitAttention => {
                "LOGICAL UNIT RESET raises no unit attention for other nexuses"
            }
            PlantedBug::IttReusedEarly => "the initiator reuses ITTs of outstanding tasks",
            PlantedBug::NopTimeoutIgnored => "the initiator never times out a NOP-Out ping",
        }
    }

    /// The bug named `name` (as [`PlantedBug::name`] spells it).
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL.iter().copied().find(|b| b.name() == name)
    }
}

impl std::fmt::Display for PlantedBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this build has the planted bugs compiled in.
pub const ENABLED: bool = cfg!(feature = "planted-bugs");

/// Whether `bug` is the one selected (always false without the feature).
#[inline]
pub fn active(selected: Option<PlantedBug>, bug: PlantedBug) -> bool {
    ENABLED && selected == Some(bug)
}
