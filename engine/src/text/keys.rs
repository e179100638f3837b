//! The keys of RFC 7143 §13 (and §12 for the security keys), with what the
//! negotiation rules need to know of each: its kind, range, default, scope,
//! when it may be used and who may send it.
//!
//! Keys not in the table, including the private and public extension keys
//! `X-...` and `X#...` (§13.22, §13.26), are answered `NotUnderstood`.

use super::codec::MAX_VALUE_LEN;

/// The result function of a key (§6.2.1, §6.2.2, §13 preamble).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The responder picks the first offered value it supports (§6.2.1).
    List,
    /// Numerical, result is the minimum of offer and answer.
    NumericalMin,
    /// Numerical, result is the maximum of offer and answer.
    NumericalMax,
    /// Boolean, result is the AND of offer and answer.
    BooleanAnd,
    /// Boolean, result is the OR of offer and answer.
    BooleanOr,
    /// Needs no answer: each side states its own value.
    Declarative,
    /// A numeric range `a~b` (only the obsoleted marker intervals).
    NumericRange,
    /// CHAP exchange keys (§12.1.3), handled by [`crate::login::chap`].
    Security,
}

/// Where a negotiated value applies (§13 preamble: SW / CO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Session,
    Connection,
}

/// When a key may be used (§13 preamble).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// LO: only in the login of the session's leading connection.
    LeadingOnly,
    /// IO: only during a connection's login.
    InitializeOnly,
    /// ALL: during login and in the full-feature phase.
    All,
    /// FFPO: only in the full-feature phase.
    FullFeatureOnly,
    /// Only in the SecurityNegotiation stage (§12).
    SecurityOnly,
}

/// Who may send the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Senders {
    Initiator,
    Target,
    Both,
}

/// One key of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDef {
    pub name: &'static str,
    /// The defining section, e.g. "RFC 7143 §13.12".
    pub section: &'static str,
    pub kind: KeyKind,
    /// The valid range of a numerical value, inclusive.
    pub range: Option<(u64, u64)>,
    /// The value in force when the key is not negotiated.
    pub default: Option<&'static str>,
    pub scope: Scope,
    pub usage: Usage,
    pub senders: Senders,
    /// May also appear in the SecurityNegotiation stage.
    pub any_stage: bool,
    /// "Irrelevant when: SessionType=Discovery".
    pub irrelevant_in_discovery: bool,
    /// Obsoleted by RFC 7143 §13.25.
    pub obsolete: bool,
    /// The longest encoded value accepted.
    pub max_value_len: usize,
}

/// iSCSI names and aliases (§4.2.7, §6.1 simple values).
const NAME_LEN: usize = 255;
/// 2^24 - 1, the upper bound of the data-length keys (§13.12-§13.14).
const MAX_LENGTH: u64 = 16_777_215;

const fn key(name: &'static str, section: &'static str, kind: KeyKind) -> KeyDef {
    KeyDef {
        name,
        section,
        kind,
        range: None,
        default: None,
        scope: Scope::Session,
        usage: Usage::LeadingOnly,
        senders: Senders::Both,
        any_stage: false,
        irrelevant_in_discovery: false,
        obsolete: false,
        max_value_len: NAME_LEN,
    }
}

const fn numeric(
    name: &'static str,
    section: &'static str,
    kind: KeyKind,
    range: (u64, u64),
    default: &'static str,
    irrelevant_in_discovery: bool,
) -> KeyDef {
    KeyDef {
        range: Some(range),
        default: Some(default),
        irrelevant_in_discovery,
        ..key(name, section, kind)
    }
}

const fn boolean(
    name: &'static str,
    section: &'static str,
    kind: KeyKind,
    default: &'static str,
) -> KeyDef {
    KeyDef {
        default: Some(default),
        irrelevant_in_discovery: true,
        ..key(name, section, kind)
    }
}

const fn declared(
    name: &'static str,
    section: &'static str,
    usage: Usage,
    senders: Senders,
) -> KeyDef {
    KeyDef {
        usage,
        senders,
        any_stage: true,
        ..key(name, section, KeyKind::Declarative)
    }
}

const fn chap(name: &'static str, max_value_len: usize) -> KeyDef {
    KeyDef {
        scope: Scope::Connection,
        usage: Usage::SecurityOnly,
        max_value_len,
        ..key(name, "RFC 7143 §12.1.3", KeyKind::Security)
    }
}

/// Every key this implementation knows, in RFC order.
pub static KEYS: &[KeyDef] = &[
    KeyDef {
        default: Some("None"),
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        ..key("HeaderDigest", "RFC 7143 §13.1", KeyKind::List)
    },
    KeyDef {
        default: Some("None"),
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        ..key("DataDigest", "RFC 7143 §13.1", KeyKind::List)
    },
    numeric(
        "MaxConnections",
        "RFC 7143 §13.2",
        KeyKind::NumericalMin,
        (1, 65535),
        "1",
        true,
    ),
    KeyDef {
        usage: Usage::FullFeatureOnly,
        senders: Senders::Initiator,
        ..key("SendTargets", "RFC 7143 §13.3", KeyKind::Declarative)
    },
    declared(
        "TargetName",
        "RFC 7143 §13.4",
        Usage::InitializeOnly,
        Senders::Both,
    ),
    declared(
        "InitiatorName",
        "RFC 7143 §13.5",
        Usage::InitializeOnly,
        Senders::Initiator,
    ),
    declared("TargetAlias", "RFC 7143 §13.6", Usage::All, Senders::Target),
    declared(
        "InitiatorAlias",
        "RFC 7143 §13.7",
        Usage::All,
        Senders::Initiator,
    ),
    declared(
        "TargetAddress",
        "RFC 7143 §13.8",
        Usage::All,
        Senders::Target,
    ),
    KeyDef {
        range: Some((0, 65535)),
        ..declared(
            "TargetPortalGroupTag",
            "RFC 7143 §13.9",
            Usage::InitializeOnly,
            Senders::Target,
        )
    },
    boolean("InitialR2T", "RFC 7143 §13.10", KeyKind::BooleanOr, "Yes"),
    boolean(
        "ImmediateData",
        "RFC 7143 §13.11",
        KeyKind::BooleanAnd,
        "Yes",
    ),
    KeyDef {
        range: Some((512, MAX_LENGTH)),
        default: Some("8192"),
        scope: Scope::Connection,
        usage: Usage::All,
        ..key(
            "MaxRecvDataSegmentLength",
            "RFC 7143 §13.12",
            KeyKind::Declarative,
        )
    },
    numeric(
        "MaxBurstLength",
        "RFC 7143 §13.13",
        KeyKind::NumericalMin,
        (512, MAX_LENGTH),
        "262144",
        true,
    ),
    numeric(
        "FirstBurstLength",
        "RFC 7143 §13.14",
        KeyKind::NumericalMin,
        (512, MAX_LENGTH),
        "65536",
        true,
    ),
    numeric(
        "DefaultTime2Wait",
        "RFC 7143 §13.15",
        KeyKind::NumericalMax,
        (0, 3600),
        "2",
        false,
    ),
    numeric(
        "DefaultTime2Retain",
        "RFC 7143 §13.16",
        KeyKind::NumericalMin,
        (0, 3600),
        "20",
        false,
    ),
    numeric(
        "MaxOutstandingR2T",
        "RFC 7143 §13.17",
        KeyKind::NumericalMin,
        (1, 65535),
        "1",
        true,
    ),
    boolean(
        "DataPDUInOrder",
        "RFC 7143 §13.18",
        KeyKind::BooleanOr,
        "Yes",
    ),
    boolean(
        "DataSequenceInOrder",
        "RFC 7143 §13.19",
        KeyKind::BooleanOr,
        "Yes",
    ),
    numeric(
        "ErrorRecoveryLevel",
        "RFC 7143 §13.20",
        KeyKind::NumericalMin,
        (0, 2),
        "0",
        false,
    ),
    KeyDef {
        default: Some("Normal"),
        ..declared(
            "SessionType",
            "RFC 7143 §13.21",
            Usage::LeadingOnly,
            Senders::Initiator,
        )
    },
    KeyDef {
        default: Some("RFC3720"),
        irrelevant_in_discovery: true,
        ..key("TaskReporting", "RFC 7143 §13.23", KeyKind::List)
    },
    numeric(
        "iSCSIProtocolLevel",
        "RFC 7144 §2.1",
        KeyKind::NumericalMin,
        (0, 31),
        "0",
        true,
    ),
    KeyDef {
        default: Some("No"),
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        obsolete: true,
        ..key("IFMarker", "RFC 7143 §13.25", KeyKind::BooleanAnd)
    },
    KeyDef {
        default: Some("No"),
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        obsolete: true,
        ..key("OFMarker", "RFC 7143 §13.25", KeyKind::BooleanAnd)
    },
    KeyDef {
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        obsolete: true,
        ..key("IFMarkInt", "RFC 7143 §13.25", KeyKind::NumericRange)
    },
    KeyDef {
        scope: Scope::Connection,
        usage: Usage::InitializeOnly,
        obsolete: true,
        ..key("OFMarkInt", "RFC 7143 §13.25", KeyKind::NumericRange)
    },
    KeyDef {
        default: Some("None"),
        scope: Scope::Connection,
        usage: Usage::SecurityOnly,
        ..key("AuthMethod", "RFC 7143 §12.1", KeyKind::List)
    },
    chap("CHAP_A", NAME_LEN),
    chap("CHAP_I", NAME_LEN),
    chap("CHAP_C", MAX_VALUE_LEN),
    chap("CHAP_N", NAME_LEN),
    chap("CHAP_R", MAX_VALUE_LEN),
];

/// The table entry of `name` (keys are case-sensitive, §6.1).
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a private (`X-`) or public (`X#`) extension key
/// (§13.22, §13.26).
pub fn is_extension(name: &str) -> bool {
    name.starts_with("X-") || name.starts_with("X#")
}

/// The longest encoded value accepted for `name`.
pub fn max_value_len(name: &str) -> usize {
    lookup(name).map_or(MAX_VALUE_LEN, |k| k.max_value_len)
}

/// Whether `name` is an authentication key (AuthMethod or CHAP_*), only
/// valid in the SecurityNegotiation stage.
pub fn is_security_key(name: &str) -> bool {
    lookup(name).is_some_and(|k| k.usage == Usage::SecurityOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_section_13_is_known() {
        for name in [
            "HeaderDigest",
            "DataDigest",
            "MaxConnections",
            "SendTargets",
            "TargetName",
            "InitiatorName",
            "TargetAlias",
            "InitiatorAlias",
            "TargetAddress",
            "TargetPortalGroupTag",
            "InitialR2T",
            "ImmediateData",
            "MaxRecvDataSegmentLength",
            "MaxBurstLength",
            "FirstBurstLength",
            "DefaultTime2Wait",
            "DefaultTime2Retain",
            "MaxOutstandingR2T",
            "DataPDUInOrder",
            "DataSequenceInOrder",
            "ErrorRecoveryLevel",
            "SessionType",
            "TaskReporting",
            "iSCSIProtocolLevel",
            "IFMarker",
            "OFMarker",
            "IFMarkInt",
            "OFMarkInt",
            "AuthMethod",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert!(lookup("headerdigest").is_none());
        assert!(lookup("X-com.example.Foo").is_none());
    }

    #[test]
    fn names_are_unique_and_defaults_in_range() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(KEYS[i + 1..].iter().all(|o| o.name != k.name), "{}", k.name);
            if let (Some((lo, hi)), Some(d)) = (k.range, k.default) {
                let d: u64 = d.parse().unwrap();
                assert!(lo <= d && d <= hi, "{}", k.name);
            }
        }
    }

    #[test]
    fn attributes() {
        let mrdsl = lookup("MaxRecvDataSegmentLength").unwrap();
        assert_eq!(mrdsl.kind, KeyKind::Declarative);
        assert_eq!(mrdsl.scope, Scope::Connection);
        assert_eq!(mrdsl.usage, Usage::All);
        let t2w = lookup("DefaultTime2Wait").unwrap();
        assert_eq!(t2w.kind, KeyKind::NumericalMax);
        assert!(!t2w.irrelevant_in_discovery);
        assert!(lookup("MaxBurstLength").unwrap().irrelevant_in_discovery);
        assert_eq!(lookup("ImmediateData").unwrap().kind, KeyKind::BooleanAnd);
        assert_eq!(lookup("InitialR2T").unwrap().kind, KeyKind::BooleanOr);
        assert_eq!(lookup("TargetAlias").unwrap().senders, Senders::Target);
        assert!(lookup("IFMarkInt").unwrap().obsolete);
        assert!(is_security_key("CHAP_R"));
        assert!(is_security_key("AuthMethod"));
        assert!(!is_security_key("InitiatorName"));
        assert!(is_extension("X-vendor.key") && is_extension("X#NodeArchitecture"));
        assert_eq!(max_value_len("TargetName"), 255);
        assert_eq!(max_value_len("X-unknown"), MAX_VALUE_LEN);
    }
}
