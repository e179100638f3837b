use super::*;
use proptest::prelude::*;
use rstest::rstest;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn target(session_type: SessionType) -> Negotiator {
    Negotiator::new(Role::Target, Preferences::default(), session_type)
}

fn initiator() -> Negotiator {
    Negotiator::new(Role::Initiator, Preferences::default(), SessionType::Normal)
}

/// The answer to a single offer, or `None` when none is due.
fn answer(n: &mut Negotiator, key: &str, value: &str) -> Option<String> {
    let answers = n.handle(&pairs(&[(key, value)])).unwrap();
    assert!(answers.len() <= 1, "{answers:?}");
    answers.into_iter().next().map(|(k, v)| {
        assert_eq!(k, key);
        v
    })
}

#[rstest]
#[case::digest_first_supported("HeaderDigest", "CRC32C,None", "CRC32C")]
#[case::digest_none("HeaderDigest", "None", "None")]
#[case::digest_unknown_values_ignored("DataDigest", "X-md5,None", "None")]
#[case::digest_none_supported("DataDigest", "MD5,SHA1", "Reject")]
#[case::maxconn_min("MaxConnections", "4", "1")]
#[case::maxconn_out_of_range("MaxConnections", "0", "Reject")]
#[case::maxconn_malformed("MaxConnections", "four", "Reject")]
#[case::initial_r2t_or("InitialR2T", "No", "Yes")]
#[case::immediate_and_yes("ImmediateData", "Yes", "Yes")]
#[case::immediate_and_no("ImmediateData", "No", "No")]
#[case::immediate_malformed("ImmediateData", "yes", "Reject")]
#[case::mbl_min_ours("MaxBurstLength", "1048576", "262144")]
#[case::mbl_min_theirs("MaxBurstLength", "16384", "16384")]
#[case::mbl_hex("MaxBurstLength", "0x4000", "16384")]
#[case::mbl_below_range("MaxBurstLength", "511", "Reject")]
#[case::mbl_above_range("MaxBurstLength", "16777216", "Reject")]
#[case::fbl_min("FirstBurstLength", "8192", "8192")]
#[case::t2w_max_ours("DefaultTime2Wait", "0", "2")]
#[case::t2w_max_theirs("DefaultTime2Wait", "10", "10")]
#[case::t2w_out_of_range("DefaultTime2Wait", "3601", "Reject")]
#[case::t2r_min_theirs("DefaultTime2Retain", "0", "0")]
#[case::t2r_min_ours("DefaultTime2Retain", "60", "20")]
#[case::mor2t_min("MaxOutstandingR2T", "8", "1")]
#[case::pdu_order_or("DataPDUInOrder", "No", "Yes")]
#[case::seq_order_or("DataSequenceInOrder", "No", "Yes")]
#[case::erl_min("ErrorRecoveryLevel", "2", "0")]
#[case::erl_out_of_range("ErrorRecoveryLevel", "3", "Reject")]
#[case::protocol_level_min("iSCSIProtocolLevel", "2", "1")]
#[case::protocol_level_out_of_range("iSCSIProtocolLevel", "32", "Reject")]
#[case::task_reporting_list("TaskReporting", "FastAbort,RFC3720", "RFC3720")]
#[case::task_reporting_unsupported("TaskReporting", "FastAbort", "Reject")]
#[case::ifmarker_no("IFMarker", "No", "No")]
#[case::ofmarker_yes_answered_no("OFMarker", "Yes", "No")]
#[case::ifmarkint_reject("IFMarkInt", "2048~8192", "Reject")]
#[case::ofmarkint_reject("OFMarkInt", "2048~8192", "Reject")]
#[case::private_extension("X-com.example.Foo", "bar", "NotUnderstood")]
#[case::public_extension("X#NodeArchitecture", "ExampleOS/v1", "NotUnderstood")]
#[case::unknown("FooBar", "1", "NotUnderstood")]
#[case::target_only_key("TargetAlias", "disk", "Reject")]
#[case::target_only_tpgt("TargetPortalGroupTag", "1", "Reject")]
#[case::ffpo_key_in_login("SendTargets", "All", "Reject")]
#[case::security_key("AuthMethod", "None", "Reject")]
#[case::chap_key("CHAP_A", "5", "Reject")]
#[case::mrdsl_out_of_range("MaxRecvDataSegmentLength", "100", "Reject")]
fn target_answers_in_normal_login(#[case] key: &str, #[case] offer: &str, #[case] expect: &str) {
    let mut n = target(SessionType::Normal);
    assert_eq!(answer(&mut n, key, offer).as_deref(), Some(expect));
}

#[rstest]
#[case::maxconn("MaxConnections", "1")]
#[case::initial_r2t("InitialR2T", "Yes")]
#[case::immediate("ImmediateData", "Yes")]
#[case::mbl("MaxBurstLength", "65536")]
#[case::fbl("FirstBurstLength", "65536")]
#[case::mor2t("MaxOutstandingR2T", "1")]
#[case::pdu_order("DataPDUInOrder", "Yes")]
#[case::seq_order("DataSequenceInOrder", "Yes")]
#[case::task_reporting("TaskReporting", "RFC3720")]
#[case::protocol_level("iSCSIProtocolLevel", "1")]
fn keys_irrelevant_in_discovery(#[case] key: &str, #[case] offer: &str) {
    let mut n = target(SessionType::Discovery);
    assert_eq!(answer(&mut n, key, offer).as_deref(), Some("Irrelevant"));
}

#[rstest]
#[case::digest("HeaderDigest", "CRC32C", "CRC32C")]
#[case::t2w("DefaultTime2Wait", "5", "5")]
#[case::t2r("DefaultTime2Retain", "0", "0")]
#[case::erl("ErrorRecoveryLevel", "0", "0")]
fn keys_valid_in_discovery(#[case] key: &str, #[case] offer: &str, #[case] expect: &str) {
    let mut n = target(SessionType::Discovery);
    assert_eq!(answer(&mut n, key, offer).as_deref(), Some(expect));
}

#[rstest]
#[case::target_alias("TargetAlias", "disk one")]
#[case::tpgt("TargetPortalGroupTag", "3")]
#[case::target_address("TargetAddress", "10.0.0.1:3260,1")]
fn initiator_records_target_declarations(#[case] key: &str, #[case] value: &str) {
    let mut n = initiator();
    assert_eq!(answer(&mut n, key, value), None);
}

#[rstest]
#[case::initiator_only("InitiatorName", "iqn.2000-01.com.example:i", "Reject")]
#[case::tpgt_out_of_range("TargetPortalGroupTag", "70000", "Reject")]
#[case::target_offers_mbl("MaxBurstLength", "65536", "65536")]
#[case::target_offers_immediate_no("ImmediateData", "No", "No")]
#[case::target_offers_digest("HeaderDigest", "CRC32C", "CRC32C")]
fn initiator_answers_target_offers(#[case] key: &str, #[case] value: &str, #[case] expect: &str) {
    let mut n = initiator();
    assert_eq!(answer(&mut n, key, value).as_deref(), Some(expect));
}

#[test]
fn declarations_are_recorded() {
    let mut n = target(SessionType::Normal);
    let answers = n
        .handle(&pairs(&[
            ("InitiatorName", "iqn.2000-01.com.example:host"),
            ("InitiatorAlias", "host"),
            ("TargetName", "iqn.2000-01.com.example:disk"),
            ("SessionType", "Normal"),
            ("MaxRecvDataSegmentLength", "65536"),
        ]))
        .unwrap();
    // Only the target's own MaxRecvDataSegmentLength goes back (§13.12).
    assert_eq!(answers, pairs(&[("MaxRecvDataSegmentLength", "262144")]));
    let s = n.session_params();
    assert_eq!(s.initiator_name, "iqn.2000-01.com.example:host");
    assert_eq!(s.initiator_alias.as_deref(), Some("host"));
    assert_eq!(
        s.target_name.as_deref(),
        Some("iqn.2000-01.com.example:disk")
    );
    let c = n.connection_params();
    assert_eq!(c.max_xmit_data_segment_length, 65536);
    assert_eq!(c.max_recv_data_segment_length, 262144);
    // Declared once: take_offers does not repeat it.
    assert!(n.take_offers().is_empty());
    assert!(n.is_settled());
}

#[test]
fn session_type_mismatch_is_rejected() {
    let mut n = target(SessionType::Normal);
    assert_eq!(
        answer(&mut n, "SessionType", "Discovery").as_deref(),
        Some("Reject")
    );
    let mut n = target(SessionType::Normal);
    assert_eq!(
        answer(&mut n, "SessionType", "Bogus").as_deref(),
        Some("Reject")
    );
}

#[test]
fn duplicate_in_one_batch() {
    let mut n = target(SessionType::Normal);
    let err = n
        .handle(&pairs(&[
            ("MaxBurstLength", "65536"),
            ("MaxBurstLength", "65536"),
        ]))
        .unwrap_err();
    assert_eq!(err, NegotiationError::Duplicate("MaxBurstLength".into()));
}

#[test]
fn duplicate_across_batches() {
    let mut n = target(SessionType::Normal);
    n.handle(&pairs(&[("ImmediateData", "Yes")])).unwrap();
    assert_eq!(
        n.handle(&pairs(&[("ImmediateData", "No")])),
        Err(NegotiationError::Duplicate("ImmediateData".into()))
    );
}

#[test]
fn unknown_key_twice_is_a_duplicate() {
    let mut n = target(SessionType::Normal);
    n.handle(&pairs(&[("X-a", "1")])).unwrap();
    assert_eq!(
        n.handle(&pairs(&[("X-a", "1")])),
        Err(NegotiationError::Duplicate("X-a".into()))
    );
}

#[test]
fn repeated_identical_declaration_is_tolerated() {
    let mut n = target(SessionType::Normal);
    let name = ("InitiatorName", "iqn.2000-01.com.example:host");
    n.handle(&pairs(&[name])).unwrap();
    assert_eq!(n.handle(&pairs(&[name])).unwrap(), vec![]);
    assert_eq!(
        n.handle(&pairs(&[(
            "InitiatorName",
            "iqn.2000-01.com.example:other"
        )])),
        Err(NegotiationError::Duplicate("InitiatorName".into()))
    );
}

#[test]
fn answered_offer_renegotiated_is_a_duplicate() {
    let mut n = initiator();
    n.take_offers();
    n.handle(&pairs(&[("MaxBurstLength", "65536")])).unwrap();
    assert_eq!(
        n.handle(&pairs(&[("MaxBurstLength", "4096")])),
        Err(NegotiationError::Duplicate("MaxBurstLength".into()))
    );
}

#[rstest]
#[case("Reject")]
#[case("Irrelevant")]
#[case("NotUnderstood")]
fn reserved_values_may_not_be_offered(#[case] value: &str) {
    let mut n = target(SessionType::Normal);
    assert!(matches!(
        n.handle(&pairs(&[("MaxBurstLength", value)])),
        Err(NegotiationError::InvalidOffer { .. })
    ));
}

#[test]
fn endless_keys_are_refused() {
    let mut n = target(SessionType::Normal);
    let keys: Vec<(String, String)> = (0..MAX_KEYS + 1)
        .map(|i| (format!("X-k{i}"), "v".to_string()))
        .collect();
    assert_eq!(
        n.handle(&keys),
        Err(NegotiationError::TooManyKeys(MAX_KEYS))
    );
}

#[rstest]
#[case::mbl_first(&[("MaxBurstLength", "16384"), ("FirstBurstLength", "65536")])]
#[case::fbl_first(&[("FirstBurstLength", "65536"), ("MaxBurstLength", "16384")])]
fn first_burst_clamped_to_max_burst(#[case] offer: &[(&str, &str)]) {
    let mut n = target(SessionType::Normal);
    let mut answers = n.handle(&pairs(offer)).unwrap();
    answers.sort();
    assert_eq!(
        answers,
        pairs(&[("FirstBurstLength", "16384"), ("MaxBurstLength", "16384")])
    );
    assert_eq!(n.session_params().first_burst_length, 16384);
}

#[test]
fn first_burst_irrelevant_without_unsolicited_data() {
    let mut n = target(SessionType::Normal);
    let answers = n
        .handle(&pairs(&[
            ("FirstBurstLength", "8192"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "No"),
        ]))
        .unwrap();
    assert_eq!(
        answers,
        pairs(&[
            ("FirstBurstLength", "Irrelevant"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "No"),
        ])
    );
    assert_eq!(n.session_params().first_burst_length, 65536);
}

#[test]
fn forced_immediate_data_makes_first_burst_irrelevant() {
    let prefs = Preferences {
        immediate_data: false,
        ..Preferences::default()
    };
    let mut n = Negotiator::new(Role::Target, prefs, SessionType::Normal);
    let answers = n
        .handle(&pairs(&[
            ("ImmediateData", "Yes"),
            ("FirstBurstLength", "8192"),
        ]))
        .unwrap();
    assert_eq!(
        answers,
        pairs(&[("ImmediateData", "No"), ("FirstBurstLength", "Irrelevant")])
    );
    assert!(!n.session_params().immediate_data);
}

#[rstest]
#[case::mbl("MaxBurstLength", "Reject")]
#[case::digest("HeaderDigest", "Reject")]
#[case::erl("ErrorRecoveryLevel", "Reject")]
#[case::initiator_name("InitiatorName", "Reject")]
#[case::extension("X-foo", "NotUnderstood")]
fn full_feature_phase_rejects_login_keys(#[case] key: &str, #[case] expect: &str) {
    let mut n = Negotiator::full_feature(
        Role::Target,
        Preferences::default(),
        SessionParams::default(),
        ConnectionParams::default(),
    );
    assert_eq!(answer(&mut n, key, "1").as_deref(), Some(expect));
}

#[test]
fn full_feature_max_recv_data_segment_length_renegotiation() {
    let mut n = target(SessionType::Normal);
    n.handle(&pairs(&[("MaxRecvDataSegmentLength", "8192")]))
        .unwrap();
    n.enter_full_feature();
    let answers = n
        .handle(&pairs(&[
            ("MaxRecvDataSegmentLength", "16384"),
            ("InitiatorAlias", "renamed"),
        ]))
        .unwrap();
    assert!(answers.is_empty());
    assert_eq!(n.connection_params().max_xmit_data_segment_length, 16384);
    assert_eq!(
        n.session_params().initiator_alias.as_deref(),
        Some("renamed")
    );
    // A later exchange may declare it again.
    n.begin_exchange();
    n.handle(&pairs(&[("MaxRecvDataSegmentLength", "32768")]))
        .unwrap();
    assert_eq!(n.connection_params().max_xmit_data_segment_length, 32768);
}

#[test]
fn full_feature_initiator_declares_new_limit() {
    let mut n = Negotiator::full_feature(
        Role::Initiator,
        Preferences::default(),
        SessionParams::default(),
        ConnectionParams::default(),
    );
    assert!(n.take_offers().is_empty());
    let pair = n.declare_max_recv_data_segment_length(65536);
    assert_eq!(pair, ("MaxRecvDataSegmentLength".into(), "65536".into()));
    assert_eq!(n.connection_params().max_recv_data_segment_length, 65536);
}

#[test]
fn send_targets_is_left_to_the_endpoint() {
    let mut n = Negotiator::full_feature(
        Role::Target,
        Preferences::default(),
        SessionParams {
            session_type: SessionType::Discovery,
            ..SessionParams::default()
        },
        ConnectionParams::default(),
    );
    assert_eq!(answer(&mut n, "SendTargets", "All"), None);
    assert_eq!(n.send_targets(), Some("All"));
}

#[test]
fn non_leading_connection_rejects_leading_only_keys() {
    let mut n = target(SessionType::Normal);
    n.set_leading(false);
    assert_eq!(
        answer(&mut n, "MaxBurstLength", "65536").as_deref(),
        Some("Reject")
    );
    assert_eq!(
        answer(&mut n, "HeaderDigest", "CRC32C").as_deref(),
        Some("CRC32C")
    );
}

#[test]
fn initiator_offers_every_operational_key() {
    let mut n = initiator();
    let offers = n.take_offers();
    let names: Vec<&str> = offers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "HeaderDigest",
            "DataDigest",
            "MaxConnections",
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
            "iSCSIProtocolLevel",
        ]
    );
    assert!(!n.is_settled());
    assert!(n.take_offers().is_empty(), "offers are made once");
}

#[test]
fn initiator_offers_in_discovery_and_non_leading() {
    let mut n = Negotiator::new(
        Role::Initiator,
        Preferences::default(),
        SessionType::Discovery,
    );
    let names: Vec<String> = n.take_offers().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "HeaderDigest",
            "DataDigest",
            "MaxRecvDataSegmentLength",
            "DefaultTime2Wait",
            "DefaultTime2Retain",
            "ErrorRecoveryLevel",
        ]
    );
    let mut n = initiator();
    n.set_leading(false);
    let names: Vec<String> = n.take_offers().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        ["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"]
    );
}

/// The initiator's offers answered by `answers`; the result of handle().
fn offers_answered(
    prefs: Preferences,
    answers: &[(&str, &str)],
) -> (Negotiator, Result<Vec<(String, String)>, NegotiationError>) {
    let mut n = Negotiator::new(Role::Initiator, prefs, SessionType::Normal);
    n.take_offers();
    let r = n.handle(&pairs(answers));
    (n, r)
}

#[rstest]
#[case::min_above_offer(&[("MaxBurstLength", "1048576")])]
#[case::max_below_offer(&[("DefaultTime2Wait", "1")])]
#[case::or_yes_answered_no(&[("InitialR2T", "No")])]
#[case::list_value_not_offered(&[("HeaderDigest", "SHA1")])]
#[case::list_answered_with_list(&[("HeaderDigest", "None,CRC32C")])]
#[case::malformed_number(&[("MaxBurstLength", "lots")])]
#[case::out_of_range(&[("MaxOutstandingR2T", "0")])]
#[case::malformed_bool(&[("DataPDUInOrder", "Maybe")])]
#[case::fbl_above_mbl(&[("MaxBurstLength", "16384"), ("FirstBurstLength", "65536")])]
fn originator_refuses_bad_answers(#[case] answers: &[(&str, &str)]) {
    let (_, r) = offers_answered(Preferences::default(), answers);
    assert!(
        matches!(r, Err(NegotiationError::BadAnswer { .. })),
        "{r:?}"
    );
}

#[test]
fn originator_refuses_yes_to_and_no() {
    let prefs = Preferences {
        immediate_data: false,
        ..Preferences::default()
    };
    let (_, r) = offers_answered(prefs, &[("ImmediateData", "Yes")]);
    assert!(matches!(r, Err(NegotiationError::BadAnswer { .. })));
}

#[test]
fn originator_applies_good_answers() {
    let (n, r) = offers_answered(
        Preferences {
            header_digest: vec!["CRC32C".into(), "None".into()],
            ..Preferences::default()
        },
        &[
            ("HeaderDigest", "CRC32C"),
            ("MaxBurstLength", "65536"),
            ("FirstBurstLength", "16384"),
            ("DefaultTime2Wait", "5"),
            ("ImmediateData", "No"),
            ("InitialR2T", "Yes"),
            ("iSCSIProtocolLevel", "NotUnderstood"),
            ("ErrorRecoveryLevel", "Irrelevant"),
        ],
    );
    assert_eq!(r.unwrap(), vec![]);
    let s = n.session_params();
    assert_eq!(s.max_burst_length, 65536);
    assert_eq!(s.first_burst_length, 16384);
    assert_eq!(s.default_time2wait, 5);
    assert!(!s.immediate_data);
    assert_eq!(s.iscsi_protocol_level, 0);
    assert!(n.connection_params().header_digest);
    assert!(!n.is_settled(), "other offers are unanswered");
}

#[test]
fn rejected_requirement_fails_finish() {
    let prefs = Preferences {
        header_digest: vec!["CRC32C".into()],
        ..Preferences::default()
    };
    let (n, r) = offers_answered(prefs, &[("HeaderDigest", "Reject")]);
    r.unwrap();
    assert_eq!(
        n.finish(),
        Err(NegotiationError::Required("HeaderDigest".into()))
    );
}

#[test]
fn target_offers_what_it_must_change() {
    let prefs = Preferences {
        header_digest: vec!["CRC32C".into()],
        immediate_data: false,
        max_burst_length: 65536,
        default_time2wait: 4,
        ..Preferences::default()
    };
    let mut t = Negotiator::new(Role::Target, prefs, SessionType::Normal);
    t.handle(&pairs(&[("MaxRecvDataSegmentLength", "8192")]))
        .unwrap();
    let offers = t.take_offers();
    assert_eq!(
        offers,
        pairs(&[
            ("HeaderDigest", "CRC32C"),
            ("ImmediateData", "No"),
            ("MaxBurstLength", "65536"),
            ("DefaultTime2Wait", "4"),
        ]),
        "FirstBurstLength is irrelevant with InitialR2T=Yes, ImmediateData=No"
    );
    assert!(!t.is_settled());
    // Offers that cross the initiator's own are checked as answers.
    let mut i = initiator();
    i.take_offers();
    assert_eq!(i.handle(&offers).unwrap(), vec![]);
    assert!(i.connection_params().header_digest);
    assert_eq!(i.session_params().max_burst_length, 65536);
}

#[test]
fn target_offers_first_burst_within_its_max_burst() {
    let prefs = Preferences {
        max_burst_length: 16384,
        ..Preferences::default()
    };
    let mut t = Negotiator::new(Role::Target, prefs, SessionType::Normal);
    t.handle(&pairs(&[("MaxRecvDataSegmentLength", "8192")]))
        .unwrap();
    assert_eq!(
        t.take_offers(),
        pairs(&[("MaxBurstLength", "16384"), ("FirstBurstLength", "16384")])
    );
}

#[test]
fn target_offer_rejected_fails_finish() {
    let prefs = Preferences {
        data_digest: vec!["CRC32C".into()],
        ..Preferences::default()
    };
    let mut t = Negotiator::new(Role::Target, prefs, SessionType::Normal);
    t.handle(&[]).unwrap();
    assert_eq!(t.take_offers()[0], ("DataDigest".into(), "CRC32C".into()));
    t.handle(&pairs(&[("DataDigest", "Reject")])).unwrap();
    assert!(t.is_settled());
    assert_eq!(
        t.finish(),
        Err(NegotiationError::Required("DataDigest".into()))
    );
}

#[test]
fn target_with_default_preferences_only_declares() {
    let mut t = target(SessionType::Normal);
    t.handle(&[]).unwrap();
    assert_eq!(
        t.take_offers(),
        pairs(&[("MaxRecvDataSegmentLength", "262144")])
    );
    assert!(t.is_settled());
    t.finish().unwrap();
}

#[test]
fn optional_answers_do_not_block_settlement() {
    let prefs = Preferences {
        immediate_data: false,
        ..Preferences::default()
    };
    let mut t = Negotiator::new(Role::Target, prefs, SessionType::Normal);
    t.handle(&[]).unwrap();
    let offers = t.take_offers();
    assert!(offers.contains(&("ImmediateData".into(), "No".into())));
    assert!(t.is_settled(), "AND with No needs no answer (§6.2.2)");
    assert!(!t.session_params().immediate_data);
    // A late answer must agree.
    assert!(matches!(
        t.handle(&pairs(&[("ImmediateData", "Yes")])),
        Err(NegotiationError::BadAnswer { .. })
    ));
}

/// Runs a login's operational negotiation between two negotiators the way
/// the login state machines do, and returns both.
fn negotiate(ip: Preferences, tp: Preferences, st: SessionType) -> (Negotiator, Negotiator) {
    let mut i = Negotiator::new(Role::Initiator, ip, st);
    let mut t = Negotiator::new(Role::Target, tp, st);
    let mut to_target = i.take_offers();
    for _ in 0..4 {
        let mut reply = t.handle(&to_target).expect("target handles");
        reply.extend(t.take_offers());
        let to_initiator = reply;
        to_target = i.handle(&to_initiator).expect("initiator handles");
        if i.is_settled() && t.is_settled() && to_target.is_empty() {
            break;
        }
    }
    assert!(i.is_settled() && t.is_settled());
    (i, t)
}

#[test]
fn negotiation_settles_between_preferences() {
    let tp = Preferences {
        header_digest: vec!["CRC32C".into()],
        max_burst_length: 65536,
        ..Preferences::default()
    };
    let ip = Preferences {
        header_digest: vec!["CRC32C".into(), "None".into()],
        ..Preferences::default()
    };
    let (i, t) = negotiate(ip, tp, SessionType::Normal);
    assert_eq!(i.session_params(), t.session_params());
    assert!(i.connection_params().header_digest);
    assert!(t.connection_params().header_digest);
    assert_eq!(i.session_params().max_burst_length, 65536);
    i.finish().unwrap();
    t.finish().unwrap();
}

fn prefs_strategy() -> impl Strategy<Value = Preferences> {
    let digest = prop::sample::select(vec![
        vec!["None"],
        vec!["CRC32C"],
        vec!["None", "CRC32C"],
        vec!["CRC32C", "None"],
    ]);
    (
        (
            digest.clone(),
            digest,
            1u16..4,
            any::<bool>(),
            any::<bool>(),
        ),
        (
            512u32..1_000_000,
            512u32..1_000_000,
            512u32..300_000,
            0u16..3600,
            0u16..3600,
        ),
        (1u16..8, any::<bool>(), any::<bool>(), 0u8..3, 0u8..3),
    )
        .prop_map(
            |((hd, dd, mc, r2t, imm), (mrdsl, mbl, fbl, t2w, t2r), (mor2t, pio, sio, erl, lvl))| {
                Preferences {
                    header_digest: hd.into_iter().map(String::from).collect(),
                    data_digest: dd.into_iter().map(String::from).collect(),
                    max_connections: mc,
                    initial_r2t: r2t,
                    immediate_data: imm,
                    max_recv_data_segment_length: mrdsl,
                    max_burst_length: mbl,
                    first_burst_length: fbl,
                    default_time2wait: t2w,
                    default_time2retain: t2r,
                    max_outstanding_r2t: mor2t,
                    data_pdu_in_order: pio,
                    data_sequence_in_order: sio,
                    error_recovery_level: erl,
                    iscsi_protocol_level: lvl,
                    task_reporting: vec!["RFC3720".into()],
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever both sides prefer, they end with the same values, and
    /// every value respects both sides' limits unless a side reports it.
    #[test]
    fn both_sides_agree(ip in prefs_strategy(), tp in prefs_strategy()) {
        let (i, t) = negotiate(ip.clone(), tp.clone(), SessionType::Normal);
        let (is, ts) = (i.session_params(), t.session_params());
        prop_assert_eq!(is.max_burst_length, ts.max_burst_length);
        prop_assert_eq!(is.first_burst_length, ts.first_burst_length);
        prop_assert_eq!(is.immediate_data, ts.immediate_data);
        prop_assert_eq!(is.initial_r2t, ts.initial_r2t);
        prop_assert_eq!(is.default_time2wait, ts.default_time2wait);
        prop_assert_eq!(is.default_time2retain, ts.default_time2retain);
        prop_assert_eq!(is.max_outstanding_r2t, ts.max_outstanding_r2t);
        prop_assert_eq!(is.error_recovery_level, ts.error_recovery_level);
        prop_assert_eq!(is.max_connections, ts.max_connections);
        prop_assert_eq!(is.data_pdu_in_order, ts.data_pdu_in_order);
        prop_assert_eq!(is.iscsi_protocol_level, ts.iscsi_protocol_level);
        let (ic, tc) = (i.connection_params(), t.connection_params());
        prop_assert_eq!(ic.header_digest, tc.header_digest);
        prop_assert_eq!(ic.data_digest, tc.data_digest);
        prop_assert_eq!(ic.max_xmit_data_segment_length, tp.max_recv_data_segment_length);
        prop_assert_eq!(tc.max_xmit_data_segment_length, ip.max_recv_data_segment_length);
        prop_assert!(is.max_burst_length <= ip.max_burst_length.min(tp.max_burst_length));
        let unsolicited = !is.initial_r2t || is.immediate_data;
        if unsolicited {
            prop_assert!(is.first_burst_length <= is.max_burst_length);
        }
        if !tp.immediate_data || !ip.immediate_data {
            prop_assert!(!is.immediate_data);
        }
        let digests_compatible = ip.header_digest.iter().any(|d| tp.header_digest.contains(d))
            && ip.data_digest.iter().any(|d| tp.data_digest.contains(d));
        if digests_compatible {
            prop_assert!(i.finish().is_ok(), "{:?}", i.finish());
            prop_assert!(t.finish().is_ok(), "{:?}", t.finish());
        } else {
            prop_assert!(i.finish().is_err() || t.finish().is_err());
        }
    }
}
