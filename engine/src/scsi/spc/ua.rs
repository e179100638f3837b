//! Unit attention conditions (SPC-5, "Unit attention conditions"; SAM-5):
//! one queue per I_T nexus, and REQUEST SENSE, which reports and clears
//! them.
//!
//! Policy:
//! - The first command an I_T nexus sends to a logical unit finds POWER ON,
//!   RESET, OR BUS DEVICE RESET OCCURRED (29h/00h) pending, as after a
//!   power on (SAM-5, "Power on"); a nexus that was lost and comes back finds
//!   I_T NEXUS LOSS OCCURRED (29h/07h) instead (SAM-5, "I_T nexus loss").
//!   libiscsi and
//!   Linux clear these with TEST UNIT READY after login.
//! - Resets (logical unit reset, target warm/cold reset) establish 29h/00h
//!   for every known nexus, the one that asked included; a reset condition
//!   supersedes whatever was pending for that nexus.
//! - Other conditions queue in order, without duplicates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::super::Nexus;
use super::super::cdb::Cdb;
use super::super::command::{Command, Outcome};
use super::super::device::LogicalUnit;
use super::super::sense::{Asc, Sense, key};

/// How many lost I_T nexuses are remembered to report I_T NEXUS LOSS when
/// they come back.
const LOST_MEMORY: usize = 256;

#[derive(Debug, Default)]
pub(super) struct UnitAttentions {
    pending: BTreeMap<Nexus, VecDeque<Asc>>,
    /// Nexuses that have sent this LU a command since they appeared.
    known: BTreeSet<Nexus>,
    /// Recently lost nexuses.
    lost: BTreeSet<Nexus>,
}

impl UnitAttentions {
    /// Notes a command from `nexus`; on first contact, establishes the
    /// power-on (or nexus loss) condition.
    pub(super) fn contact(&mut self, nexus: &Nexus) {
        if self.known.contains(nexus) {
            return;
        }
        self.known.insert(nexus.clone());
        let asc = if self.lost.remove(nexus) {
            Asc::I_T_NEXUS_LOSS_OCCURRED
        } else {
            Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET
        };
        self.pending
            .entry(nexus.clone())
            .or_default()
            .push_front(asc);
    }

    /// Establishes `asc` for one nexus.
    pub(super) fn establish(&mut self, nexus: &Nexus, asc: Asc) {
        let queue = self.pending.entry(nexus.clone()).or_default();
        if is_reset(asc) {
            queue.clear();
        }
        if !queue.contains(&asc) {
            queue.push_back(asc);
        }
    }

    /// Establishes `asc` for every known nexus except `except`.
    pub(super) fn establish_others(&mut self, except: Option<&Nexus>, asc: Asc) {
        let targets: Vec<Nexus> = self
            .known
            .iter()
            .filter(|n| Some(*n) != except)
            .cloned()
            .collect();
        for nexus in &targets {
            self.establish(nexus, asc);
        }
    }

    /// Establishes `asc` for every known nexus.
    pub(super) fn establish_all(&mut self, asc: Asc) {
        self.establish_others(None, asc);
    }

    /// Takes the oldest pending condition of `nexus`.
    pub(super) fn pop(&mut self, nexus: &Nexus) -> Option<Asc> {
        let queue = self.pending.get_mut(nexus)?;
        let asc = queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(nexus);
        }
        asc
    }

    /// The conditions pending for `nexus`, oldest first.
    #[cfg(test)]
    pub(super) fn pending(&self, nexus: &Nexus) -> Vec<Asc> {
        self.pending
            .get(nexus)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets a lost nexus, remembering it to report the loss if it comes
    /// back.
    pub(super) fn nexus_lost(&mut self, nexus: &Nexus) {
        self.pending.remove(nexus);
        if self.known.remove(nexus) {
            self.lost.insert(nexus.clone());
            while self.lost.len() > LOST_MEMORY {
                self.lost.pop_first();
            }
        }
    }
}

/// Conditions of the "power on, reset" class (ASC 29h).
fn is_reset(asc: Asc) -> bool {
    asc.0 == 0x29
}

/// REQUEST SENSE (SPC-5): returns a pending unit attention (and
/// clears it), else the current condition of the LU, with GOOD status.
/// DESC selects descriptor format.
pub fn request_sense(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    if cdb.u8(1) & 0xfe != 0 {
        return Err(Cdb::invalid_field(1, None).into());
    }
    let descriptor = cdb.bit(1, 0);
    let allocation_length = cdb.u8(4) as usize;
    let sense = match lu.spc.ua.pop(cmd.nexus) {
        Some(asc) => Sense::new(key::UNIT_ATTENTION, asc),
        None if lu.sbc.sanitize_in_progress() => {
            Sense::new(key::NOT_READY, Asc::NOT_READY_SANITIZE_IN_PROGRESS)
        }
        None if !lu.spc.medium.present => Sense::new(key::NOT_READY, Asc::MEDIUM_NOT_PRESENT),
        None => Sense::new(key::NO_SENSE, Asc::NO_ADDITIONAL_SENSE),
    };
    Ok(sense_data(&sense, descriptor, allocation_length))
}

/// Sense data as REQUEST SENSE parameter data.
pub(super) fn sense_data(sense: &Sense, descriptor: bool, allocation_length: usize) -> Bytes {
    let data = sense.encode(descriptor);
    data.slice(..allocation_length.min(data.len()))
}
