//! What an initiator session logs in with, and its timers.

use std::net::SocketAddr;
use std::time::Duration;

use crate::login::Credentials;
use crate::pdu::Isid;
use crate::text::{Preferences, SessionType};

/// The configuration of one session: who logs in where, with what, and
/// how it behaves when the connection is lost.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub initiator_name: String,
    pub initiator_alias: Option<String>,
    /// The target node; empty for a discovery session.
    pub target_name: String,
    /// The portal to connect to (a redirection may change it, §11.13.5).
    pub portal: SocketAddr,
    pub session_type: SessionType,
    /// This initiator's CHAP account, sent only when the target asks for
    /// CHAP (§12.1.3).
    pub chap: Option<Credentials>,
    /// The target's expected credentials: the target must authenticate
    /// itself (mutual CHAP).
    pub mutual: Option<Credentials>,
    /// The operational keys offered (§13).
    pub preferences: Preferences,
    /// The ISID (§11.12.5); `None` draws a random-format ISID from the RNG.
    /// Reinstatement always reuses the session's ISID (§6.3.5).
    pub isid: Option<Isid>,
    /// How long the session tries to re-establish a lost connection before
    /// it fails every outstanding command (open-iscsi's
    /// `node.session.timeo.replacement_timeout`).
    pub replacement_timeout: Duration,
    /// Ping the target with NOP-Out after this long without input
    /// (`None`: never).
    pub nop_interval: Option<Duration>,
    /// A ping unanswered for this long means the connection is dead.
    pub nop_timeout: Duration,
    /// The longest a TCP connect plus login may take.
    pub login_timeout: Duration,
    /// The first reconnection delay; it doubles per failed attempt.
    pub initial_reconnect_backoff: Duration,
    /// The bound of the reconnection delay.
    pub max_reconnect_backoff: Duration,
    /// The longest a Logout Response may take.
    pub logout_timeout: Duration,
    /// A command the target has not answered after this long is aborted
    /// (ABORT TASK) and fails with [`super::InitiatorError::CommandTimeout`]
    /// — e.g. one that another initiator's CLEAR TASK SET ended silently.
    /// The clock starts when the command is sent. `None`: wait forever.
    pub command_timeout: Option<Duration>,
    /// A command whose connection is lost this many times fails instead of
    /// being retried again.
    pub max_command_retries: u32,
    /// Redirections (§11.13.5 status class 1) followed per login.
    pub max_redirects: u32,
    /// A planted bug to switch on (simulation only; without the
    /// `planted-bugs` feature this does nothing).
    pub planted: Option<crate::planted::PlantedBug>,
}

impl SessionConfig {
    /// A normal session to `target_name` at `portal`, with
    /// [`initiator_preferences`] and open-iscsi-like timers.
    pub fn new(initiator_name: &str, target_name: &str, portal: SocketAddr) -> SessionConfig {
        SessionConfig {
            initiator_name: initiator_name.to_string(),
            initiator_alias: None,
            target_name: target_name.to_string(),
            portal,
            session_type: SessionType::Normal,
            chap: None,
            mutual: None,
            preferences: initiator_preferences(),
            isid: None,
            replacement_timeout: Duration::from_secs(120),
            nop_interval: Some(Duration::from_secs(5)),
            nop_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(15),
            initial_reconnect_backoff: Duration::from_millis(100),
            max_reconnect_backoff: Duration::from_secs(8),
            logout_timeout: Duration::from_secs(10),
            command_timeout: Some(Duration::from_secs(60)),
            max_command_retries: 16,
            max_redirects: 4,
            planted: None,
        }
    }

    /// A discovery session (SessionType=Discovery, §13.21) at `portal`.
    pub fn discovery(initiator_name: &str, portal: SocketAddr) -> SessionConfig {
        SessionConfig {
            session_type: SessionType::Discovery,
            ..SessionConfig::new(initiator_name, "", portal)
        }
    }
}

/// What this initiator offers by default: like open-iscsi, InitialR2T=No
/// and ImmediateData=Yes with 256 KiB bursts in, large bursts out, and
/// several outstanding R2Ts; digests accepted but not preferred.
pub fn initiator_preferences() -> Preferences {
    Preferences {
        initial_r2t: false,
        immediate_data: true,
        max_recv_data_segment_length: 262_144,
        max_burst_length: 16_776_192,
        first_burst_length: 262_144,
        max_outstanding_r2t: 8,
        ..Preferences::default()
    }
}
