//! The target side of one connection's login phase (RFC 7143 §6.3, §11.12,
//! §11.13, §12).
//!
//! [`TargetLogin`] is fed one Login Request at a time and returns the Login
//! Response to send. It checks the first request (version, InitiatorName,
//! TargetName, access, TSIH), runs the security stage (AuthMethod, CHAP),
//! the operational stage (through a [`Negotiator`]) and the stage
//! transitions, reassembles text continued with the C bit and continues its
//! own long responses. The endpoint stamps StatSN, ExpCmdSN, MaxCmdSN and
//! the TSIH of a new session into the responses.

use std::net::SocketAddr;

use rand::RngCore;

use super::chap::{ChapKeys, TargetChap};
use super::status::LoginStatus;
use super::{ISCSI_VERSION, MAX_LOGIN_PDUS, MAX_LOGIN_TEXT, Outgoing};
use crate::pdu::{Header, Isid, Itt, LoginRequest, LoginResponse, Pdu, Stage};
use crate::text::codec::{decode_pairs, encode_pairs, split_list};
use crate::text::keys::is_security_key;
use crate::text::negotiation::{NegotiationError, Negotiator, Role};
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

impl AuthPolicy {
    /// Whether initiators must authenticate with CHAP.
    pub fn requires_chap(&self) -> bool {
        !self.chap_accounts.is_empty()
    }
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
    /// Session-wide values. For a connection added to an existing session
    /// (`tsih != 0`) the leading-only values here are defaults: the
    /// session's own values stay in force.
    pub session: SessionParams,
    pub connection: ConnectionParams,
    /// CmdSN of the leading Login Request: the session's first ExpCmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN of the last Login Request.
    pub exp_stat_sn: u32,
    /// The CHAP user the initiator authenticated as, if any.
    pub authenticated_user: Option<String>,
    /// The negotiator, for Text negotiation in the full-feature phase.
    pub negotiator: Negotiator,
}

/// The target's login preferences.
pub type TargetPreferences = Preferences;

/// What to do after a Login Request.
#[derive(Debug)]
#[must_use]
pub enum TargetLoginStep {
    /// Send this response; more Login Requests follow.
    Continue(Pdu),
    /// Send this final response (T=1, NSG=FullFeaturePhase): the
    /// connection enters the full-feature phase.
    Complete(Pdu, Box<LoginOutcome>),
    /// Send this response and close the connection: the login failed.
    Fail(Pdu, LoginStatus),
}

/// The identity every Login PDU of one login repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    isid: Isid,
    tsih: u16,
    itt: Itt,
    cid: u16,
}

/// What the first complete request established.
#[derive(Debug, Clone)]
struct Session {
    initiator_name: String,
    session_type: SessionType,
    target: Option<TargetNode>,
    policy: AuthPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    /// AuthMethod not negotiated yet.
    Pending,
    /// AuthMethod=CHAP chosen, the exchange is under way.
    Chap,
    /// The initiator may leave the security stage.
    Done(Option<String>),
}

/// A response being sent in pieces, and what to do after its last piece.
#[derive(Debug, Clone)]
struct Plan {
    out: Outgoing,
    transit: bool,
    nsg: Stage,
}

/// The target side of one connection's login phase.
#[derive(Debug)]
pub struct TargetLogin {
    prefs: Preferences,
    peer: SocketAddr,
    identity: Option<Identity>,
    session: Option<Session>,
    negotiator: Option<Negotiator>,
    stage: Stage,
    auth: Auth,
    chap: TargetChap,
    rx_text: Vec<u8>,
    plan: Option<Plan>,
    pdus: usize,
    pairs: usize,
    cmd_sn: u32,
    exp_stat_sn: u32,
    identity_declared: bool,
    offers_made: bool,
    done: bool,
}

/// The most key=value pairs one login may carry.
const MAX_LOGIN_PAIRS: usize = 1024;

impl TargetLogin {
    pub fn new(prefs: Preferences, peer: SocketAddr) -> TargetLogin {
        TargetLogin {
            prefs,
            peer,
            identity: None,
            session: None,
            negotiator: None,
            stage: Stage::SecurityNegotiation,
            auth: Auth::Pending,
            chap: TargetChap::new(),
            rx_text: Vec::new(),
            plan: None,
            pdus: 0,
            pairs: 0,
            cmd_sn: 0,
            exp_stat_sn: 0,
            identity_declared: false,
            offers_made: false,
            done: false,
        }
    }

    /// Switches a planted bug on (simulation only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: Option<crate::planted::PlantedBug>) {
        self.chap.planted = bug;
    }

    /// The stage the login is in.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether the login has completed or failed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Handles one Login Request with its data segment.
    pub fn handle(
        &mut self,
        req: &LoginRequest,
        data: &[u8],
        dir: &dyn LoginDirectory,
        rng: &mut dyn RngCore,
    ) -> TargetLoginStep {
        match self.step(req, data, dir, rng) {
            Ok(step) => step,
            Err(status) => self.fail(req, status),
        }
    }

    fn step(
        &mut self,
        req: &LoginRequest,
        data: &[u8],
        dir: &dyn LoginDirectory,
        rng: &mut dyn RngCore,
    ) -> Result<TargetLoginStep, LoginStatus> {
        if self.done {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        self.pdus += 1;
        if self.pdus > MAX_LOGIN_PDUS {
            return Err(LoginStatus::OUT_OF_RESOURCES);
        }
        self.check_header(req)?;
        self.exp_stat_sn = req.exp_stat_sn;

        // The initiator fetches the rest of a long response with empty
        // requests (§11.13.2).
        if self.plan.is_some() {
            if !data.is_empty() || req.continue_ {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
            return Ok(self.emit(req));
        }

        if self.rx_text.len() + data.len() > MAX_LOGIN_TEXT {
            return Err(LoginStatus::OUT_OF_RESOURCES);
        }
        self.rx_text.extend_from_slice(data);
        if req.continue_ {
            // §11.12.2: more text follows; answer with an empty response.
            let rsp = Self::response(req, false, false, self.stage, self.stage);
            return Ok(TargetLoginStep::Continue(Pdu::bare(Header::LoginResponse(
                rsp,
            ))));
        }
        let text = std::mem::take(&mut self.rx_text);
        let pairs = decode_pairs(&text).map_err(|_| LoginStatus::INITIATOR_ERROR)?;
        self.pairs += pairs.len();
        if self.pairs > MAX_LOGIN_PAIRS {
            return Err(LoginStatus::OUT_OF_RESOURCES);
        }

        if self.session.is_none() {
            self.first_request(req, &pairs, dir)?;
        }
        let mut answers = Vec::new();
        if !self.identity_declared {
            self.identity_declared = true;
            answers.extend(self.identity_declarations());
        }

        let (security, operational): (Vec<_>, Vec<_>) =
            pairs.into_iter().partition(|(k, _)| is_security_key(k));
        if self.stage == Stage::SecurityNegotiation {
            answers.extend(self.security(&security, rng)?);
        } else if !security.is_empty() {
            // Authentication keys outside the security stage (§6.3).
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        let leave = req.transit && self.may_leave_stage(req)?;
        let negotiator = self.negotiator.as_mut().ok_or(LoginStatus::TARGET_ERROR)?;
        answers.extend(
            negotiator
                .handle(&operational)
                .map_err(negotiation_status)?,
        );
        if self.stage == Stage::LoginOperationalNegotiation && !self.offers_made {
            self.offers_made = true;
            answers.extend(negotiator.take_offers());
        }

        let transit = leave && negotiator.is_settled();
        if transit && req.nsg == Stage::FullFeaturePhase {
            negotiator.finish().map_err(negotiation_status)?;
        }
        self.plan = Some(Plan {
            out: Outgoing::new(encode_pairs(&answers)),
            transit,
            nsg: req.nsg,
        });
        Ok(self.emit(req))
    }

    /// Checks the header against the login's rules: version (first PDU),
    /// the same ISID/TSIH/ITT/CID throughout, and the stage fields.
    fn check_header(&mut self, req: &LoginRequest) -> Result<(), LoginStatus> {
        let identity = Identity {
            isid: req.isid,
            tsih: req.tsih,
            itt: req.itt,
            cid: req.cid,
        };
        match self.identity {
            None => {
                // §11.12.4: the target answers 0x0205 when it supports no
                // version in [Version-min, Version-max].
                if !(req.version_min..=req.version_max).contains(&ISCSI_VERSION) {
                    return Err(LoginStatus::UNSUPPORTED_VERSION);
                }
                if !matches!(
                    req.csg,
                    Stage::SecurityNegotiation | Stage::LoginOperationalNegotiation
                ) {
                    return Err(LoginStatus::INITIATOR_ERROR);
                }
                self.identity = Some(identity);
                self.cmd_sn = req.cmd_sn;
                self.stage = req.csg;
            }
            Some(first) if first != identity => return Err(LoginStatus::INITIATOR_ERROR),
            Some(_) => {}
        }
        if req.csg != self.stage {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        if req.continue_ && req.transit {
            // §11.12.2: a request with C=1 must have T=0.
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        if req.transit {
            let valid = match req.csg {
                Stage::SecurityNegotiation => matches!(
                    req.nsg,
                    Stage::LoginOperationalNegotiation | Stage::FullFeaturePhase
                ),
                Stage::LoginOperationalNegotiation => req.nsg == Stage::FullFeaturePhase,
                _ => false,
            };
            if !valid {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
        }
        Ok(())
    }

    /// The checks of the first complete request (§6.3, §11.13.5):
    /// InitiatorName, SessionType, TargetName, access, TSIH, and whether
    /// the initiator may skip the security stage.
    fn first_request(
        &mut self,
        req: &LoginRequest,
        pairs: &[(String, String)],
        dir: &dyn LoginDirectory,
    ) -> Result<(), LoginStatus> {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let initiator_name = match get("InitiatorName") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err(LoginStatus::MISSING_PARAMETER),
        };
        let session_type = match get("SessionType") {
            None => SessionType::Normal,
            Some(v) => SessionType::from_value(v).ok_or(LoginStatus::SESSION_TYPE_NOT_SUPPORTED)?,
        };
        let (target, policy) = match session_type {
            SessionType::Discovery => (None, dir.discovery_auth()),
            SessionType::Normal => {
                let name = match get("TargetName") {
                    Some(n) if !n.is_empty() => n,
                    _ => return Err(LoginStatus::MISSING_PARAMETER),
                };
                let node = dir.target(name).ok_or(LoginStatus::NOT_FOUND)?;
                if !dir.authorized(&node.name, &initiator_name, self.peer) {
                    return Err(LoginStatus::AUTHORIZATION_FAILURE);
                }
                let policy = node.auth.clone();
                (Some(node), policy)
            }
        };
        if req.tsih != 0 && !dir.session_exists(req.tsih, &initiator_name, req.isid) {
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        }
        if req.csg == Stage::LoginOperationalNegotiation {
            if policy.requires_chap() {
                // The initiator skipped the security stage (§6.3).
                return Err(LoginStatus::AUTHENTICATION_FAILURE);
            }
            self.auth = Auth::Done(None);
        }
        let mut negotiator = Negotiator::new(Role::Target, self.prefs.clone(), session_type);
        negotiator.set_leading(req.tsih == 0);
        self.negotiator = Some(negotiator);
        self.session = Some(Session {
            initiator_name,
            session_type,
            target,
            policy,
        });
        Ok(())
    }

    /// TargetPortalGroupTag (§13.9: in the first response of a normal
    /// session) and TargetAlias.
    fn identity_declarations(&self) -> Vec<(String, String)> {
        let Some(node) = self.session.as_ref().and_then(|s| s.target.as_ref()) else {
            return Vec::new();
        };
        let mut out = vec![(
            "TargetPortalGroupTag".to_string(),
            node.portal_group_tag.to_string(),
        )];
        if let Some(alias) = &node.alias {
            out.push(("TargetAlias".to_string(), alias.clone()));
        }
        out
    }

    /// AuthMethod (§12.1) and the CHAP exchange (§12.1.3).
    fn security(
        &mut self,
        pairs: &[(String, String)],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<(String, String)>, LoginStatus> {
        let session = self.session.as_ref().ok_or(LoginStatus::TARGET_ERROR)?;
        let required = session.policy.requires_chap();
        let mut methods = pairs.iter().filter(|(k, _)| k == "AuthMethod");
        let method = methods.next().map(|(_, v)| v.as_str());
        if methods.next().is_some() {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        let mut answers = Vec::new();
        if let Some(offered) = method {
            if self.auth != Auth::Pending {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
            let wanted = if required { "CHAP" } else { "None" };
            if !split_list(offered).any(|m| m == wanted) {
                return Err(LoginStatus::AUTHENTICATION_FAILURE);
            }
            answers.push(("AuthMethod".to_string(), wanted.to_string()));
            self.auth = if required {
                Auth::Chap
            } else {
                Auth::Done(None)
            };
        }
        let keys = ChapKeys::from_pairs(pairs).map_err(|_| LoginStatus::AUTHENTICATION_FAILURE)?;
        if !keys.is_empty() {
            if self.auth != Auth::Chap {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
            let reply = self
                .chap
                .handle(
                    &keys,
                    &session.policy.chap_accounts,
                    session.policy.mutual.as_ref(),
                    rng,
                )
                .map_err(|_| LoginStatus::AUTHENTICATION_FAILURE)?;
            answers.extend(reply.pairs);
            if let Some(user) = reply.authenticated {
                self.auth = Auth::Done(Some(user));
            }
        }
        Ok(answers)
    }

    /// Whether the target agrees to leave the current stage.
    fn may_leave_stage(&self, req: &LoginRequest) -> Result<bool, LoginStatus> {
        if req.csg != Stage::SecurityNegotiation {
            return Ok(true);
        }
        match &self.auth {
            Auth::Done(_) => Ok(true),
            Auth::Chap => Ok(false),
            Auth::Pending => {
                let required = self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.policy.requires_chap());
                if required {
                    // Leaving security without authenticating (§12.1).
                    Err(LoginStatus::AUTHENTICATION_FAILURE)
                } else {
                    Ok(true)
                }
            }
        }
    }

    /// Sends the next piece of the planned response; after the last one,
    /// moves to the next stage or completes the login.
    fn emit(&mut self, req: &LoginRequest) -> TargetLoginStep {
        let Some(plan) = self.plan.as_mut() else {
            return self.fail(req, LoginStatus::TARGET_ERROR);
        };
        let (chunk, more) = plan.out.next_chunk();
        if more {
            let rsp = Self::response(req, false, true, self.stage, self.stage);
            return TargetLoginStep::Continue(Pdu::new(Header::LoginResponse(rsp), chunk));
        }
        let (transit, nsg) = (plan.transit && req.transit, plan.nsg);
        self.plan = None;
        let csg = self.stage;
        let rsp = Self::response(req, transit, false, csg, if transit { nsg } else { csg });
        let pdu = Pdu::new(Header::LoginResponse(rsp), chunk);
        if !transit {
            return TargetLoginStep::Continue(pdu);
        }
        self.stage = nsg;
        if nsg != Stage::FullFeaturePhase {
            return TargetLoginStep::Continue(pdu);
        }
        match self.outcome() {
            Some(outcome) => {
                self.done = true;
                TargetLoginStep::Complete(pdu, Box::new(outcome))
            }
            None => self.fail(req, LoginStatus::TARGET_ERROR),
        }
    }

    fn outcome(&mut self) -> Option<LoginOutcome> {
        let identity = self.identity?;
        let session = self.session.take()?;
        let mut negotiator = self.negotiator.take()?;
        let mut params = negotiator.session_params();
        params.session_type = session.session_type;
        params.initiator_name = session.initiator_name.clone();
        if let Some(node) = &session.target {
            params.target_name = Some(node.name.clone());
            params.target_alias = node.alias.clone();
            params.target_portal_group_tag = node.portal_group_tag;
        }
        let connection = negotiator.connection_params();
        negotiator.enter_full_feature();
        let authenticated_user = match &self.auth {
            Auth::Done(user) => user.clone(),
            _ => None,
        };
        Some(LoginOutcome {
            session_type: session.session_type,
            isid: identity.isid,
            tsih: identity.tsih,
            cid: identity.cid,
            initiator_name: session.initiator_name,
            target: session.target,
            session: params,
            connection,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            authenticated_user,
            negotiator,
        })
    }

    fn response(
        req: &LoginRequest,
        transit: bool,
        continue_: bool,
        csg: Stage,
        nsg: Stage,
    ) -> LoginResponse {
        LoginResponse {
            transit,
            continue_,
            csg,
            nsg,
            version_max: ISCSI_VERSION,
            version_active: ISCSI_VERSION,
            isid: req.isid,
            tsih: req.tsih,
            itt: req.itt,
            ..LoginResponse::default()
        }
    }

    /// Ends the login with a status (§11.13.5); the connection is closed
    /// after the response.
    fn fail(&mut self, req: &LoginRequest, status: LoginStatus) -> TargetLoginStep {
        self.done = true;
        self.plan = None;
        let csg = match req.csg {
            Stage::SecurityNegotiation | Stage::LoginOperationalNegotiation => req.csg,
            _ => self.stage,
        };
        let mut rsp = Self::response(req, false, false, csg, csg);
        rsp.status_class = status.class();
        rsp.status_detail = status.detail();
        TargetLoginStep::Fail(Pdu::bare(Header::LoginResponse(rsp)), status)
    }
}

/// The status a negotiation failure ends the login with.
fn negotiation_status(err: NegotiationError) -> LoginStatus {
    match err {
        NegotiationError::TooManyKeys(_) => LoginStatus::OUT_OF_RESOURCES,
        _ => LoginStatus::INITIATOR_ERROR,
    }
}
