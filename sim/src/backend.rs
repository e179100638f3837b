//! The target's backend in the simulation: the production [`Devices`]
//! (logical units over [`crate::disk::SimDisk`]) plus disk latency.
//!
//! Commands execute at once (the device is atomic per command, so COMPARE
//! AND WRITE and reservations keep their semantics) and their responses
//! are held for a latency drawn from the run's RNG, through the driver's
//! [`Backend::background`] hook: the same path a real slow medium takes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iscsi_engine::net::target::{Backend, Background, Devices};
use iscsi_engine::pdu::Lun;
use iscsi_engine::scsi::{CommandRequest, CommandResult, Nexus, TaskManagement};
use iscsi_engine::target::Execute;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How long the disk takes to answer, per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Uniform between `min` and `max` for every command.
    pub min: Duration,
    pub max: Duration,
    /// Added to SYNCHRONIZE CACHE and FUA writes (destaging the cache).
    pub flush: Duration,
}

impl Latency {
    pub const NONE: Latency = Latency {
        min: Duration::ZERO,
        max: Duration::ZERO,
        flush: Duration::ZERO,
    };

    /// An SSD behind a write cache: 50-500 µs, 2 ms to flush.
    pub const SSD: Latency = Latency {
        min: Duration::from_micros(50),
        max: Duration::from_micros(500),
        flush: Duration::from_millis(2),
    };
}

/// The latency in force, shared with the fault driver (which can make the
/// disk slow for a while).
pub type SharedLatency = Arc<Mutex<Latency>>;

pub struct SimBackend {
    devices: Devices,
    latency: SharedLatency,
    rng: ChaCha8Rng,
}

impl SimBackend {
    pub fn new(devices: Devices, latency: SharedLatency, rng: ChaCha8Rng) -> SimBackend {
        SimBackend {
            devices,
            latency,
            rng,
        }
    }

    fn delay(&mut self, x: &Execute) -> Duration {
        let l = *self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let base = if l.max > l.min {
            let span = (l.max - l.min).as_micros() as u64;
            l.min + Duration::from_micros(self.rng.random_range(0..=span))
        } else {
            l.min
        };
        let op = x.cdb.opcode();
        let fua = matches!(op, 0x2a | 0xaa | 0x8a | 0x89) && x.cdb.base[1] & 0x08 != 0;
        if matches!(op, 0x35 | 0x91) || fua {
            base + l.flush
        } else {
            base
        }
    }
}

impl Backend for SimBackend {
    fn execute(&mut self, target: &str, lun: Lun, request: CommandRequest<'_>) -> CommandResult {
        self.devices.execute(target, lun, request)
    }

    fn task_management(&mut self, target: &str, nexus: &Nexus, lun: Lun, function: TaskManagement) {
        self.devices.task_management(target, nexus, lun, function)
    }

    fn nexus_lost(&mut self, target: &str, nexus: &Nexus) {
        self.devices.nexus_lost(target, nexus)
    }

    fn background(&mut self, execute: &Execute, result: &CommandResult) -> Background {
        let background = self.devices.background(execute, result);
        if background != Background::default() {
            return background;
        }
        let delay = self.delay(execute);
        Background {
            finish_after: None,
            respond_after: (!delay.is_zero()).then_some(delay),
        }
    }

    fn finish_background(&mut self, execute: &Execute) {
        self.devices.finish_background(execute)
    }
}
