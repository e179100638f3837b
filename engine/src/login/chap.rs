//! CHAP (RFC 1994) as iSCSI uses it (RFC 7143 §12.1.3), with MD5 only
//! (CHAP_A=5).
//!
//! The exchange, with the target as authenticator:
//! ```text
//! I->T  CHAP_A=<A1,A2,...>
//! T->I  CHAP_A=5  CHAP_I=<id>  CHAP_C=<challenge>
//! I->T  CHAP_N=<user>  CHAP_R=<MD5(id || secret || challenge)>
//!       [CHAP_I=<id'>  CHAP_C=<challenge'>]      (mutual)
//! T->I  [CHAP_N=<target user>  CHAP_R=<MD5(id' || target secret || challenge')>]
//! ```
//! Binary values are accepted in hex (`0x`) or base64 (`0b`) and sent in
//! hex, which every peer reads. Responses are compared in constant time and
//! secrets never leave this module except inside the MD5 input.

use md5::{Digest, Md5};
use rand::RngCore;

use super::target::Credentials;
use crate::text::codec::{decode_binary, encode_hex, parse_number, split_list};

/// CHAP_A value of MD5 (RFC 1994 §2, IANA PPP authentication algorithms).
pub const CHAP_MD5: &str = "5";
/// Length of the challenges this side sends (§12.1.3: at least 16 bytes
/// is what the RFC's security considerations ask for).
pub const CHALLENGE_LEN: usize = 16;
/// Length of an MD5 CHAP response.
pub const RESPONSE_LEN: usize = 16;

/// Why a CHAP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChapError {
    #[error("peer offers no supported CHAP algorithm ({0:?}); only MD5 (5) is")]
    UnsupportedAlgorithm(String),
    #[error("{0} missing from the CHAP exchange")]
    Missing(&'static str),
    #[error("malformed {key}")]
    Malformed { key: &'static str },
    #[error("{0} sent twice")]
    Duplicate(&'static str),
    #[error("{0} out of turn in the CHAP exchange")]
    Unexpected(&'static str),
    #[error("CHAP authentication failed")]
    AuthenticationFailed,
    #[error("peer challenged with the challenge it was sent (reflection)")]
    ReflectedChallenge,
    #[error("peer asked for mutual CHAP, which is not configured")]
    MutualNotConfigured,
    #[error("target did not authenticate itself (mutual CHAP)")]
    MutualMissing,
    #[error("target answered the mutual challenge wrongly")]
    MutualFailed,
}

/// The CHAP response: MD5 over the identifier, the secret and the
/// challenge (RFC 1994 §4.1).
pub fn response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; RESPONSE_LEN] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A fresh identifier and challenge from the injected RNG.
pub fn new_challenge(rng: &mut dyn RngCore) -> (u8, Vec<u8>) {
    let mut challenge = vec![0u8; CHALLENGE_LEN];
    rng.fill_bytes(&mut challenge);
    (rng.next_u32() as u8, challenge)
}

/// The CHAP keys of one request or response, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChapKeys {
    pub a: Option<String>,
    pub i: Option<String>,
    pub c: Option<String>,
    pub n: Option<String>,
    pub r: Option<String>,
}

impl ChapKeys {
    /// Collects the CHAP_* pairs; any other key is ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ChapKeys, ChapError> {
        let mut keys = ChapKeys::default();
        for (k, v) in pairs {
            let (slot, name) = match k.as_str() {
                "CHAP_A" => (&mut keys.a, "CHAP_A"),
                "CHAP_I" => (&mut keys.i, "CHAP_I"),
                "CHAP_C" => (&mut keys.c, "CHAP_C"),
                "CHAP_N" => (&mut keys.n, "CHAP_N"),
                "CHAP_R" => (&mut keys.r, "CHAP_R"),
                _ => continue,
            };
            if slot.replace(v.clone()).is_some() {
                return Err(ChapError::Duplicate(name));
            }
        }
        Ok(keys)
    }

    pub fn is_empty(&self) -> bool {
        *self == ChapKeys::default()
    }
}

fn parse_id(value: &str) -> Result<u8, ChapError> {
    parse_number(value)
        .ok()
        .and_then(|v| u8::try_from(v).ok())
        .ok_or(ChapError::Malformed { key: "CHAP_I" })
}

fn parse_binary(value: &str, key: &'static str) -> Result<Vec<u8>, ChapError> {
    decode_binary(value).map_err(|_| ChapError::Malformed { key })
}

/// What the target answers to one request's CHAP keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapReply {
    /// The pairs to send.
    pub pairs: Vec<(String, String)>,
    /// The CHAP user, once the initiator has proven its identity.
    pub authenticated: Option<String>,
}

/// The target's side: it challenges the initiator and, for mutual CHAP,
/// answers the initiator's challenge.
#[derive(Debug, Clone, Default)]
pub struct TargetChap {
    state: TargetState,
    /// A planted bug to switch on (simulation only).
    #[cfg(feature = "planted-bugs")]
    pub(crate) planted: Option<crate::planted::PlantedBug>,
}

#[derive(Debug, Clone, Default)]
enum TargetState {
    #[default]
    AwaitAlgorithm,
    AwaitResponse {
        id: u8,
        challenge: Vec<u8>,
    },
    Done,
}

impl TargetChap {
    pub fn new() -> TargetChap {
        TargetChap::default()
    }

    /// Whether the initiator has proven its identity.
    pub fn is_done(&self) -> bool {
        matches!(self.state, TargetState::Done)
    }

    /// Handles the CHAP keys of one Login Request and returns the pairs to
    /// answer with, plus the authenticated user once the exchange is over.
    pub fn handle(
        &mut self,
        keys: &ChapKeys,
        accounts: &[Credentials],
        mutual: Option<&Credentials>,
        rng: &mut dyn RngCore,
    ) -> Result<ChapReply, ChapError> {
        let reply = |pairs, authenticated| ChapReply {
            pairs,
            authenticated,
        };
        match &self.state {
            TargetState::AwaitAlgorithm => {
                if keys.n.is_some() || keys.r.is_some() {
                    return Err(ChapError::Unexpected("CHAP_R"));
                }
                let Some(a) = &keys.a else {
                    return Ok(reply(Vec::new(), None));
                };
                if !split_list(a).any(|v| v == CHAP_MD5) {
                    return Err(ChapError::UnsupportedAlgorithm(
                        a.chars().take(64).collect(),
                    ));
                }
                let (id, challenge) = new_challenge(rng);
                let pairs = vec![
                    ("CHAP_A".to_string(), CHAP_MD5.to_string()),
                    ("CHAP_I".to_string(), id.to_string()),
                    ("CHAP_C".to_string(), encode_hex(&challenge)),
                ];
                self.state = TargetState::AwaitResponse { id, challenge };
                Ok(reply(pairs, None))
            }
            TargetState::AwaitResponse { id, challenge } => {
                if keys.a.is_some() {
                    return Err(ChapError::Duplicate("CHAP_A"));
                }
                if keys.is_empty() {
                    return Ok(reply(Vec::new(), None));
                }
                let user = keys.n.as_deref().ok_or(ChapError::Missing("CHAP_N"))?;
                let r = keys.r.as_deref().ok_or(ChapError::Missing("CHAP_R"))?;
                let got = parse_binary(r, "CHAP_R")?;
                // Every account is tried, so that the time taken does not
                // tell an unknown user from a wrong secret.
                let mut ok = false;
                for account in accounts {
                    let expected = response(*id, account.secret.as_bytes(), challenge);
                    let user_ok = constant_time_eq(account.user.as_bytes(), user.as_bytes());
                    ok |= user_ok & constant_time_eq(&expected, &got);
                }
                #[cfg(feature = "planted-bugs")]
                if crate::planted::active(
                    self.planted,
                    crate::planted::PlantedBug::ChapResponseUnchecked,
                ) {
                    ok |= accounts.iter().any(|a| a.user == user);
                }
                if !ok {
                    return Err(ChapError::AuthenticationFailed);
                }
                let pairs = match (&keys.i, &keys.c) {
                    (None, None) => Vec::new(),
                    (Some(i), Some(c)) => {
                        let their_id = parse_id(i)?;
                        let their_challenge = parse_binary(c, "CHAP_C")?;
                        if constant_time_eq(&their_challenge, challenge) {
                            return Err(ChapError::ReflectedChallenge);
                        }
                        let mutual = mutual.ok_or(ChapError::MutualNotConfigured)?;
                        let r = response(their_id, mutual.secret.as_bytes(), &their_challenge);
                        vec![
                            ("CHAP_N".to_string(), mutual.user.clone()),
                            ("CHAP_R".to_string(), encode_hex(&r)),
                        ]
                    }
                    (None, Some(_)) => return Err(ChapError::Missing("CHAP_I")),
                    (Some(_), None) => return Err(ChapError::Missing("CHAP_C")),
                };
                self.state = TargetState::Done;
                Ok(reply(pairs, Some(user.to_string())))
            }
            TargetState::Done => {
                if keys.is_empty() {
                    Ok(reply(Vec::new(), None))
                } else {
                    Err(ChapError::Unexpected("CHAP key after authentication"))
                }
            }
        }
    }
}

/// The initiator's side: it answers the target's challenge and, for mutual
/// CHAP, challenges the target.
#[derive(Debug, Clone, Default)]
pub struct InitiatorChap {
    /// Our challenge to the target, awaiting its answer.
    pending: Option<(u8, Vec<u8>)>,
    responded: bool,
}

impl InitiatorChap {
    pub fn new() -> InitiatorChap {
        InitiatorChap::default()
    }

    /// The opening offer: the algorithms this side supports.
    pub fn algorithm_offer() -> (String, String) {
        ("CHAP_A".to_string(), CHAP_MD5.to_string())
    }

    /// Whether the response to the target's challenge has been sent.
    pub fn responded(&self) -> bool {
        self.responded
    }

    /// Answers the target's CHAP_A/CHAP_I/CHAP_C with CHAP_N/CHAP_R and,
    /// when `mutual` holds the target's expected credentials, our own
    /// CHAP_I/CHAP_C.
    pub fn respond(
        &mut self,
        keys: &ChapKeys,
        credentials: &Credentials,
        mutual: Option<&Credentials>,
        rng: &mut dyn RngCore,
    ) -> Result<Vec<(String, String)>, ChapError> {
        let a = keys.a.as_deref().ok_or(ChapError::Missing("CHAP_A"))?;
        if a != CHAP_MD5 {
            return Err(ChapError::UnsupportedAlgorithm(
                a.chars().take(64).collect(),
            ));
        }
        let id = parse_id(keys.i.as_deref().ok_or(ChapError::Missing("CHAP_I"))?)?;
        let challenge = parse_binary(
            keys.c.as_deref().ok_or(ChapError::Missing("CHAP_C"))?,
            "CHAP_C",
        )?;
        let r = response(id, credentials.secret.as_bytes(), &challenge);
        let mut pairs = vec![
            ("CHAP_N".to_string(), credentials.user.clone()),
            ("CHAP_R".to_string(), encode_hex(&r)),
        ];
        if mutual.is_some() {
            let (mut our_id, mut ours) = new_challenge(rng);
            while ours == challenge {
                (our_id, ours) = new_challenge(rng);
            }
            pairs.push(("CHAP_I".to_string(), our_id.to_string()));
            pairs.push(("CHAP_C".to_string(), encode_hex(&ours)));
            self.pending = Some((our_id, ours));
        }
        self.responded = true;
        Ok(pairs)
    }

    /// Whether this side still waits for the target's mutual answer.
    pub fn awaiting_target(&self) -> bool {
        self.pending.is_some()
    }

    /// Checks the target's CHAP_N/CHAP_R against the expected credentials.
    pub fn verify_target(
        &mut self,
        keys: &ChapKeys,
        expected: &Credentials,
    ) -> Result<(), ChapError> {
        let Some((id, challenge)) = &self.pending else {
            return Err(ChapError::Unexpected("CHAP_R"));
        };
        let (Some(n), Some(r)) = (&keys.n, &keys.r) else {
            return Err(ChapError::MutualMissing);
        };
        let got = parse_binary(r, "CHAP_R").map_err(|_| ChapError::MutualFailed)?;
        let want = response(*id, expected.secret.as_bytes(), challenge);
        let ok = constant_time_eq(n.as_bytes(), expected.user.as_bytes())
            & constant_time_eq(&want, &got);
        if !ok {
            return Err(ChapError::MutualFailed);
        }
        self.pending = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::codec::encode_base64;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn creds(user: &str, secret: &str) -> Credentials {
        Credentials {
            user: user.into(),
            secret: secret.into(),
        }
    }

    fn keys(pairs: &[(String, String)]) -> ChapKeys {
        ChapKeys::from_pairs(pairs).unwrap()
    }

    /// MD5(id || secret || challenge) computed independently (Python's
    /// hashlib) for fixed inputs.
    #[test]
    fn known_answer() {
        let challenge: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            encode_hex(&response(1, b"secretsecret", &challenge)),
            "0x226dc576c33f04ff9c3a200ffe35f442"
        );
        let challenge = decode_binary("0xd3b07384d113edec49eaa6238ad5ff00").unwrap();
        assert_eq!(
            encode_hex(&response(0xa7, b"Mutual-Secret-1", &challenge)),
            "0xece577f005c7d5f29ea7e37c072a3865"
        );
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    fn exchange(
        initiator: &Credentials,
        accounts: &[Credentials],
        mutual_expected: Option<&Credentials>,
        mutual_target: Option<&Credentials>,
        encode: fn(&[u8]) -> String,
    ) -> Result<Option<String>, ChapError> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut t = TargetChap::new();
        let mut i = InitiatorChap::new();
        let offer = vec![("CHAP_A".to_string(), "7,5".to_string())];
        let challenge = t
            .handle(&keys(&offer), accounts, mutual_target, &mut rng)?
            .pairs;
        assert_eq!(challenge[0], ("CHAP_A".into(), "5".into()));
        let mut reply = i.respond(&keys(&challenge), initiator, mutual_expected, &mut rng)?;
        // Re-encode the binary values the way the test asks.
        for (k, v) in reply.iter_mut() {
            if k == "CHAP_R" || k == "CHAP_C" {
                *v = encode(&decode_binary(v).unwrap());
            }
        }
        let ChapReply {
            pairs: answer,
            authenticated: user,
        } = t.handle(&keys(&reply), accounts, mutual_target, &mut rng)?;
        assert!(t.is_done());
        if let Some(expected) = mutual_expected {
            i.verify_target(&keys(&answer), expected)?;
        } else {
            assert!(answer.is_empty());
        }
        Ok(user)
    }

    #[test]
    fn one_way_hex_and_base64() {
        let alice = creds("alice", "alice-secret-12");
        for encode in [encode_hex as fn(&[u8]) -> String, encode_base64] {
            let user = exchange(
                &alice,
                &[creds("bob", "x"), alice.clone()],
                None,
                None,
                encode,
            );
            assert_eq!(user, Ok(Some("alice".into())));
        }
    }

    #[test]
    fn mutual() {
        let alice = creds("alice", "alice-secret-12");
        let target = creds("target", "target-secret-1");
        for encode in [encode_hex as fn(&[u8]) -> String, encode_base64] {
            let user = exchange(
                &alice,
                std::slice::from_ref(&alice),
                Some(&target),
                Some(&target),
                encode,
            );
            assert_eq!(user, Ok(Some("alice".into())));
        }
    }

    #[test]
    fn wrong_secret_and_unknown_user() {
        let accounts = [creds("alice", "alice-secret-12")];
        let wrong = creds("alice", "not-the-secret");
        assert_eq!(
            exchange(&wrong, &accounts, None, None, encode_hex),
            Err(ChapError::AuthenticationFailed)
        );
        let unknown = creds("mallory", "alice-secret-12");
        assert_eq!(
            exchange(&unknown, &accounts, None, None, encode_hex),
            Err(ChapError::AuthenticationFailed)
        );
    }

    #[test]
    fn mutual_with_wrong_target_secret_is_refused() {
        let alice = creds("alice", "alice-secret-12");
        let real = creds("target", "target-secret-1");
        let impostor = creds("target", "guessed-secret");
        assert_eq!(
            exchange(
                &alice,
                std::slice::from_ref(&alice),
                Some(&real),
                Some(&impostor),
                encode_hex
            ),
            Err(ChapError::MutualFailed)
        );
        let other_name = creds("someone", "target-secret-1");
        assert_eq!(
            exchange(
                &alice,
                std::slice::from_ref(&alice),
                Some(&real),
                Some(&other_name),
                encode_hex
            ),
            Err(ChapError::MutualFailed)
        );
    }

    #[test]
    fn mutual_not_configured_on_target() {
        let alice = creds("alice", "alice-secret-12");
        let target = creds("target", "target-secret-1");
        assert_eq!(
            exchange(
                &alice,
                std::slice::from_ref(&alice),
                Some(&target),
                None,
                encode_hex
            ),
            Err(ChapError::MutualNotConfigured)
        );
    }

    #[test]
    fn reflected_challenge_is_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let alice = creds("alice", "alice-secret-12");
        let target = creds("target", "target-secret-1");
        let mut t = TargetChap::new();
        let offer = vec![("CHAP_A".to_string(), "5".to_string())];
        let challenge = t
            .handle(
                &keys(&offer),
                std::slice::from_ref(&alice),
                Some(&target),
                &mut rng,
            )
            .unwrap()
            .pairs;
        let k = keys(&challenge);
        let id = parse_id(k.i.as_deref().unwrap()).unwrap();
        let c = decode_binary(k.c.as_deref().unwrap()).unwrap();
        // The attacker sends the target's own challenge back, hoping to
        // learn the response it needs elsewhere.
        let reply = vec![
            ("CHAP_N".to_string(), "alice".to_string()),
            (
                "CHAP_R".to_string(),
                encode_hex(&response(id, b"alice-secret-12", &c)),
            ),
            ("CHAP_I".to_string(), id.to_string()),
            ("CHAP_C".to_string(), encode_base64(&c)),
        ];
        assert_eq!(
            t.handle(&keys(&reply), &[alice], Some(&target), &mut rng),
            Err(ChapError::ReflectedChallenge)
        );
    }

    #[test]
    fn unsupported_algorithm_and_malformed_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut t = TargetChap::new();
        let offer = vec![("CHAP_A".to_string(), "6,7".to_string())];
        assert!(matches!(
            t.handle(&keys(&offer), &[], None, &mut rng),
            Err(ChapError::UnsupportedAlgorithm(_))
        ));
        let mut i = InitiatorChap::new();
        let bad_id = ChapKeys {
            a: Some("5".into()),
            i: Some("256".into()),
            c: Some("0x00".into()),
            ..ChapKeys::default()
        };
        let alice = creds("alice", "s");
        assert_eq!(
            i.respond(&bad_id, &alice, None, &mut rng),
            Err(ChapError::Malformed { key: "CHAP_I" })
        );
        let bad_c = ChapKeys {
            i: Some("1".into()),
            c: Some("zz".into()),
            ..bad_id
        };
        assert_eq!(
            i.respond(&bad_c, &alice, None, &mut rng),
            Err(ChapError::Malformed { key: "CHAP_C" })
        );
    }

    #[test]
    fn duplicate_chap_keys() {
        let pairs = vec![
            ("CHAP_N".to_string(), "a".to_string()),
            ("CHAP_N".to_string(), "b".to_string()),
        ];
        assert_eq!(
            ChapKeys::from_pairs(&pairs),
            Err(ChapError::Duplicate("CHAP_N"))
        );
    }

    #[test]
    fn challenges_come_from_the_rng() {
        let a = new_challenge(&mut ChaCha8Rng::seed_from_u64(3));
        let b = new_challenge(&mut ChaCha8Rng::seed_from_u64(3));
        let c = new_challenge(&mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.1.len(), CHALLENGE_LEN);
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let shown = format!("{:?}", creds("alice", "hunter2-secret"));
        assert!(shown.contains("alice") && !shown.contains("hunter2"));
    }
}
