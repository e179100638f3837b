//! The initiator side of one connection's login phase (RFC 7143 §6.3,
//! §11.12, §11.13, §12).
//!
//! [`InitiatorLogin`] builds the first Login Request with [`InitiatorLogin::start`]
//! and is then fed each Login Response. Like Linux open-iscsi it opens with
//! the security stage (AuthMethod=CHAP when it has credentials, None
//! otherwise), offers every operational key in its first operational
//! request, answers what the target offers, authenticates the target when
//! mutual CHAP is configured, and reports redirection and failure statuses
//! as a typed [`LoginError`].

use std::collections::BTreeSet;

use rand::RngCore;

use super::chap::{ChapError, ChapKeys, InitiatorChap};
use super::status::LoginStatus;
use super::target::Credentials;
use super::{ISCSI_VERSION, MAX_LOGIN_PDUS, MAX_LOGIN_TEXT, Outgoing};
use crate::pdu::{Header, Isid, Itt, LoginRequest, LoginResponse, Pdu, Stage};
use crate::text::codec::{TextError, decode_pairs, encode_pairs};
use crate::text::keys::is_security_key;
use crate::text::negotiation::{
    IRRELEVANT, NOT_UNDERSTOOD, NegotiationError, Negotiator, REJECT, Role,
};
use crate::text::{ConnectionParams, Preferences, SessionParams, SessionType};

/// What the initiator logs in with.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    pub initiator_name: String,
    pub initiator_alias: Option<String>,
    pub isid: Isid,
    /// 0 for a new session; the session's TSIH to add or replace a
    /// connection.
    pub tsih: u16,
    pub cid: u16,
    /// The Initiator Task Tag of every Login PDU of this login.
    pub itt: Itt,
    pub session_type: SessionType,
    /// Required for a normal session.
    pub target_name: Option<String>,
    /// This initiator's CHAP account, sent when the target selects CHAP.
    pub chap: Option<Credentials>,
    /// The target's credentials for mutual CHAP: when set, the target must
    /// authenticate itself, and AuthMethod=None is refused.
    pub mutual_chap: Option<Credentials>,
    pub prefs: Preferences,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    /// Extension keys (`X-...`) to offer in the first operational request.
    pub extra_keys: Vec<(String, String)>,
}

impl InitiatorConfig {
    /// A leading login (TSIH 0, CID 0, ITT 0, CmdSN 1) of `session_type`
    /// with AuthMethod None and default preferences; `target_name` is
    /// required for a normal session (RFC 7143 §6.3.1, §13.4).
    pub fn leading(
        initiator_name: &str,
        isid: Isid,
        session_type: SessionType,
        target_name: Option<&str>,
    ) -> InitiatorConfig {
        InitiatorConfig {
            initiator_name: initiator_name.into(),
            initiator_alias: None,
            isid,
            tsih: 0,
            cid: 0,
            itt: 0,
            session_type,
            target_name: target_name.map(str::to_string),
            chap: None,
            mutual_chap: None,
            prefs: Preferences::default(),
            cmd_sn: 1,
            exp_stat_sn: 0,
            extra_keys: Vec::new(),
        }
    }
}

/// Why the login failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Status class 1 (§11.13.5): log in again at `address`.
    #[error("target moved to {address} (permanently: {permanent})")]
    Redirect { address: String, permanent: bool },
    /// Status class 2 (initiator error) or 3 (target error).
    #[error("login refused: {status}")]
    Refused { status: LoginStatus },
    /// The target chose an AuthMethod this initiator cannot use.
    #[error("target selected AuthMethod={0}")]
    AuthMethod(String),
    /// CHAP failed on this side (e.g. the target failed mutual CHAP).
    #[error("CHAP: {0}")]
    Chap(#[from] ChapError),
    #[error("negotiation: {0}")]
    Negotiation(#[from] NegotiationError),
    #[error("login text: {0}")]
    Text(#[from] TextError),
    /// The target broke the login rules.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl LoginError {
    /// The status the target sent, for failures the target reported.
    pub fn status(&self) -> Option<LoginStatus> {
        match self {
            LoginError::Refused { status } => Some(*status),
            LoginError::Redirect { permanent, .. } => Some(if *permanent {
                LoginStatus::TARGET_MOVED_PERMANENTLY
            } else {
                LoginStatus::TARGET_MOVED_TEMPORARILY
            }),
            _ => None,
        }
    }

    /// The status class (§11.13.5): 1 redirection, 2 initiator error,
    /// 3 target error.
    pub fn status_class(&self) -> Option<u8> {
        self.status().map(LoginStatus::class)
    }
}

/// What the login established.
#[derive(Debug, Clone)]
pub struct InitiatorOutcome {
    /// The session's TSIH, from the final response.
    pub tsih: u16,
    pub isid: Isid,
    pub cid: u16,
    pub session: SessionParams,
    pub connection: ConnectionParams,
    /// CmdSN of the first full-feature command (the login's, §4.2.2.1).
    pub cmd_sn: u32,
    /// StatSN of the final response + 1.
    pub exp_stat_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    /// The TargetPortalGroupTag the target declared (§13.9).
    pub target_portal_group_tag: Option<u16>,
    pub target_alias: Option<String>,
    /// The negotiator, for Text negotiation in the full-feature phase.
    pub negotiator: Negotiator,
}

/// What to do after a Login Response.
#[derive(Debug)]
#[must_use]
pub enum InitiatorLoginStep {
    /// Send this Login Request.
    Send(Pdu),
    /// The login succeeded: the connection is in the full-feature phase.
    Complete(Box<InitiatorOutcome>),
    /// The login failed; close the connection.
    Failed(LoginError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// AuthMethod offered, no answer yet.
    AwaitMethod,
    /// CHAP_A sent, awaiting the challenge.
    AwaitChallenge,
    /// CHAP_R sent, awaiting the target's verdict (and mutual answer).
    AwaitVerdict,
    /// The target may let us leave the security stage.
    Done,
}

/// The initiator side of one connection's login phase.
#[derive(Debug)]
pub struct InitiatorLogin {
    cfg: InitiatorConfig,
    negotiator: Negotiator,
    chap: InitiatorChap,
    stage: Stage,
    security: Security,
    /// The T bit and NSG of the request being sent.
    transit: bool,
    nsg: Stage,
    outgoing: Option<Outgoing>,
    rx_text: Vec<u8>,
    extra_pending: BTreeSet<String>,
    tpgt: Option<u16>,
    target_alias: Option<String>,
    exp_stat_sn: u32,
    pdus: usize,
    done: bool,
}

impl InitiatorLogin {
    pub fn new(cfg: InitiatorConfig) -> InitiatorLogin {
        let mut negotiator = Negotiator::new(Role::Initiator, cfg.prefs.clone(), cfg.session_type);
        negotiator.set_leading(cfg.tsih == 0);
        InitiatorLogin {
            exp_stat_sn: cfg.exp_stat_sn,
            negotiator,
            chap: InitiatorChap::new(),
            stage: Stage::SecurityNegotiation,
            security: Security::AwaitMethod,
            transit: true,
            nsg: Stage::LoginOperationalNegotiation,
            outgoing: None,
            rx_text: Vec::new(),
            extra_pending: BTreeSet::new(),
            tpgt: None,
            target_alias: None,
            pdus: 0,
            done: false,
            cfg,
        }
    }

    /// The first Login Request: the names, SessionType and AuthMethod, in
    /// the security stage with T=1 towards the operational stage.
    pub fn start(&mut self) -> Pdu {
        let c = &self.cfg;
        let mut pairs = vec![("InitiatorName".to_string(), c.initiator_name.clone())];
        if let Some(alias) = &c.initiator_alias {
            pairs.push(("InitiatorAlias".to_string(), alias.clone()));
        }
        if c.session_type == SessionType::Normal {
            if let Some(name) = &c.target_name {
                pairs.push(("TargetName".to_string(), name.clone()));
            }
        }
        if c.tsih == 0 {
            // SessionType is leading-only (§13.21).
            pairs.push((
                "SessionType".to_string(),
                c.session_type.as_str().to_string(),
            ));
        }
        let methods = match (&c.chap, &c.mutual_chap) {
            (Some(_), Some(_)) => "CHAP",
            (Some(_), None) => "CHAP,None",
            (None, _) => "None",
        };
        pairs.push(("AuthMethod".to_string(), methods.to_string()));
        self.send(pairs, true, Stage::LoginOperationalNegotiation)
    }

    /// Handles one Login Response with its data segment.
    pub fn handle(
        &mut self,
        rsp: &LoginResponse,
        data: &[u8],
        rng: &mut dyn RngCore,
    ) -> InitiatorLoginStep {
        match self.step(rsp, data, rng) {
            Ok(step) => step,
            Err(e) => {
                self.done = true;
                InitiatorLoginStep::Failed(e)
            }
        }
    }

    fn step(
        &mut self,
        rsp: &LoginResponse,
        data: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<InitiatorLoginStep, LoginError> {
        if self.done {
            return Err(LoginError::Protocol("login already over"));
        }
        self.pdus += 1;
        if self.pdus > MAX_LOGIN_PDUS {
            return Err(LoginError::Protocol("login does not converge"));
        }
        if rsp.isid != self.cfg.isid || rsp.itt != self.cfg.itt {
            return Err(LoginError::Protocol("response for another login"));
        }
        let status = LoginStatus::from_parts(rsp.status_class, rsp.status_detail);
        if status != LoginStatus::SUCCESS {
            return Err(self.refusal(status, data));
        }
        if rsp.version_active != ISCSI_VERSION {
            return Err(LoginError::Protocol("unsupported Version-active"));
        }
        self.exp_stat_sn = rsp.stat_sn.wrapping_add(1);

        // Our own long request: the target acknowledges each piece.
        if let Some(out) = self.outgoing.as_mut() {
            if !data.is_empty() || rsp.transit || rsp.continue_ {
                return Err(LoginError::Protocol("text during a continued request"));
            }
            let (chunk, more) = out.next_chunk();
            if !more {
                self.outgoing = None;
            }
            return Ok(InitiatorLoginStep::Send(self.request(chunk, more)));
        }

        if self.rx_text.len() + data.len() > MAX_LOGIN_TEXT {
            return Err(LoginError::Protocol("login text too long"));
        }
        self.rx_text.extend_from_slice(data);
        if rsp.continue_ {
            if rsp.transit {
                return Err(LoginError::Protocol("C and T both set"));
            }
            // Fetch the rest with an empty request (§11.13.2).
            return Ok(InitiatorLoginStep::Send(
                self.request(bytes::Bytes::new(), false),
            ));
        }
        if rsp.csg != self.stage {
            return Err(LoginError::Protocol("response for another stage"));
        }
        let text = std::mem::take(&mut self.rx_text);
        let mut pairs = decode_pairs(&text)?;
        // Answers to our extension keys, and a target's Reject of one of
        // our declarations, are not for the negotiator.
        pairs.retain(|(k, v)| {
            let declared = matches!(
                k.as_str(),
                "InitiatorName" | "InitiatorAlias" | "TargetName" | "SessionType"
            );
            let extension_answer = self.extra_pending.remove(k);
            let rejected_declaration = declared && is_reserved(v);
            !(extension_answer || rejected_declaration)
        });
        self.note_declarations(&pairs);
        let (security, operational): (Vec<_>, Vec<_>) =
            pairs.into_iter().partition(|(k, _)| is_security_key(k));

        let mut out = Vec::new();
        if self.stage == Stage::SecurityNegotiation {
            out.extend(self.security(&security, rng)?);
        } else if !security.is_empty() {
            return Err(LoginError::Protocol(
                "security key after the security stage",
            ));
        }
        out.extend(self.negotiator.handle(&operational)?);

        if !rsp.transit {
            // T=0 only while choosing the CHAP algorithm, as libiscsi and
            // open-iscsi do.
            let transit = self.security != Security::AwaitChallenge
                || self.stage != Stage::SecurityNegotiation;
            let nsg = self.nsg;
            return Ok(InitiatorLoginStep::Send(self.send(out, transit, nsg)));
        }

        // The target agrees to leave the stage.
        if !self.transit || rsp.nsg != self.nsg {
            return Err(LoginError::Protocol(
                "transit the initiator did not ask for",
            ));
        }
        if self.negotiator.replies_required() {
            return Err(LoginError::Protocol("offers in a transit response"));
        }
        if self.stage == Stage::SecurityNegotiation {
            self.leave_security()?;
        }
        self.stage = rsp.nsg;
        if rsp.nsg == Stage::FullFeaturePhase {
            return Ok(InitiatorLoginStep::Complete(Box::new(self.complete(rsp)?)));
        }
        // Entering the operational stage: offer every key (and the
        // caller's extension keys).
        out.extend(self.negotiator.take_offers());
        for (k, v) in &self.cfg.extra_keys {
            self.extra_pending.insert(k.clone());
            out.push((k.clone(), v.clone()));
        }
        Ok(InitiatorLoginStep::Send(self.send(
            out,
            true,
            Stage::FullFeaturePhase,
        )))
    }

    /// AuthMethod answer and the CHAP exchange, in the security stage.
    fn security(
        &mut self,
        pairs: &[(String, String)],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<(String, String)>, LoginError> {
        let keys = ChapKeys::from_pairs(pairs)?;
        let method = pairs
            .iter()
            .find(|(k, _)| k == "AuthMethod")
            .map(|(_, v)| v.as_str());
        let mut out = Vec::new();
        if let Some(method) = method {
            if self.security != Security::AwaitMethod {
                return Err(LoginError::Protocol("AuthMethod answered twice"));
            }
            match method {
                "CHAP" if self.cfg.chap.is_some() => {
                    out.push(InitiatorChap::algorithm_offer());
                    self.security = Security::AwaitChallenge;
                }
                "None" if self.cfg.mutual_chap.is_none() => self.security = Security::Done,
                other => return Err(LoginError::AuthMethod(other.chars().take(64).collect())),
            }
        }
        match self.security {
            Security::AwaitChallenge if keys.c.is_some() || keys.a.is_some() => {
                let creds = self
                    .cfg
                    .chap
                    .as_ref()
                    .ok_or(ChapError::Unexpected("CHAP_C"))?;
                out.extend(
                    self.chap
                        .respond(&keys, creds, self.cfg.mutual_chap.as_ref(), rng)?,
                );
                self.security = Security::AwaitVerdict;
            }
            Security::AwaitVerdict if keys.n.is_some() || keys.r.is_some() => {
                let expected = self
                    .cfg
                    .mutual_chap
                    .as_ref()
                    .ok_or(ChapError::Unexpected("CHAP_R"))?;
                self.chap.verify_target(&keys, expected)?;
            }
            _ if !keys.is_empty() => return Err(ChapError::Unexpected("CHAP key").into()),
            _ => {}
        }
        Ok(out)
    }

    /// Checks that the target may let us out of the security stage.
    fn leave_security(&mut self) -> Result<(), LoginError> {
        match self.security {
            Security::Done => Ok(()),
            Security::AwaitVerdict if !self.chap.awaiting_target() => Ok(()),
            Security::AwaitVerdict => Err(ChapError::MutualMissing.into()),
            Security::AwaitMethod if self.cfg.mutual_chap.is_none() => Ok(()),
            _ => Err(LoginError::Protocol("security stage left unauthenticated")),
        }
    }

    /// Records TargetPortalGroupTag and TargetAlias (any stage).
    fn note_declarations(&mut self, pairs: &[(String, String)]) {
        for (k, v) in pairs {
            match k.as_str() {
                "TargetPortalGroupTag" => self.tpgt = v.parse().ok(),
                "TargetAlias" => self.target_alias = Some(v.clone()),
                _ => {}
            }
        }
    }

    fn complete(&mut self, rsp: &LoginResponse) -> Result<InitiatorOutcome, LoginError> {
        self.negotiator.finish()?;
        self.done = true;
        let mut session = self.negotiator.session_params();
        session.session_type = self.cfg.session_type;
        session.initiator_name = self.cfg.initiator_name.clone();
        session.initiator_alias = self.cfg.initiator_alias.clone();
        session.target_name = self.cfg.target_name.clone();
        session.target_alias = self.target_alias.clone();
        if let Some(tag) = self.tpgt {
            session.target_portal_group_tag = tag;
        }
        let connection = self.negotiator.connection_params();
        let mut negotiator = self.negotiator.clone();
        negotiator.enter_full_feature();
        Ok(InitiatorOutcome {
            tsih: rsp.tsih,
            isid: self.cfg.isid,
            cid: self.cfg.cid,
            session,
            connection,
            cmd_sn: self.cfg.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            exp_cmd_sn: rsp.exp_cmd_sn,
            max_cmd_sn: rsp.max_cmd_sn,
            target_portal_group_tag: self.tpgt,
            target_alias: self.target_alias.clone(),
            negotiator,
        })
    }

    /// The error for a non-zero status (§11.13.5).
    fn refusal(&self, status: LoginStatus, data: &[u8]) -> LoginError {
        if status.class() == 1 {
            let address = decode_pairs(data).ok().and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(k, _)| k == "TargetAddress")
                    .map(|(_, v)| v)
            });
            return match address {
                Some(address) => LoginError::Redirect {
                    address,
                    permanent: status == LoginStatus::TARGET_MOVED_PERMANENTLY,
                },
                None => LoginError::Protocol("redirection without TargetAddress"),
            };
        }
        LoginError::Refused { status }
    }

    /// Starts sending `pairs` with the given T bit and NSG, in pieces if
    /// the text is long.
    fn send(&mut self, pairs: Vec<(String, String)>, transit: bool, nsg: Stage) -> Pdu {
        self.transit = transit;
        self.nsg = nsg;
        let mut out = Outgoing::new(encode_pairs(&pairs));
        let (chunk, more) = out.next_chunk();
        if more {
            self.outgoing = Some(out);
        }
        self.request(chunk, more)
    }

    fn request(&self, data: bytes::Bytes, continue_: bool) -> Pdu {
        let c = &self.cfg;
        let transit = self.transit && !continue_;
        let req = LoginRequest {
            transit,
            continue_,
            csg: self.stage,
            nsg: if transit { self.nsg } else { self.stage },
            version_max: ISCSI_VERSION,
            version_min: ISCSI_VERSION,
            isid: c.isid,
            tsih: c.tsih,
            itt: c.itt,
            cid: c.cid,
            cmd_sn: c.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
        };
        Pdu::new(Header::LoginRequest(req), data)
    }
}

fn is_reserved(value: &str) -> bool {
    matches!(value, REJECT | IRRELEVANT | NOT_UNDERSTOOD)
}
