//! SPC-5 commands and the state every logical unit keeps: mode pages,
//! unit attentions, reservations (RESERVE/RELEASE and PERSISTENT
//! RESERVE), medium state, copy results.
//!
//! One file per concern:
//! - [`gate`]: the checks every command passes first (unit attention,
//!   reservation conflict, medium, write protection).
//! - [`ua`]: per-I_T-nexus unit attention queues (SPC-5, "Unit attention
//!   conditions").
//! - [`inquiry`]: standard INQUIRY data and the VPD pages.
//! - [`mode`]: mode pages, MODE SENSE and MODE SELECT.
//! - [`reserve`] and [`pr`]: RESERVE/RELEASE and PERSISTENT RESERVE.
//! - [`medium`]: TEST UNIT READY, START STOP UNIT, PREVENT ALLOW.
//! - [`report`]: REPORT LUNS, REPORT SUPPORTED OPERATION CODES / TMFs.
//! - [`copy`]: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS.
//! - [`tmf`]: task management effects, I_T nexus loss, absent LUNs.

use bytes::Bytes;

use super::LuConfig;
use super::command::Command;

mod copy;
mod gate;
mod identity;
mod inquiry;
mod medium;
mod mode;
mod pr;
mod report;
mod reserve;
mod tmf;
mod ua;

#[cfg(test)]
mod tests;

pub use copy::{extended_copy, receive_copy_results};
pub use gate::gate;
pub use inquiry::inquiry;
pub use medium::{prevent_allow_medium_removal, start_stop_unit, test_unit_ready};
pub use mode::{mode_select, mode_sense};
pub use pr::{persistent_reserve_in, persistent_reserve_out};
pub use report::{report_luns, report_supported_opcodes, report_supported_tmfs};
pub use reserve::{release, reserve};
pub use tmf::{absent_lun, nexus_lost, task_management};
pub use ua::request_sense;

/// SPC state of one logical unit.
#[derive(Debug)]
pub struct State {
    mode: mode::ModePages,
    ua: ua::UnitAttentions,
    /// The I_T nexus holding a RESERVE(6)/RESERVE(10) reservation.
    reservation: Option<super::Nexus>,
    pr: pr::Persistent,
    medium: medium::Medium,
    copies: copy::CopyResults,
}

impl State {
    pub fn new(config: &LuConfig) -> State {
        let _ = config;
        State {
            mode: mode::ModePages::new(),
            ua: ua::UnitAttentions::default(),
            reservation: None,
            pr: pr::Persistent::default(),
            medium: medium::Medium::new(),
            copies: copy::CopyResults::default(),
        }
    }

    /// D_SENSE of the control mode page: descriptor format sense data
    /// (SPC-5, "Control mode page").
    pub fn descriptor_sense(&self) -> bool {
        self.mode.descriptor_sense()
    }

    /// SWP of the control mode page: software write protect (SPC-5,
    /// "Control mode page").
    pub fn software_write_protect(&self) -> bool {
        self.mode.software_write_protect()
    }

    /// WCE of the Caching mode page (SBC-4): when clear, writes must
    /// reach stable storage before they complete.
    #[allow(dead_code, reason = "read by the SBC write path")]
    pub fn write_cache_enabled(&self) -> bool {
        self.mode.write_cache_enabled()
    }

    /// Whether the medium is loaded (only a removable LU can be ejected).
    #[allow(dead_code, reason = "read by the SBC side and the target layer")]
    pub fn medium_present(&self) -> bool {
        self.medium.present
    }

    /// Whether data-modifying commands fail with DATA PROTECT: the LU is
    /// configured read-only or SWP is set.
    pub fn write_protected(&self, config: &LuConfig) -> bool {
        config.readonly || self.software_write_protect()
    }
}

/// Truncates Data-In to the allocation length (SPC-5, "ALLOCATION LENGTH
/// field").
fn truncate(mut data: Vec<u8>, allocation_length: usize) -> Bytes {
    data.truncate(allocation_length);
    Bytes::from(data)
}

/// The first `len` bytes of the Data-Out (fewer if fewer arrived).
fn parameter_list<'a>(cmd: &Command<'a>, len: usize) -> &'a [u8] {
    let data: &'a [u8] = cmd.data_out;
    &data[..len.min(data.len())]
}

/// Pads `data` with zeros to a multiple of four bytes (SCSI name strings,
/// TransportIDs).
fn pad4(data: &mut Vec<u8>) {
    while data.len() % 4 != 0 {
        data.push(0);
    }
}
