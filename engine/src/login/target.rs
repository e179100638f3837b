//! The target side of one connection's login phase.

use std::net::SocketAddr;

use crate::pdu::Isid;
use crate::text::{ConnectionParams, Preferences, SessionParams, SessionType};

/// A CHAP account: the name and secret one side proves it knows.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How a target node authenticates initiators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Accounts an initiator may log in with. Empty: AuthMethod=None.
    pub chap_accounts: Vec<Credentials>,
    /// The target's own credentials for mutual CHAP (sent when the
    /// initiator challenges the target).
    pub mutual: Option<Credentials>,
}

/// A target node as the login phase sees it.
#[derive(Debug, Clone)]
pub struct TargetNode {
    pub name: String,
    pub alias: Option<String>,
    pub portal_group_tag: u16,
    pub auth: AuthPolicy,
}

/// What the login phase needs to know of the endpoint: target nodes,
/// access control, and existing sessions (for TSIH checks).
pub trait LoginDirectory {
    /// The target node named `name`, if this endpoint serves it.
    fn target(&self, name: &str) -> Option<TargetNode>;
    /// The authentication policy for discovery sessions.
    fn discovery_auth(&self) -> AuthPolicy;
    /// Whether `initiator` connecting from `peer` may log in to `target`.
    fn authorized(&self, target: &str, initiator: &str, peer: SocketAddr) -> bool;
    /// Whether a session with this TSIH exists for this initiator and ISID
    /// (a non-zero TSIH in a login adds or replaces a connection).
    fn session_exists(&self, tsih: u16, initiator: &str, isid: Isid) -> bool;
}

/// The result of a successful login, for the endpoint to build the
/// full-feature phase from.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub session_type: SessionType,
    pub isid: Isid,
    /// The TSIH the initiator sent (0 for a leading login).
    pub tsih: u16,
    pub cid: u16,
    pub initiator_name: String,
    pub target: Option<TargetNode>,
    pub session: SessionParams,
    pub connection: ConnectionParams,
    /// CmdSN of the leading Login Request: the session's first ExpCmdSN.
    pub cmd_sn: u32,
    /// The CHAP user the initiator authenticated as, if any.
    pub authenticated_user: Option<String>,
}

/// The target's login preferences.
pub type TargetPreferences = Preferences;

/// One step of the target's login state machine.
#[derive(Debug)]
pub enum TargetLoginStep {
    Continue(crate::pdu::Pdu),
    Complete(crate::pdu::Pdu, LoginOutcome),
    Fail(crate::pdu::Pdu, super::status::LoginStatus),
}

/// Temporary stand-in until the login branch lands.
pub struct TargetLogin {
    prefs: Preferences,
    peer: SocketAddr,
}

impl TargetLogin {
    pub fn new(prefs: Preferences, peer: SocketAddr) -> TargetLogin {
        TargetLogin { prefs, peer }
    }

    pub fn handle(
        &mut self,
        req: &crate::pdu::LoginRequest,
        data: &[u8],
        dir: &dyn LoginDirectory,
        _rng: &mut dyn rand::RngCore,
    ) -> TargetLoginStep {
        use crate::pdu::{Header, LoginResponse, Pdu, Stage};
        let text = String::from_utf8_lossy(data).to_string();
        let get = |k: &str| {
            text.split('\0')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
        };
        let initiator = get("InitiatorName").unwrap_or_default();
        let discovery = get("SessionType").as_deref() == Some("Discovery");
        let target = get("TargetName").and_then(|n| dir.target(&n));
        let _ = (&self.prefs, self.peer);
        let resp = LoginResponse {
            transit: true,
            csg: req.csg,
            nsg: Stage::FullFeaturePhase,
            isid: req.isid,
            itt: req.itt,
            ..LoginResponse::default()
        };
        let outcome = LoginOutcome {
            session_type: if discovery {
                SessionType::Discovery
            } else {
                SessionType::Normal
            },
            isid: req.isid,
            tsih: req.tsih,
            cid: req.cid,
            initiator_name: initiator,
            target,
            session: SessionParams::default(),
            connection: ConnectionParams::default(),
            cmd_sn: req.cmd_sn,
            authenticated_user: None,
        };
        TargetLoginStep::Complete(Pdu::bare(Header::LoginResponse(resp)), outcome)
    }
}
