//! Negotiation of operational keys (RFC 7143 §6.2, §13): the responder's
//! answer to each offer and the originator's handling of answers.
//!
//! One [`Negotiator`] serves one negotiation sequence: a connection's login
//! (all its PDUs), or a Text exchange in the full-feature phase. It plays
//! both parts at once, because either side may offer keys: what the peer
//! sends is an *answer* when this side has an outstanding offer of that key,
//! and an *offer* (or a declaration) otherwise.
//!
//! Responder rules (§6.2.1, §6.2.2): for a list, the first of the offered
//! values this side supports, else `Reject`; numerical keys take the
//! minimum or maximum of both values; Boolean keys the AND or OR; values
//! out of range or malformed are answered `Reject`; unknown keys
//! `NotUnderstood`; keys that don't apply (§13 "Irrelevant when")
//! `Irrelevant`. Declarative keys are recorded and need no answer.
//! A key negotiated twice in one sequence is a [`NegotiationError::Duplicate`].

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{format_bool, parse_bool, parse_number, split_list};
use super::keys::{self, KeyDef, KeyKind, Senders, Usage};
use super::params::{ConnectionParams, SessionParams, SessionType, TaskReporting};

/// The reserved answer constants (§6.2).
pub const REJECT: &str = "Reject";
pub const IRRELEVANT: &str = "Irrelevant";
pub const NOT_UNDERSTOOD: &str = "NotUnderstood";

/// How many distinct keys one sequence may carry before it is refused: a
/// bound against a peer that sends keys without end.
pub const MAX_KEYS: usize = 256;

/// Which side of the negotiation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Target,
}

/// Login or full-feature phase: the phase decides which keys may be used
/// (§13 preamble: LO, IO, ALL, FFPO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Login,
    FullFeature,
}

/// What this side offers and accepts.
///
/// Lists are in order of preference; a value missing from a list is one
/// this side refuses (e.g. `header_digest: ["CRC32C"]` requires digests).
/// Numbers are limits: the negotiated MaxBurstLength never exceeds
/// `max_burst_length`, DefaultTime2Wait is never below `default_time2wait`.
/// Boolean keys are forced where the result function allows it:
/// `immediate_data: false` always yields ImmediateData=No (AND) and
/// `initial_r2t: true` always yields InitialR2T=Yes (OR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Acceptable header digests in order of preference ("CRC32C", "None").
    pub header_digest: Vec<String>,
    /// Acceptable data digests in order of preference.
    pub data_digest: Vec<String>,
    pub max_connections: u16,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_recv_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub default_time2wait: u16,
    pub default_time2retain: u16,
    pub max_outstanding_r2t: u16,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub error_recovery_level: u8,
    pub iscsi_protocol_level: u8,
    /// Acceptable TaskReporting values (§13.23) in order of preference.
    pub task_reporting: Vec<String>,
}

impl Default for Preferences {
    /// The RFC's defaults, both digests accepted (None preferred), and a
    /// 256 KiB receive segment like Linux open-iscsi's.
    fn default() -> Self {
        Preferences {
            header_digest: vec!["None".into(), "CRC32C".into()],
            data_digest: vec!["None".into(), "CRC32C".into()],
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            max_recv_data_segment_length: 262_144,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
            iscsi_protocol_level: 1,
            task_reporting: vec!["RFC3720".into()],
        }
    }
}

/// A negotiation failure that ends the login (or the Text exchange).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    #[error("key {0} negotiated more than once")]
    Duplicate(String),
    #[error("peer answered {key}={value}, which breaks the negotiation rules")]
    BadAnswer { key: String, value: String },
    #[error("peer rejected {0}, which this side requires")]
    Required(String),
    #[error("peer offered the reserved value {key}={value}")]
    InvalidOffer { key: String, value: String },
    #[error("more than {0} keys in one negotiation")]
    TooManyKeys(usize),
}

/// One offer of ours awaiting its answer.
#[derive(Debug, Clone)]
struct Offer {
    value: String,
    /// False when the result is already determined (AND offered "No", OR
    /// offered "Yes", §6.2.2): the peer may omit the answer.
    required: bool,
}

/// The negotiation state of one login (or one Text exchange).
#[derive(Debug, Clone)]
pub struct Negotiator {
    role: Role,
    prefs: Preferences,
    session_type: SessionType,
    leading: bool,
    phase: Phase,
    session: SessionParams,
    conn: ConnectionParams,
    /// Keys the peer offered or declared in this sequence, with the value.
    received: BTreeMap<String, String>,
    /// Our offers awaiting answers.
    offered: BTreeMap<&'static str, Offer>,
    /// Keys of ours whose negotiation the peer's answer completed.
    answered: BTreeSet<&'static str>,
    /// Keys this side declared in this sequence.
    declared: BTreeSet<&'static str>,
    offers_made: bool,
    send_targets: Option<String>,
    replies_required: bool,
}

impl Negotiator {
    /// A negotiator for the login of a session's leading connection.
    pub fn new(role: Role, prefs: Preferences, session_type: SessionType) -> Negotiator {
        let session = SessionParams {
            session_type,
            ..SessionParams::default()
        };
        Negotiator {
            role,
            prefs,
            session_type,
            leading: true,
            phase: Phase::Login,
            session,
            // Both directions stay at the default 8192 until declared.
            conn: ConnectionParams::default(),
            received: BTreeMap::new(),
            offered: BTreeMap::new(),
            answered: BTreeSet::new(),
            declared: BTreeSet::new(),
            offers_made: false,
            send_targets: None,
            replies_required: false,
        }
    }

    /// A negotiator for Text exchanges in the full-feature phase (§6.2:
    /// only keys of use ALL or FFPO; LO and IO keys are answered `Reject`),
    /// starting from the values the login negotiated.
    pub fn full_feature(
        role: Role,
        prefs: Preferences,
        session: SessionParams,
        conn: ConnectionParams,
    ) -> Negotiator {
        let mut n = Negotiator::new(role, prefs, session.session_type);
        n.session = session;
        n.conn = conn;
        n.phase = Phase::FullFeature;
        n.offers_made = true;
        n
    }

    /// Marks the login as one that adds a connection to an existing
    /// session (TSIH ≠ 0): leading-only keys are then answered `Reject`.
    pub fn set_leading(&mut self, leading: bool) {
        self.leading = leading;
    }

    /// Ends the login: from now on this negotiator serves Text exchanges.
    pub fn enter_full_feature(&mut self) {
        self.phase = Phase::FullFeature;
        self.begin_exchange();
    }

    /// Starts a new negotiation sequence (a new Text exchange): keys may be
    /// negotiated again, as §6.2 allows for keys of use ALL.
    pub fn begin_exchange(&mut self) {
        self.received.clear();
        self.offered.clear();
        self.answered.clear();
        self.declared.clear();
        self.offers_made = self.phase == Phase::FullFeature;
        self.send_targets = None;
        self.replies_required = false;
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn session_type(&self) -> SessionType {
        self.session_type
    }

    pub fn preferences(&self) -> &Preferences {
        &self.prefs
    }

    /// The value of SendTargets (§13.3) the initiator sent in this
    /// exchange. SendTargets is not answered by the negotiator: the
    /// endpoint builds the TargetName/TargetAddress records.
    pub fn send_targets(&self) -> Option<&str> {
        self.send_targets.as_deref()
    }

    /// Whether the answers of the last [`Negotiator::handle`] must reach the
    /// peer (as opposed to declarations and answers the RFC makes optional).
    pub fn replies_required(&self) -> bool {
        self.replies_required
    }

    /// Processes the keys of one complete request or response and returns
    /// the pairs to send back (answers to the peer's offers).
    pub fn handle(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, NegotiationError> {
        let mut answers: Vec<(String, String)> = Vec::new();
        self.replies_required = false;
        let fbl_before = self.session.first_burst_length;
        let mut fbl_answer = None;
        let mut fbl_answered_by_peer = false;
        for (key, value) in pairs {
            if let Some((name, offer)) = self.offered.remove_entry(key.as_str()) {
                self.handle_answer(name, &offer, value)?;
                self.answered.insert(name);
                fbl_answered_by_peer |= name == "FirstBurstLength" && parse_number(value).is_ok();
                continue;
            }
            if self.answered.contains(key.as_str()) {
                return Err(NegotiationError::Duplicate(key.clone()));
            }
            let def = keys::lookup(key);
            if let Some(previous) = self.received.get(key) {
                // A repeated declaration of the same value is harmless
                // (libiscsi repeats InitiatorName in each login stage).
                let declarative = def.is_some_and(|d| d.kind == KeyKind::Declarative);
                if declarative && previous == value {
                    continue;
                }
                return Err(NegotiationError::Duplicate(key.clone()));
            }
            if self.received.len() + self.answered.len() >= MAX_KEYS {
                return Err(NegotiationError::TooManyKeys(MAX_KEYS));
            }
            self.received.insert(key.clone(), value.clone());
            if matches!(value.as_str(), REJECT | IRRELEVANT | NOT_UNDERSTOOD) {
                return Err(NegotiationError::InvalidOffer {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            let Some(def) = def else {
                answers.push((key.clone(), NOT_UNDERSTOOD.to_string()));
                continue;
            };
            if let Some((answer, required)) = self.respond(def, value) {
                if def.name == "FirstBurstLength" {
                    fbl_answer = Some(answers.len());
                }
                self.replies_required |= required;
                answers.push((key.clone(), answer));
            }
        }
        self.first_burst_rules(&mut answers, fbl_answer, fbl_before);
        if fbl_answered_by_peer && self.session.first_burst_length > self.session.max_burst_length {
            return Err(NegotiationError::BadAnswer {
                key: "FirstBurstLength".into(),
                value: self.session.first_burst_length.to_string(),
            });
        }
        Ok(answers)
    }

    /// FirstBurstLength is Irrelevant when InitialR2T=Yes and
    /// ImmediateData=No, and never exceeds MaxBurstLength (§13.14). Both
    /// depend on keys that may come later in the same batch.
    fn first_burst_rules(
        &mut self,
        answers: &mut [(String, String)],
        fbl_answer: Option<usize>,
        fbl_before: u32,
    ) {
        let Some(i) = fbl_answer else { return };
        if parse_number(&answers[i].1).is_err() {
            return;
        }
        if self.session.initial_r2t && !self.session.immediate_data {
            self.session.first_burst_length = fbl_before;
            answers[i].1 = IRRELEVANT.to_string();
        } else if self.session.first_burst_length > self.session.max_burst_length {
            self.session.first_burst_length = self.session.max_burst_length;
            answers[i].1 = self.session.max_burst_length.to_string();
        }
    }

    /// The responder's answer to an offer or declaration of `def`: `None`
    /// when no answer is due, else the answer and whether it is required.
    fn respond(&mut self, def: &'static KeyDef, value: &str) -> Option<(String, bool)> {
        let reject = Some((REJECT.to_string(), false));
        if !self.may_receive(def) {
            return reject;
        }
        if def.obsolete {
            // §13.25: Reject for *MarkInt; "No" for *Marker, which Linux
            // open-iscsi and libiscsi (both send IFMarker=No) accept.
            return match def.kind {
                KeyKind::BooleanAnd if parse_bool(value).is_ok() => {
                    Some((format_bool(false).to_string(), false))
                }
                _ => reject,
            };
        }
        if self.session_type == SessionType::Discovery && def.irrelevant_in_discovery {
            return Some((IRRELEVANT.to_string(), false));
        }
        match def.kind {
            KeyKind::List => {
                let supported = self.supported_list(def.name);
                let chosen = split_list(value).find(|v| supported.iter().any(|s| s == v));
                match chosen {
                    Some(v) => {
                        let v = v.to_string();
                        self.apply(def.name, &v);
                        Some((v, true))
                    }
                    None => reject,
                }
            }
            KeyKind::NumericalMin | KeyKind::NumericalMax => {
                let Some(theirs) = in_range(def, value) else {
                    return reject;
                };
                let ours = self.pref_number(def.name);
                let v = if def.kind == KeyKind::NumericalMin {
                    theirs.min(ours)
                } else {
                    theirs.max(ours)
                };
                let v = v.to_string();
                self.apply(def.name, &v);
                Some((v, true))
            }
            KeyKind::BooleanAnd | KeyKind::BooleanOr => {
                let Ok(theirs) = parse_bool(value) else {
                    return reject;
                };
                let ours = self.pref_bool(def.name);
                let (v, required) = if def.kind == KeyKind::BooleanAnd {
                    (theirs && ours, theirs)
                } else {
                    (theirs || ours, !theirs)
                };
                let v = format_bool(v).to_string();
                self.apply(def.name, &v);
                Some((v, required))
            }
            KeyKind::Declarative => self.record_declaration(def, value),
            KeyKind::NumericRange | KeyKind::Security => reject,
        }
    }

    /// Whether the peer may send `def` now: sender, phase and connection
    /// rules of §13's preamble. Keys that fail are answered `Reject`.
    fn may_receive(&self, def: &KeyDef) -> bool {
        let sender_ok = match def.senders {
            Senders::Both => true,
            Senders::Initiator => self.role == Role::Target,
            Senders::Target => self.role == Role::Initiator,
        };
        let phase_ok = match (self.phase, def.usage) {
            (_, Usage::SecurityOnly) => false,
            (Phase::Login, Usage::FullFeatureOnly) => false,
            // SessionType may accompany any connection's login.
            (Phase::Login, Usage::LeadingOnly) => self.leading || def.name == "SessionType",
            (Phase::Login, _) => true,
            (Phase::FullFeature, u) => matches!(u, Usage::All | Usage::FullFeatureOnly),
        };
        sender_ok && phase_ok
    }

    fn record_declaration(&mut self, def: &KeyDef, value: &str) -> Option<(String, bool)> {
        let reject = Some((REJECT.to_string(), false));
        match def.name {
            "MaxRecvDataSegmentLength" => {
                let Some(v) = in_range(def, value) else {
                    return reject;
                };
                self.conn.max_xmit_data_segment_length = v as u32;
                // The target states its own limit in reply to the
                // initiator's during login (§13.12).
                let ours = self.prefs.max_recv_data_segment_length;
                if self.role == Role::Target
                    && self.phase == Phase::Login
                    && self.declared.insert("MaxRecvDataSegmentLength")
                {
                    self.conn.max_recv_data_segment_length = ours;
                    return Some((ours.to_string(), false));
                }
                None
            }
            "TargetPortalGroupTag" => {
                let Some(v) = in_range(def, value) else {
                    return reject;
                };
                self.session.target_portal_group_tag = v as u16;
                None
            }
            "SessionType" => match SessionType::from_value(value) {
                Some(t) if t == self.session_type => None,
                _ => reject,
            },
            "SendTargets" => {
                self.send_targets = Some(value.to_string());
                None
            }
            "InitiatorName" => {
                self.session.initiator_name = value.to_string();
                None
            }
            "InitiatorAlias" => {
                self.session.initiator_alias = Some(value.to_string());
                None
            }
            "TargetName" => {
                self.session.target_name = Some(value.to_string());
                None
            }
            "TargetAlias" => {
                self.session.target_alias = Some(value.to_string());
                None
            }
            _ => None,
        }
    }

    /// Checks the peer's answer to our offer (§6.2: the originator's view of
    /// the result functions) and applies it.
    fn handle_answer(
        &mut self,
        name: &'static str,
        offer: &Offer,
        value: &str,
    ) -> Result<(), NegotiationError> {
        let bad = || NegotiationError::BadAnswer {
            key: name.to_string(),
            value: value.chars().take(64).collect(),
        };
        if matches!(value, REJECT | IRRELEVANT | NOT_UNDERSTOOD) {
            // The key keeps its current value (§6.2); finish() decides
            // whether this side can live with it.
            return Ok(());
        }
        let Some(def) = keys::lookup(name) else {
            return Err(bad());
        };
        match def.kind {
            KeyKind::List => {
                if !split_list(&offer.value).any(|v| v == value) {
                    return Err(bad());
                }
            }
            KeyKind::NumericalMin | KeyKind::NumericalMax => {
                let answer = in_range(def, value).ok_or_else(bad)?;
                let offered = parse_number(&offer.value).map_err(|_| bad())?;
                let ok = if def.kind == KeyKind::NumericalMin {
                    answer <= offered
                } else {
                    answer >= offered
                };
                if !ok {
                    return Err(bad());
                }
            }
            KeyKind::BooleanAnd | KeyKind::BooleanOr => {
                let answer = parse_bool(value).map_err(|_| bad())?;
                let offered = parse_bool(&offer.value).map_err(|_| bad())?;
                let determined = if def.kind == KeyKind::BooleanAnd {
                    !offered
                } else {
                    offered
                };
                if determined && answer != offered {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
        self.apply(name, value);
        Ok(())
    }

    /// Keys this side still has to offer (and declarations to make), once
    /// per sequence.
    ///
    /// The initiator offers every operational key that applies, as Linux
    /// open-iscsi does. The target offers only what it must change: keys
    /// the initiator did not offer whose current value this side does not
    /// accept (a required digest, ImmediateData=No, a smaller
    /// MaxBurstLength, ...); call it after handling the initiator's first
    /// operational request. Both declare MaxRecvDataSegmentLength.
    pub fn take_offers(&mut self) -> Vec<(String, String)> {
        if self.offers_made {
            return Vec::new();
        }
        self.offers_made = true;
        let mut out = Vec::new();
        for def in keys::KEYS {
            if def.name == "MaxRecvDataSegmentLength" {
                if self.declared.insert(def.name) {
                    let v = self.prefs.max_recv_data_segment_length;
                    self.conn.max_recv_data_segment_length = v;
                    out.push((def.name.to_string(), v.to_string()));
                }
                continue;
            }
            if !self.offerable(def) {
                continue;
            }
            let Some(value) = self.offer_value(def) else {
                continue;
            };
            let required = match def.kind {
                KeyKind::BooleanAnd => value == "Yes",
                KeyKind::BooleanOr => value == "No",
                _ => true,
            };
            if !required {
                // The result is already determined (§6.2.2).
                self.apply(def.name, &value);
            }
            self.offered.insert(
                def.name,
                Offer {
                    value: value.clone(),
                    required,
                },
            );
            out.push((def.name.to_string(), value));
        }
        out
    }

    /// Whether this side may and should offer `def` in this sequence.
    fn offerable(&self, def: &KeyDef) -> bool {
        let negotiable = matches!(
            def.kind,
            KeyKind::List
                | KeyKind::NumericalMin
                | KeyKind::NumericalMax
                | KeyKind::BooleanAnd
                | KeyKind::BooleanOr
        );
        let fresh = !self.received.contains_key(def.name)
            && !self.answered.contains(def.name)
            && !self.offered.contains_key(def.name);
        let usable = match def.usage {
            Usage::LeadingOnly => self.leading && self.phase == Phase::Login,
            Usage::InitializeOnly => self.phase == Phase::Login,
            _ => false,
        };
        let relevant =
            !(self.session_type == SessionType::Discovery && def.irrelevant_in_discovery);
        negotiable && fresh && usable && relevant && !def.obsolete
    }

    /// The value to offer for `def`, or `None` when this side has no reason
    /// to offer it.
    fn offer_value(&self, def: &KeyDef) -> Option<String> {
        let name = def.name;
        if self.role == Role::Initiator {
            return match name {
                "iSCSIProtocolLevel" if self.prefs.iscsi_protocol_level == 0 => None,
                "TaskReporting" if self.prefs.task_reporting == ["RFC3720"] => None,
                _ => Some(self.preferred(name)),
            };
        }
        // The target only offers what it must change.
        let current = self.current(name);
        match def.kind {
            KeyKind::List if name != "TaskReporting" => {
                let supported = self.supported_list(name);
                (!supported.contains(&current)).then(|| self.preferred(name))
            }
            KeyKind::NumericalMin if name != "iSCSIProtocolLevel" => {
                let mut want = self.pref_number(name);
                if name == "FirstBurstLength" {
                    if self.session.initial_r2t && !self.session.immediate_data {
                        return None;
                    }
                    // Never above the MaxBurstLength this side offers or
                    // has (MaxBurstLength comes first in the table).
                    let mbl = self
                        .offered
                        .get("MaxBurstLength")
                        .and_then(|o| parse_number(&o.value).ok())
                        .unwrap_or(self.session.max_burst_length.into());
                    want = want.min(mbl);
                }
                let current = parse_number(&current).ok()?;
                (want < current).then(|| want.to_string())
            }
            KeyKind::NumericalMax => {
                let want = self.pref_number(name);
                let current = parse_number(&current).ok()?;
                (want > current).then(|| want.to_string())
            }
            KeyKind::BooleanAnd | KeyKind::BooleanOr => {
                let want = self.pref_bool(name);
                let forcible = (def.kind == KeyKind::BooleanAnd) != want;
                (forcible && format_bool(want) != current).then(|| format_bool(want).to_string())
            }
            _ => None,
        }
    }

    /// Declares a new MaxRecvDataSegmentLength of this side, e.g. in a Text
    /// Request of the full-feature phase (§13.12, use ALL). Returns the pair
    /// to send.
    pub fn declare_max_recv_data_segment_length(&mut self, len: u32) -> (String, String) {
        self.prefs.max_recv_data_segment_length = len;
        self.conn.max_recv_data_segment_length = len;
        self.declared.insert("MaxRecvDataSegmentLength");
        ("MaxRecvDataSegmentLength".to_string(), len.to_string())
    }

    /// Whether no offer of ours awaits an answer.
    pub fn is_settled(&self) -> bool {
        self.offered.values().all(|o| !o.required)
    }

    /// Checks, at the end of the login, that every negotiated value is one
    /// this side accepts: a peer's `Reject` may leave a key at a value this
    /// side's preferences rule out (e.g. no digest when CRC32C is required).
    pub fn finish(&self) -> Result<(), NegotiationError> {
        if self.phase == Phase::FullFeature {
            return Ok(());
        }
        for def in keys::KEYS {
            let negotiable = matches!(
                def.kind,
                KeyKind::List
                    | KeyKind::NumericalMin
                    | KeyKind::NumericalMax
                    | KeyKind::BooleanAnd
                    | KeyKind::BooleanOr
            );
            if !negotiable
                || def.obsolete
                || def.usage == Usage::SecurityOnly
                || (def.usage == Usage::LeadingOnly && !self.leading)
                || (self.session_type == SessionType::Discovery && def.irrelevant_in_discovery)
            {
                continue;
            }
            let name = def.name;
            if name == "FirstBurstLength"
                && self.session.initial_r2t
                && !self.session.immediate_data
            {
                continue;
            }
            let current = self.current(name);
            let ok = match def.kind {
                KeyKind::List => self.supported_list(name).contains(&current),
                KeyKind::NumericalMin => {
                    parse_number(&current).is_ok_and(|c| c <= self.pref_number(name))
                }
                KeyKind::NumericalMax => {
                    parse_number(&current).is_ok_and(|c| c >= self.pref_number(name))
                }
                KeyKind::BooleanAnd => self.pref_bool(name) || current == "No",
                _ => !self.pref_bool(name) || current == "Yes",
            };
            if !ok {
                return Err(NegotiationError::Required(name.to_string()));
            }
        }
        Ok(())
    }

    /// The session-wide values negotiated so far (RFC defaults elsewhere).
    ///
    /// FirstBurstLength is capped at MaxBurstLength (§13.14) even when the
    /// peer left it at a larger default, so that a sender never relies on
    /// more unsolicited data than a burst may hold.
    pub fn session_params(&self) -> SessionParams {
        let mut s = self.session.clone();
        s.first_burst_length = s.first_burst_length.min(s.max_burst_length);
        s
    }

    /// The connection values negotiated so far.
    pub fn connection_params(&self) -> ConnectionParams {
        self.conn
    }

    /// This side's preferred value of a key, as offered.
    fn preferred(&self, name: &str) -> String {
        let p = &self.prefs;
        match name {
            "HeaderDigest" => p.header_digest.join(","),
            "DataDigest" => p.data_digest.join(","),
            "TaskReporting" => p.task_reporting.join(","),
            "InitialR2T" | "ImmediateData" | "DataPDUInOrder" | "DataSequenceInOrder" => {
                format_bool(self.pref_bool(name)).to_string()
            }
            _ => self.pref_number(name).to_string(),
        }
    }

    fn supported_list(&self, name: &str) -> Vec<String> {
        match name {
            "HeaderDigest" => self.prefs.header_digest.clone(),
            "DataDigest" => self.prefs.data_digest.clone(),
            "TaskReporting" => self.prefs.task_reporting.clone(),
            _ => Vec::new(),
        }
    }

    fn pref_number(&self, name: &str) -> u64 {
        let p = &self.prefs;
        match name {
            "MaxConnections" => p.max_connections.into(),
            "MaxRecvDataSegmentLength" => p.max_recv_data_segment_length.into(),
            "MaxBurstLength" => p.max_burst_length.into(),
            "FirstBurstLength" => p.first_burst_length.into(),
            "DefaultTime2Wait" => p.default_time2wait.into(),
            "DefaultTime2Retain" => p.default_time2retain.into(),
            "MaxOutstandingR2T" => p.max_outstanding_r2t.into(),
            "ErrorRecoveryLevel" => p.error_recovery_level.into(),
            "iSCSIProtocolLevel" => p.iscsi_protocol_level.into(),
            _ => 0,
        }
    }

    fn pref_bool(&self, name: &str) -> bool {
        let p = &self.prefs;
        match name {
            "InitialR2T" => p.initial_r2t,
            "ImmediateData" => p.immediate_data,
            "DataPDUInOrder" => p.data_pdu_in_order,
            "DataSequenceInOrder" => p.data_sequence_in_order,
            _ => false,
        }
    }

    /// The value in force for a negotiable key, as on the wire.
    fn current(&self, name: &str) -> String {
        let s = &self.session;
        let digest = |on: bool| if on { "CRC32C" } else { "None" };
        match name {
            "HeaderDigest" => digest(self.conn.header_digest).to_string(),
            "DataDigest" => digest(self.conn.data_digest).to_string(),
            "TaskReporting" => s.task_reporting.as_str().to_string(),
            "MaxConnections" => s.max_connections.to_string(),
            "InitialR2T" => format_bool(s.initial_r2t).to_string(),
            "ImmediateData" => format_bool(s.immediate_data).to_string(),
            "MaxBurstLength" => s.max_burst_length.to_string(),
            "FirstBurstLength" => s.first_burst_length.to_string(),
            "DefaultTime2Wait" => s.default_time2wait.to_string(),
            "DefaultTime2Retain" => s.default_time2retain.to_string(),
            "MaxOutstandingR2T" => s.max_outstanding_r2t.to_string(),
            "DataPDUInOrder" => format_bool(s.data_pdu_in_order).to_string(),
            "DataSequenceInOrder" => format_bool(s.data_sequence_in_order).to_string(),
            "ErrorRecoveryLevel" => s.error_recovery_level.to_string(),
            "iSCSIProtocolLevel" => s.iscsi_protocol_level.to_string(),
            _ => String::new(),
        }
    }

    /// Stores a negotiated (already validated) value.
    fn apply(&mut self, name: &str, value: &str) {
        let s = &mut self.session;
        let num = || parse_number(value).unwrap_or(0);
        let yes = value == "Yes";
        match name {
            "HeaderDigest" => self.conn.header_digest = value == "CRC32C",
            "DataDigest" => self.conn.data_digest = value == "CRC32C",
            "TaskReporting" => {
                s.task_reporting = TaskReporting::from_value(value).unwrap_or_default()
            }
            "MaxConnections" => s.max_connections = num() as u16,
            "InitialR2T" => s.initial_r2t = yes,
            "ImmediateData" => s.immediate_data = yes,
            "MaxBurstLength" => s.max_burst_length = num() as u32,
            "FirstBurstLength" => s.first_burst_length = num() as u32,
            "DefaultTime2Wait" => s.default_time2wait = num() as u16,
            "DefaultTime2Retain" => s.default_time2retain = num() as u16,
            "MaxOutstandingR2T" => s.max_outstanding_r2t = num() as u16,
            "DataPDUInOrder" => s.data_pdu_in_order = yes,
            "DataSequenceInOrder" => s.data_sequence_in_order = yes,
            "ErrorRecoveryLevel" => s.error_recovery_level = num() as u8,
            "iSCSIProtocolLevel" => s.iscsi_protocol_level = num() as u8,
            _ => {}
        }
    }
}

/// A numerical value of `def` within its range, or `None` (answered
/// `Reject`: "out of range or malformed", §6.2).
fn in_range(def: &KeyDef, value: &str) -> Option<u64> {
    let v = parse_number(value).ok()?;
    let (lo, hi) = def.range.unwrap_or((0, u64::MAX));
    (lo..=hi).contains(&v).then_some(v)
}

#[cfg(test)]
mod tests;
