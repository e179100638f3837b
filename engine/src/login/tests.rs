//! The initiator and target login state machines wired to each other in
//! memory, plus raw-PDU scenarios for what our initiator never sends.

use std::net::SocketAddr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rstest::rstest;

use super::*;
use crate::pdu::{Header, Isid, LoginRequest, LoginResponse, Pdu, Stage};
use crate::text::codec::{decode_binary, decode_pairs, encode_hex, encode_pairs};
use crate::text::{NegotiationError, Preferences, SessionType};

const TARGET: &str = "iqn.2024-01.com.example:disk1";
const INITIATOR: &str = "iqn.2024-01.com.example:host1";
const ISID: Isid = Isid([0x80, 0x12, 0x34, 0x56, 0x00, 0x01]);
const ITT: u32 = 0x1000;
const NEW_TSIH: u16 = 0x0042;

fn creds(user: &str, secret: &str) -> Credentials {
    Credentials {
        user: user.into(),
        secret: secret.into(),
    }
}

/// A directory with one target node, an ACL and one existing session.
#[derive(Clone)]
struct Dir {
    node: TargetNode,
    discovery: AuthPolicy,
    denied: Vec<String>,
    session: (u16, Isid),
}

impl Dir {
    fn new() -> Dir {
        Dir {
            node: TargetNode {
                name: TARGET.into(),
                alias: Some("disk one".into()),
                portal_group_tag: 7,
                auth: AuthPolicy::default(),
            },
            discovery: AuthPolicy::default(),
            denied: Vec::new(),
            session: (0x0100, ISID),
        }
    }

    fn chap(mut self, accounts: &[Credentials], mutual: Option<Credentials>) -> Dir {
        self.node.auth = AuthPolicy {
            chap_accounts: accounts.to_vec(),
            mutual,
        };
        self
    }
}

impl LoginDirectory for Dir {
    fn target(&self, name: &str) -> Option<TargetNode> {
        (name == self.node.name).then(|| self.node.clone())
    }
    fn discovery_auth(&self) -> AuthPolicy {
        self.discovery.clone()
    }
    fn authorized(&self, _target: &str, initiator: &str, _peer: SocketAddr) -> bool {
        !self.denied.iter().any(|d| d == initiator)
    }
    fn session_exists(&self, tsih: u16, _initiator: &str, isid: Isid) -> bool {
        (tsih, isid) == self.session
    }
}

fn peer() -> SocketAddr {
    "192.0.2.10:51000".parse().unwrap()
}

fn config() -> InitiatorConfig {
    InitiatorConfig {
        initiator_name: INITIATOR.into(),
        initiator_alias: Some("host one".into()),
        isid: ISID,
        tsih: 0,
        cid: 1,
        itt: ITT,
        session_type: SessionType::Normal,
        target_name: Some(TARGET.into()),
        chap: None,
        mutual_chap: None,
        prefs: Preferences::default(),
        cmd_sn: 100,
        exp_stat_sn: 0,
        extra_keys: Vec::new(),
    }
}

/// How a paired login ended.
#[derive(Debug)]
enum End {
    Ok(Box<InitiatorOutcome>, Box<LoginOutcome>),
    /// The target failed the login with this status; the initiator saw it.
    TargetFailed(LoginStatus, LoginError),
    /// The initiator gave up (the target's last step was not a failure).
    InitiatorFailed(LoginError),
}

struct Run {
    end: End,
    trace: Vec<Pdu>,
}

impl Run {
    fn ok(self) -> (InitiatorOutcome, LoginOutcome) {
        match self.end {
            End::Ok(i, t) => (*i, *t),
            other => panic!("login failed: {other:?}"),
        }
    }

    fn target_status(&self) -> LoginStatus {
        match &self.end {
            End::TargetFailed(status, err) => {
                assert_eq!(err.status(), Some(*status), "the initiator saw the status");
                *status
            }
            other => panic!("expected a target failure: {other:?}"),
        }
    }

    fn requests(&self) -> impl Iterator<Item = (&LoginRequest, &Pdu)> {
        self.trace.iter().filter_map(|p| match &p.header {
            Header::LoginRequest(r) => Some((r, p)),
            _ => None,
        })
    }

    fn responses(&self) -> impl Iterator<Item = (&LoginResponse, &Pdu)> {
        self.trace.iter().filter_map(|p| match &p.header {
            Header::LoginResponse(r) => Some((r, p)),
            _ => None,
        })
    }
}

/// Stamps what the endpoint stamps into a Login Response.
fn stamp(pdu: &mut Pdu, stat_sn: u32, final_: bool) {
    if let Header::LoginResponse(r) = &mut pdu.header {
        r.stat_sn = stat_sn;
        r.exp_cmd_sn = 100;
        r.max_cmd_sn = 131;
        if final_ && r.tsih == 0 {
            r.tsih = NEW_TSIH;
        }
    }
}

fn login_request(pdu: &Pdu) -> &LoginRequest {
    match &pdu.header {
        Header::LoginRequest(r) => r,
        h => panic!("not a login request: {h:?}"),
    }
}

fn login_response(pdu: &Pdu) -> &LoginResponse {
    match &pdu.header {
        Header::LoginResponse(r) => r,
        h => panic!("not a login response: {h:?}"),
    }
}

/// Shuttles PDUs between an initiator and a target until one side ends.
fn run(cfg: InitiatorConfig, tprefs: Preferences, dir: &Dir) -> Run {
    run_with(cfg, tprefs, dir, |_| {})
}

/// Like [`run`], with every Login Request passed through `tamper` first.
fn run_with(
    cfg: InitiatorConfig,
    tprefs: Preferences,
    dir: &Dir,
    tamper: impl Fn(&mut LoginRequest),
) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut initiator = InitiatorLogin::new(cfg);
    let mut target = TargetLogin::new(tprefs, peer());
    let mut trace = Vec::new();
    let mut req = initiator.start();
    for stat_sn in 0..200u32 {
        if let Header::LoginRequest(r) = &mut req.header {
            tamper(r);
        }
        trace.push(req.clone());
        let step = target.handle(login_request(&req), &req.data, dir, &mut rng);
        let (mut rsp, target_end) = match step {
            TargetLoginStep::Continue(p) => (p, None),
            TargetLoginStep::Complete(p, o) => (p, Some(Ok(o))),
            TargetLoginStep::Fail(p, s) => (p, Some(Err(s))),
        };
        stamp(&mut rsp, stat_sn, matches!(target_end, Some(Ok(_))));
        trace.push(rsp.clone());
        let istep = initiator.handle(login_response(&rsp), &rsp.data, &mut rng);
        let end = match (istep, target_end) {
            (InitiatorLoginStep::Send(next), None) => {
                req = next;
                continue;
            }
            (InitiatorLoginStep::Complete(i), Some(Ok(t))) => End::Ok(i, t),
            (InitiatorLoginStep::Failed(e), Some(Err(s))) => End::TargetFailed(s, e),
            (InitiatorLoginStep::Failed(e), _) => End::InitiatorFailed(e),
            (i, t) => panic!("sides disagree: initiator {i:?}, target {t:?}"),
        };
        return Run { end, trace };
    }
    panic!("login did not end");
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn auth_none() {
    let run = run(config(), Preferences::default(), &Dir::new());
    assert_eq!(run.requests().count(), 2, "security, then operational");
    let first = decode_pairs(&run.requests().next().unwrap().1.data).unwrap();
    assert_eq!(value(&first, "AuthMethod"), Some("None"));
    let first_rsp = decode_pairs(&run.responses().next().unwrap().1.data).unwrap();
    assert_eq!(value(&first_rsp, "TargetPortalGroupTag"), Some("7"));
    assert_eq!(value(&first_rsp, "TargetAlias"), Some("disk one"));
    let (i, t) = run.ok();
    assert_eq!(i.tsih, NEW_TSIH);
    assert_eq!((i.exp_stat_sn, i.exp_cmd_sn, i.max_cmd_sn), (2, 100, 131));
    assert_eq!(i.cmd_sn, 100);
    assert_eq!(i.target_portal_group_tag, Some(7));
    assert_eq!(i.target_alias.as_deref(), Some("disk one"));
    assert_eq!(t.tsih, 0);
    assert_eq!(t.cmd_sn, 100);
    assert_eq!(t.isid, ISID);
    assert_eq!(t.initiator_name, INITIATOR);
    assert_eq!(t.authenticated_user, None);
    assert_eq!(t.session.initiator_alias.as_deref(), Some("host one"));
    assert_eq!(t.session.target_portal_group_tag, 7);
    assert_eq!(t.target.as_ref().unwrap().name, TARGET);
    assert_eq!(i.session, t.session, "both sides agree on the session");
    assert_eq!(i.connection.max_xmit_data_segment_length, 262_144);
    assert_eq!(t.connection.max_xmit_data_segment_length, 262_144);
    assert!(!i.connection.header_digest && !t.connection.header_digest);
}

#[test]
fn chap_one_way() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(&[creds("bob", "bob-secret-1234"), alice.clone()], None);
    let cfg = InitiatorConfig {
        chap: Some(alice),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    let first = decode_pairs(&run.requests().next().unwrap().1.data).unwrap();
    assert_eq!(value(&first, "AuthMethod"), Some("CHAP,None"));
    // AuthMethod, CHAP_A, CHAP_N/R, operational.
    assert_eq!(run.requests().count(), 4);
    let (i, t) = run.ok();
    assert_eq!(t.authenticated_user.as_deref(), Some("alice"));
    assert_eq!(i.session, t.session);
}

#[test]
fn chap_mutual() {
    let alice = creds("alice", "alice-secret-12");
    let tgt = creds("disk1", "target-secret-1");
    let dir = Dir::new().chap(std::slice::from_ref(&alice), Some(tgt.clone()));
    let cfg = InitiatorConfig {
        chap: Some(alice),
        mutual_chap: Some(tgt),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    let first = decode_pairs(&run.requests().next().unwrap().1.data).unwrap();
    assert_eq!(value(&first, "AuthMethod"), Some("CHAP"));
    let verdict = decode_pairs(&run.responses().nth(2).unwrap().1.data).unwrap();
    assert_eq!(value(&verdict, "CHAP_N"), Some("disk1"));
    let (_, t) = run.ok();
    assert_eq!(t.authenticated_user.as_deref(), Some("alice"));
}

#[test]
fn chap_wrong_secret() {
    let dir = Dir::new().chap(&[creds("alice", "alice-secret-12")], None);
    let cfg = InitiatorConfig {
        chap: Some(creds("alice", "wrong-secret-99")),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    assert_eq!(run.target_status(), LoginStatus::AUTHENTICATION_FAILURE);
    assert_eq!(
        match run.end {
            End::TargetFailed(_, e) => e.status_class(),
            _ => None,
        },
        Some(2)
    );
}

#[test]
fn chap_required_but_initiator_offers_none() {
    let dir = Dir::new().chap(&[creds("alice", "alice-secret-12")], None);
    let run = run(config(), Preferences::default(), &dir);
    assert_eq!(run.target_status(), LoginStatus::AUTHENTICATION_FAILURE);
}

#[test]
fn mutual_requested_but_not_configured_on_target() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(std::slice::from_ref(&alice), None);
    let cfg = InitiatorConfig {
        chap: Some(alice),
        mutual_chap: Some(creds("disk1", "target-secret-1")),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    assert_eq!(run.target_status(), LoginStatus::AUTHENTICATION_FAILURE);
}

#[test]
fn target_failing_mutual_chap_is_refused() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(
        std::slice::from_ref(&alice),
        Some(creds("disk1", "impostor-secret")),
    );
    let cfg = InitiatorConfig {
        chap: Some(alice),
        mutual_chap: Some(creds("disk1", "target-secret-1")),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    match run.end {
        End::InitiatorFailed(LoginError::Chap(chap::ChapError::MutualFailed)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn initiator_with_mutual_refuses_auth_none() {
    let cfg = InitiatorConfig {
        chap: Some(creds("alice", "alice-secret-12")),
        mutual_chap: Some(creds("disk1", "target-secret-1")),
        ..config()
    };
    // The target requires no authentication, so it cannot select CHAP.
    let run = run(cfg, Preferences::default(), &Dir::new());
    assert_eq!(run.target_status(), LoginStatus::AUTHENTICATION_FAILURE);
}

#[test]
fn unknown_target() {
    let cfg = InitiatorConfig {
        target_name: Some("iqn.2024-01.com.example:nothere".into()),
        ..config()
    };
    let run = run(cfg, Preferences::default(), &Dir::new());
    assert_eq!(run.target_status(), LoginStatus::NOT_FOUND);
}

#[test]
fn acl_refusal() {
    let mut dir = Dir::new();
    dir.denied.push(INITIATOR.into());
    let run = run(config(), Preferences::default(), &dir);
    assert_eq!(run.target_status(), LoginStatus::AUTHORIZATION_FAILURE);
}

#[test]
fn missing_target_name() {
    let cfg = InitiatorConfig {
        target_name: None,
        ..config()
    };
    let run = run(cfg, Preferences::default(), &Dir::new());
    assert_eq!(run.target_status(), LoginStatus::MISSING_PARAMETER);
}

#[test]
fn discovery_session() {
    let mut dir = Dir::new();
    dir.denied.push(INITIATOR.into());
    let cfg = InitiatorConfig {
        session_type: SessionType::Discovery,
        target_name: None,
        ..config()
    };
    let run = run(cfg, Preferences::default(), &dir);
    let first_rsp = decode_pairs(&run.responses().next().unwrap().1.data).unwrap();
    assert_eq!(value(&first_rsp, "TargetPortalGroupTag"), None);
    let (i, t) = run.ok();
    assert_eq!(t.session_type, SessionType::Discovery);
    assert!(t.target.is_none());
    assert_eq!(i.session.session_type, SessionType::Discovery);
    assert_eq!(i.session, t.session);
}

#[test]
fn discovery_with_chap() {
    let alice = creds("alice", "alice-secret-12");
    let mut dir = Dir::new();
    dir.discovery.chap_accounts.push(alice.clone());
    let cfg = InitiatorConfig {
        session_type: SessionType::Discovery,
        target_name: None,
        ..config()
    };
    let refused = run(cfg.clone(), Preferences::default(), &dir);
    assert_eq!(refused.target_status(), LoginStatus::AUTHENTICATION_FAILURE);
    let cfg = InitiatorConfig {
        chap: Some(alice),
        ..cfg
    };
    let (_, t) = run(cfg, Preferences::default(), &dir).ok();
    assert_eq!(t.authenticated_user.as_deref(), Some("alice"));
}

#[test]
fn multi_pdu_text_with_c_bit() {
    // 200 extension keys: the operational request and the target's
    // NotUnderstood answers both exceed one 8 KiB login segment.
    let extra: Vec<(String, String)> = (0..200)
        .map(|n| {
            (
                format!("X-com.example.vendor.parameter.{n:04}"),
                "v".repeat(40),
            )
        })
        .collect();
    let cfg = InitiatorConfig {
        extra_keys: extra,
        ..config()
    };
    let run = run(cfg, Preferences::default(), &Dir::new());
    let continued_requests = run.requests().filter(|(r, _)| r.continue_).count();
    let continued_responses = run.responses().filter(|(r, _)| r.continue_).count();
    assert!(continued_requests >= 1, "initiator continued its text");
    assert!(continued_responses >= 1, "target continued its text");
    assert!(run.trace.iter().all(|p| p.data.len() <= MAX_LOGIN_SEGMENT));
    for (r, _) in run.requests().filter(|(r, _)| r.continue_) {
        assert!(!r.transit, "C=1 requires T=0");
    }
    let (i, t) = run.ok();
    assert_eq!(i.session, t.session);
}

#[test]
fn digests_negotiated() {
    let cfg = InitiatorConfig {
        prefs: Preferences {
            header_digest: vec!["CRC32C".into(), "None".into()],
            data_digest: vec!["CRC32C".into(), "None".into()],
            ..Preferences::default()
        },
        ..config()
    };
    let (i, t) = run(cfg, Preferences::default(), &Dir::new()).ok();
    assert!(i.connection.header_digest && i.connection.data_digest);
    assert!(t.connection.header_digest && t.connection.data_digest);
}

#[test]
fn forced_target_values_are_honoured() {
    let tprefs = Preferences {
        header_digest: vec!["CRC32C".into()],
        immediate_data: false,
        initial_r2t: false,
        max_burst_length: 16_384,
        first_burst_length: 8_192,
        max_recv_data_segment_length: 4_096,
        ..Preferences::default()
    };
    let cfg = InitiatorConfig {
        prefs: Preferences {
            initial_r2t: false,
            ..Preferences::default()
        },
        ..config()
    };
    let (i, t) = run(cfg, tprefs, &Dir::new()).ok();
    for s in [&i.session, &t.session] {
        assert!(!s.immediate_data);
        assert_eq!(s.max_burst_length, 16_384);
        assert_eq!(s.first_burst_length, 8_192);
    }
    assert!(i.connection.header_digest);
    assert_eq!(i.connection.max_xmit_data_segment_length, 4_096);
    assert_eq!(t.connection.max_recv_data_segment_length, 4_096);
}

#[test]
fn target_offers_keys_the_initiator_did_not() {
    // An initiator that offers nothing but MaxRecvDataSegmentLength (as a
    // minimal peer might): the target offers what it must change and waits
    // for the answers before leaving the stage.
    let tprefs = Preferences {
        immediate_data: false,
        max_burst_length: 16_384,
        ..Preferences::default()
    };
    let dir = Dir::new();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut t = TargetLogin::new(tprefs, peer());
    let op = |pairs: &[(&str, &str)]| {
        raw(
            Stage::LoginOperationalNegotiation,
            Stage::FullFeaturePhase,
            true,
            pairs,
        )
    };
    let (req, data) = op(&[
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("MaxRecvDataSegmentLength", "8192"),
    ]);
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!("target must not transit while its offers are open");
    };
    assert!(!login_response(&rsp).transit);
    let pairs = decode_pairs(&rsp.data).unwrap();
    assert_eq!(value(&pairs, "MaxBurstLength"), Some("16384"));
    assert_eq!(value(&pairs, "ImmediateData"), Some("No"));
    let (req, data) = op(&[("MaxBurstLength", "16384"), ("ImmediateData", "No")]);
    let TargetLoginStep::Complete(rsp, outcome) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!("answers complete the negotiation");
    };
    assert!(login_response(&rsp).transit);
    assert_eq!(outcome.session.max_burst_length, 16_384);
    assert!(!outcome.session.immediate_data);
}

#[test]
fn required_digest_refused_by_initiator() {
    let tprefs = Preferences {
        data_digest: vec!["CRC32C".into()],
        ..Preferences::default()
    };
    let cfg = InitiatorConfig {
        prefs: Preferences {
            data_digest: vec!["None".into()],
            ..Preferences::default()
        },
        ..config()
    };
    let run = run(cfg, tprefs, &Dir::new());
    assert_eq!(run.target_status(), LoginStatus::INITIATOR_ERROR);
}

#[test]
fn initiator_requiring_digest_fails_locally() {
    let tprefs = Preferences {
        header_digest: vec!["None".into()],
        ..Preferences::default()
    };
    let cfg = InitiatorConfig {
        prefs: Preferences {
            header_digest: vec!["CRC32C".into()],
            ..Preferences::default()
        },
        ..config()
    };
    match run(cfg, tprefs, &Dir::new()).end {
        End::InitiatorFailed(LoginError::Negotiation(NegotiationError::Required(k))) => {
            assert_eq!(k, "HeaderDigest")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connection_added_to_existing_session() {
    let cfg = InitiatorConfig {
        tsih: 0x0100,
        cid: 2,
        ..config()
    };
    let added = run(cfg.clone(), Preferences::default(), &Dir::new());
    let op = decode_pairs(&added.requests().nth(1).unwrap().1.data).unwrap();
    assert_eq!(value(&op, "MaxBurstLength"), None, "no leading-only keys");
    let (i, t) = added.ok();
    assert_eq!((i.tsih, t.tsih, t.cid), (0x0100, 0x0100, 2));
    let unknown = InitiatorConfig {
        tsih: 0x0999,
        ..cfg
    };
    let refused = run(unknown, Preferences::default(), &Dir::new());
    assert_eq!(refused.target_status(), LoginStatus::SESSION_DOES_NOT_EXIST);
}

/// A Login Request with the login's identity.
fn raw(
    csg: Stage,
    nsg: Stage,
    transit: bool,
    pairs: &[(&str, &str)],
) -> (LoginRequest, bytes::Bytes) {
    let req = LoginRequest {
        transit,
        continue_: false,
        csg,
        nsg,
        version_max: 0,
        version_min: 0,
        isid: ISID,
        tsih: 0,
        itt: ITT,
        cid: 1,
        cmd_sn: 100,
        exp_stat_sn: 0,
    };
    (req, encode_pairs(pairs))
}

fn status_of(step: TargetLoginStep) -> LoginStatus {
    match step {
        TargetLoginStep::Fail(pdu, status) => {
            let r = login_response(&pdu);
            assert_eq!(
                LoginStatus::from_parts(r.status_class, r.status_detail),
                status
            );
            status
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn first_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("SessionType", "Normal"),
        ("AuthMethod", "None"),
    ]
}

#[rstest]
#[case::only_newer(1, 2, LoginStatus::UNSUPPORTED_VERSION)]
#[case::range_includes_zero(0, 3, LoginStatus::SUCCESS)]
fn version_ranges(#[case] min: u8, #[case] max: u8, #[case] expect: LoginStatus) {
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let (mut req, data) = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        true,
        &first_pairs(),
    );
    req.version_min = min;
    req.version_max = max;
    let step = t.handle(&req, &data, &Dir::new(), &mut ChaCha8Rng::seed_from_u64(0));
    if expect == LoginStatus::SUCCESS {
        let TargetLoginStep::Continue(rsp) = step else {
            panic!("{step:?}")
        };
        let r = login_response(&rsp);
        assert_eq!((r.version_max, r.version_active), (0, 0));
    } else {
        assert_eq!(status_of(step), expect);
    }
}

#[test]
fn version_mismatch() {
    let run = run_with(config(), Preferences::default(), &Dir::new(), |r| {
        r.version_min = 1;
        r.version_max = 1;
    });
    assert_eq!(run.target_status(), LoginStatus::UNSUPPORTED_VERSION);
    assert_eq!(run.trace.len(), 2);
}

#[test]
fn transit_only_when_both_agree() {
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let dir = Dir::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pairs = [("InitiatorName", INITIATOR), ("TargetName", TARGET)];
    let (req, data) = raw(
        Stage::LoginOperationalNegotiation,
        Stage::FullFeaturePhase,
        false,
        &pairs,
    );
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!("no transit without the initiator's T bit")
    };
    assert!(!login_response(&rsp).transit);
    let (req, data) = raw(
        Stage::LoginOperationalNegotiation,
        Stage::FullFeaturePhase,
        true,
        &[],
    );
    let step = t.handle(&req, &data, &dir, &mut rng);
    assert!(matches!(step, TargetLoginStep::Complete(..)), "{step:?}");
    assert!(t.is_done());
}

#[test]
fn initiator_sees_version_refusal() {
    let mut i = InitiatorLogin::new(config());
    let _ = i.start();
    let rsp = LoginResponse {
        isid: ISID,
        itt: ITT,
        status_class: 2,
        status_detail: 5,
        ..LoginResponse::default()
    };
    match i.handle(&rsp, &[], &mut ChaCha8Rng::seed_from_u64(0)) {
        InitiatorLoginStep::Failed(e) => {
            assert_eq!(e.status(), Some(LoginStatus::UNSUPPORTED_VERSION));
            assert_eq!(e.status_class(), Some(2));
        }
        other => panic!("{other:?}"),
    }
}

#[rstest]
#[case::no_initiator_name(&[("TargetName", TARGET)], LoginStatus::MISSING_PARAMETER)]
#[case::empty_initiator_name(&[("InitiatorName", ""), ("TargetName", TARGET)], LoginStatus::MISSING_PARAMETER)]
#[case::no_target_name(&[("InitiatorName", INITIATOR)], LoginStatus::MISSING_PARAMETER)]
#[case::unknown_session_type(&[("InitiatorName", INITIATOR), ("SessionType", "Bulk")], LoginStatus::SESSION_TYPE_NOT_SUPPORTED)]
#[case::unknown_target(&[("InitiatorName", INITIATOR), ("TargetName", "iqn.x:y")], LoginStatus::NOT_FOUND)]
#[case::malformed_text(&[("InitiatorName", INITIATOR), ("=x", "")], LoginStatus::INITIATOR_ERROR)]
fn first_request_checks(#[case] pairs: &[(&str, &str)], #[case] expect: LoginStatus) {
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let (req, data) = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        true,
        pairs,
    );
    let step = t.handle(&req, &data, &Dir::new(), &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(status_of(step), expect);
    assert!(t.is_done());
}

#[rstest]
#[case::reserved_stage(Stage::Reserved, Stage::FullFeaturePhase, true, false)]
#[case::csg_full_feature(Stage::FullFeaturePhase, Stage::FullFeaturePhase, true, false)]
#[case::transit_backwards(
    Stage::LoginOperationalNegotiation,
    Stage::SecurityNegotiation,
    true,
    false
)]
#[case::transit_to_reserved(Stage::SecurityNegotiation, Stage::Reserved, true, false)]
#[case::c_and_t(
    Stage::SecurityNegotiation,
    Stage::LoginOperationalNegotiation,
    true,
    true
)]
fn stage_rules(#[case] csg: Stage, #[case] nsg: Stage, #[case] transit: bool, #[case] cont: bool) {
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let (mut req, data) = raw(csg, nsg, transit, &first_pairs());
    req.continue_ = cont;
    let step = t.handle(&req, &data, &Dir::new(), &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(status_of(step), LoginStatus::INITIATOR_ERROR);
}

/// Drives a target with raw requests; returns the last step.
fn drive(
    t: &mut TargetLogin,
    dir: &Dir,
    reqs: Vec<(LoginRequest, bytes::Bytes)>,
) -> TargetLoginStep {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let n = reqs.len();
    for (k, (req, data)) in reqs.into_iter().enumerate() {
        let step = t.handle(&req, &data, dir, &mut rng);
        if k + 1 == n {
            return step;
        }
        assert!(matches!(step, TargetLoginStep::Continue(_)), "{step:?}");
    }
    unreachable!()
}

#[rstest]
#[case::itt(|r: &mut LoginRequest| r.itt += 1)]
#[case::isid(|r: &mut LoginRequest| r.isid.0[5] ^= 1)]
#[case::cid(|r: &mut LoginRequest| r.cid += 1)]
#[case::tsih(|r: &mut LoginRequest| r.tsih = 5)]
#[case::stage_skipped(|r: &mut LoginRequest| r.csg = Stage::LoginOperationalNegotiation)]
fn identity_must_not_change(#[case] change: fn(&mut LoginRequest)) {
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let first = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        false,
        &first_pairs(),
    );
    let (mut second, data) = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        true,
        &[],
    );
    change(&mut second);
    let step = drive(&mut t, &Dir::new(), vec![first, (second, data)]);
    assert_eq!(status_of(step), LoginStatus::INITIATOR_ERROR);
}

#[test]
fn skipping_security_requires_no_auth() {
    let pairs = [
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("MaxRecvDataSegmentLength", "8192"),
    ];
    let op = raw(
        Stage::LoginOperationalNegotiation,
        Stage::FullFeaturePhase,
        true,
        &pairs,
    );
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let step = drive(&mut t, &Dir::new(), vec![op.clone()]);
    assert!(matches!(step, TargetLoginStep::Complete(..)), "{step:?}");
    let dir = Dir::new().chap(&[creds("alice", "alice-secret-12")], None);
    let mut t = TargetLogin::new(Preferences::default(), peer());
    assert_eq!(
        status_of(drive(&mut t, &dir, vec![op])),
        LoginStatus::AUTHENTICATION_FAILURE
    );
}

#[test]
fn security_straight_to_full_feature() {
    let req = raw(
        Stage::SecurityNegotiation,
        Stage::FullFeaturePhase,
        true,
        &first_pairs(),
    );
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let TargetLoginStep::Complete(rsp, outcome) = drive(&mut t, &Dir::new(), vec![req]) else {
        panic!()
    };
    let r = login_response(&rsp);
    assert!(r.transit);
    assert_eq!(
        (r.csg, r.nsg),
        (Stage::SecurityNegotiation, Stage::FullFeaturePhase)
    );
    assert_eq!(outcome.session.max_burst_length, 262_144);
}

#[test]
fn authentication_keys_after_security_stage() {
    let first = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        true,
        &first_pairs(),
    );
    let op = raw(
        Stage::LoginOperationalNegotiation,
        Stage::FullFeaturePhase,
        true,
        &[("AuthMethod", "None")],
    );
    let mut t = TargetLogin::new(Preferences::default(), peer());
    assert_eq!(
        status_of(drive(&mut t, &Dir::new(), vec![first, op])),
        LoginStatus::INITIATOR_ERROR
    );
}

/// The exact sequence libiscsi's login.c sends with CHAP: T=1 already in
/// the first PDU, CHAP_A with T=0, then CHAP_N/CHAP_R with T=1, then all
/// operational keys at once (including IFMarker/OFMarker=No).
#[test]
fn libiscsi_chap_sequence() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(std::slice::from_ref(&alice), None);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let sec = |transit, pairs: &[(&str, &str)]| {
        raw(
            Stage::SecurityNegotiation,
            Stage::LoginOperationalNegotiation,
            transit,
            pairs,
        )
    };
    let (req, data) = sec(
        true,
        &[
            ("InitiatorName", INITIATOR),
            ("TargetName", TARGET),
            ("SessionType", "Normal"),
            ("AuthMethod", "CHAP,None"),
        ],
    );
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!()
    };
    assert!(
        !login_response(&rsp).transit,
        "CHAP must run before transit"
    );
    let pairs = decode_pairs(&rsp.data).unwrap();
    assert_eq!(value(&pairs, "AuthMethod"), Some("CHAP"));

    let (req, data) = sec(false, &[("CHAP_A", "5")]);
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!()
    };
    let pairs = decode_pairs(&rsp.data).unwrap();
    assert_eq!(value(&pairs, "CHAP_A"), Some("5"));
    let id: u8 = value(&pairs, "CHAP_I").unwrap().parse().unwrap();
    let c = decode_binary(value(&pairs, "CHAP_C").unwrap()).unwrap();
    assert!(c.len() >= 16);
    let r = encode_hex(&chap::response(id, alice.secret.as_bytes(), &c)).to_uppercase();
    let r = r.replacen("0X", "0x", 1);
    let (req, data) = sec(true, &[("CHAP_N", "alice"), ("CHAP_R", &r)]);
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!()
    };
    let h = login_response(&rsp);
    assert!(h.transit && h.nsg == Stage::LoginOperationalNegotiation);

    let (req, data) = raw(
        Stage::LoginOperationalNegotiation,
        Stage::FullFeaturePhase,
        true,
        &[
            ("HeaderDigest", "None,CRC32C"),
            ("DataDigest", "None"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "262144"),
            ("DefaultTime2Wait", "2"),
            ("DefaultTime2Retain", "0"),
            ("MaxOutstandingR2T", "1"),
            ("ErrorRecoveryLevel", "0"),
            ("IFMarker", "No"),
            ("OFMarker", "No"),
            ("MaxConnections", "1"),
            ("MaxRecvDataSegmentLength", "262144"),
            ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"),
        ],
    );
    let TargetLoginStep::Complete(rsp, outcome) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!()
    };
    let pairs = decode_pairs(&rsp.data).unwrap();
    assert_eq!(value(&pairs, "IFMarker"), Some("No"));
    assert_eq!(value(&pairs, "OFMarker"), Some("No"));
    assert_eq!(value(&pairs, "HeaderDigest"), Some("None"));
    assert_eq!(value(&pairs, "MaxRecvDataSegmentLength"), Some("262144"));
    assert_eq!(outcome.authenticated_user.as_deref(), Some("alice"));
    assert_eq!(outcome.session.default_time2retain, 0);
}

/// libiscsi with AuthMethod=CHAP,None against a target without CHAP, whose
/// operational PDU repeats InitiatorName, TargetName and SessionType.
#[test]
fn repeated_names_are_tolerated() {
    let names = [
        ("InitiatorName", INITIATOR),
        ("TargetName", TARGET),
        ("SessionType", "Normal"),
    ];
    let mut first = names.to_vec();
    first.push(("AuthMethod", "CHAP,None"));
    let mut op = names.to_vec();
    op.push(("MaxRecvDataSegmentLength", "65536"));
    let reqs = vec![
        raw(
            Stage::SecurityNegotiation,
            Stage::LoginOperationalNegotiation,
            true,
            &first,
        ),
        raw(
            Stage::LoginOperationalNegotiation,
            Stage::FullFeaturePhase,
            true,
            &op,
        ),
    ];
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let step = drive(&mut t, &Dir::new(), reqs);
    let TargetLoginStep::Complete(_, outcome) = step else {
        panic!("{step:?}")
    };
    assert_eq!(outcome.connection.max_xmit_data_segment_length, 65536);
}

#[test]
fn reflected_challenge_is_refused() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(
        std::slice::from_ref(&alice),
        Some(creds("disk1", "target-secret-1")),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let sec = |transit, pairs: &[(&str, &str)]| {
        raw(
            Stage::SecurityNegotiation,
            Stage::LoginOperationalNegotiation,
            transit,
            pairs,
        )
    };
    let mut first = first_pairs();
    first[3] = ("AuthMethod", "CHAP");
    let (req, data) = sec(false, &first);
    let _ = t.handle(&req, &data, &dir, &mut rng);
    let (req, data) = sec(false, &[("CHAP_A", "5")]);
    let TargetLoginStep::Continue(rsp) = t.handle(&req, &data, &dir, &mut rng) else {
        panic!()
    };
    let pairs = decode_pairs(&rsp.data).unwrap();
    let id = value(&pairs, "CHAP_I").unwrap().to_string();
    let c = value(&pairs, "CHAP_C").unwrap().to_string();
    let r = encode_hex(&chap::response(
        id.parse().unwrap(),
        alice.secret.as_bytes(),
        &decode_binary(&c).unwrap(),
    ));
    let (req, data) = sec(
        true,
        &[
            ("CHAP_N", "alice"),
            ("CHAP_R", &r),
            ("CHAP_I", &id),
            ("CHAP_C", &c),
        ],
    );
    assert_eq!(
        status_of(t.handle(&req, &data, &dir, &mut rng)),
        LoginStatus::AUTHENTICATION_FAILURE
    );
}

#[test]
fn endless_keys_fail_cleanly() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let dir = Dir::new();
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let (req, data) = raw(
        Stage::SecurityNegotiation,
        Stage::LoginOperationalNegotiation,
        false,
        &first_pairs(),
    );
    let _ = t.handle(&req, &data, &dir, &mut rng);
    for round in 0..1000 {
        let keys: Vec<(String, String)> = (0..20)
            .map(|k| (format!("X-attack-{round}-{k}"), "x".into()))
            .collect();
        let (req, _) = raw(
            Stage::SecurityNegotiation,
            Stage::LoginOperationalNegotiation,
            false,
            &[],
        );
        match t.handle(&req, &encode_pairs(&keys), &dir, &mut rng) {
            TargetLoginStep::Continue(_) => continue,
            step => {
                assert_eq!(status_of(step), LoginStatus::OUT_OF_RESOURCES);
                assert!(round < 100, "refused after {round} rounds");
                return;
            }
        }
    }
    panic!("endless keys were accepted");
}

#[test]
fn endless_continuation_fails_cleanly() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let dir = Dir::new();
    let mut t = TargetLogin::new(Preferences::default(), peer());
    let chunk = vec![b'a'; MAX_LOGIN_SEGMENT];
    for n in 0..100 {
        let (mut req, _) = raw(
            Stage::SecurityNegotiation,
            Stage::LoginOperationalNegotiation,
            false,
            &[],
        );
        req.continue_ = true;
        match t.handle(&req, &chunk, &dir, &mut rng) {
            TargetLoginStep::Continue(rsp) => assert!(rsp.data.is_empty()),
            step => {
                assert_eq!(status_of(step), LoginStatus::OUT_OF_RESOURCES);
                assert_eq!(n, MAX_LOGIN_TEXT / MAX_LOGIN_SEGMENT);
                return;
            }
        }
    }
    panic!("unbounded text accepted");
}

#[test]
fn redirection_is_reported() {
    let mut i = InitiatorLogin::new(config());
    let _ = i.start();
    let rsp = LoginResponse {
        isid: ISID,
        itt: ITT,
        status_class: 1,
        status_detail: 1,
        ..LoginResponse::default()
    };
    let data = encode_pairs(&[("TargetAddress", "192.0.2.20:3260,2")]);
    match i.handle(&rsp, &data, &mut ChaCha8Rng::seed_from_u64(0)) {
        InitiatorLoginStep::Failed(e) => {
            assert_eq!(
                e,
                LoginError::Redirect {
                    address: "192.0.2.20:3260,2".into(),
                    permanent: false
                }
            );
            assert_eq!(e.status_class(), Some(1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn initiator_refuses_foreign_responses() {
    let mut i = InitiatorLogin::new(config());
    let _ = i.start();
    let rsp = LoginResponse {
        isid: ISID,
        itt: ITT + 1,
        ..LoginResponse::default()
    };
    assert!(matches!(
        i.handle(&rsp, &[], &mut ChaCha8Rng::seed_from_u64(0)),
        InitiatorLoginStep::Failed(LoginError::Protocol(_))
    ));
}

#[test]
fn initiator_refuses_unrequested_auth_method() {
    let mut i = InitiatorLogin::new(config());
    let _ = i.start();
    let rsp = LoginResponse {
        isid: ISID,
        itt: ITT,
        ..LoginResponse::default()
    };
    let data = encode_pairs(&[("AuthMethod", "CHAP")]);
    assert!(matches!(
        i.handle(&rsp, &data, &mut ChaCha8Rng::seed_from_u64(0)),
        InitiatorLoginStep::Failed(LoginError::AuthMethod(_))
    ));
}

#[test]
fn deterministic_for_a_seed() {
    let alice = creds("alice", "alice-secret-12");
    let dir = Dir::new().chap(std::slice::from_ref(&alice), None);
    let cfg = InitiatorConfig {
        chap: Some(alice),
        ..config()
    };
    let a = run(cfg.clone(), Preferences::default(), &dir).trace;
    let b = run(cfg, Preferences::default(), &dir).trace;
    assert_eq!(a, b);
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn stage() -> impl Strategy<Value = Stage> {
        (0u8..4).prop_map(Stage::from_bits)
    }

    fn pair() -> impl Strategy<Value = Vec<u8>> {
        let key = prop::sample::select(vec![
            "InitiatorName",
            "TargetName",
            "SessionType",
            "AuthMethod",
            "CHAP_A",
            "CHAP_I",
            "CHAP_C",
            "CHAP_N",
            "CHAP_R",
            "HeaderDigest",
            "MaxBurstLength",
            "FirstBurstLength",
            "ImmediateData",
            "MaxRecvDataSegmentLength",
            "X-junk",
        ]);
        let value = prop::sample::select(vec![
            INITIATOR,
            TARGET,
            "Normal",
            "Discovery",
            "CHAP",
            "None",
            "5",
            "0x00",
            "0bAA==",
            "alice",
            "Yes",
            "No",
            "512",
            "Reject",
            "",
            "0xffffffffffffffffff",
        ]);
        prop_oneof![
            (key, value).prop_map(|(k, v)| format!("{k}={v}\0").into_bytes()),
            prop::collection::vec(any::<u8>(), 0..24),
        ]
    }

    fn request() -> impl Strategy<Value = (LoginRequest, Vec<u8>)> {
        (
            (any::<bool>(), any::<bool>(), stage(), stage()),
            (0u8..2, 0u8..2, prop::sample::select(vec![0u16, 0x0100, 7])),
            prop::collection::vec(pair(), 0..6),
        )
            .prop_map(|((transit, cont, csg, nsg), (vmin, vmax, tsih), pairs)| {
                let req = LoginRequest {
                    transit,
                    continue_: cont,
                    csg,
                    nsg,
                    version_max: vmax,
                    version_min: vmin,
                    isid: ISID,
                    tsih,
                    itt: ITT,
                    cid: 1,
                    cmd_sn: 100,
                    exp_stat_sn: 0,
                };
                (req, pairs.concat())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of Login Requests ends in responses, never a panic,
        /// and every response echoes the request's ISID and ITT.
        #[test]
        fn target_never_panics(reqs in prop::collection::vec(request(), 1..8)) {
            let alice = creds("alice", "alice-secret-12");
            let dir = Dir::new().chap(std::slice::from_ref(&alice), Some(creds("t", "target-secret-1")));
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut t = TargetLogin::new(Preferences::default(), peer());
            for (req, data) in reqs {
                let pdu = match t.handle(&req, &data, &dir, &mut rng) {
                    TargetLoginStep::Continue(p) | TargetLoginStep::Complete(p, _) => p,
                    TargetLoginStep::Fail(p, s) => {
                        prop_assert_ne!(s, LoginStatus::SUCCESS);
                        p
                    }
                };
                let r = login_response(&pdu);
                prop_assert_eq!((r.isid, r.itt), (ISID, ITT));
                prop_assert!(pdu.data.len() <= MAX_LOGIN_SEGMENT);
            }
        }

        /// Arbitrary responses never make the initiator panic.
        #[test]
        fn initiator_never_panics(
            rsps in prop::collection::vec((any::<bool>(), any::<bool>(), stage(), stage(), 0u8..4, prop::collection::vec(pair(), 0..6)), 1..8)
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut i = InitiatorLogin::new(InitiatorConfig {
                chap: Some(creds("alice", "alice-secret-12")),
                mutual_chap: Some(creds("t", "target-secret-1")),
                ..config()
            });
            let _ = i.start();
            for (transit, cont, csg, nsg, class, pairs) in rsps {
                let rsp = LoginResponse {
                    transit,
                    continue_: cont,
                    csg,
                    nsg,
                    isid: ISID,
                    itt: ITT,
                    status_class: class % 2,
                    ..LoginResponse::default()
                };
                if let InitiatorLoginStep::Send(p) = i.handle(&rsp, &pairs.concat(), &mut rng) {
                    prop_assert!(p.data.len() <= MAX_LOGIN_SEGMENT);
                }
            }
        }

        #[test]
        fn decode_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_pairs(&data);
        }
    }
}
