//! The text format of Login and Text PDUs: `key=value` pairs, each ended by
//! a NUL byte (RFC 7143 §6.1), and the value encodings of §6.1: lists,
//! Boolean values, numerical values (decimal or `0x` hex) and binary values
//! (`0x` hex or `0b` base64, RFC 4648).
//!
//! Decoding is bounded: a key is at most 63 bytes, a value at most 8192
//! bytes (255 for iSCSI names and aliases, see [`super::keys`]), and every
//! failure is a typed [`TextError`], never a panic.

use bytes::{BufMut, Bytes, BytesMut};

/// The longest key name (RFC 7143 §6.1).
pub const MAX_KEY_LEN: usize = 63;
/// The longest encoded value this side accepts for any key.
pub const MAX_VALUE_LEN: usize = 8192;
/// The longest binary value, decoded (CHAP challenges and responses).
pub const MAX_BINARY_LEN: usize = 1024;

/// Why a text segment or a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    #[error("text pair without '=': {0:?}")]
    MissingEquals(String),
    #[error("text pair with an empty key")]
    EmptyKey,
    #[error("key of {len} bytes (at most {MAX_KEY_LEN})")]
    KeyTooLong { len: usize },
    #[error("key {0:?} contains a character outside the key alphabet")]
    InvalidKey(String),
    #[error("value of {key} has {len} bytes (at most {max})")]
    ValueTooLong { key: String, len: usize, max: usize },
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("last text pair is not terminated by NUL")]
    Unterminated,
    #[error("text segment of {len} bytes exceeds {max}")]
    TooLong { len: usize, max: usize },
    #[error("invalid numerical value {0:?}")]
    InvalidNumber(String),
    #[error("invalid Boolean value {0:?}")]
    InvalidBoolean(String),
    #[error("invalid binary value {0:?}")]
    InvalidBinary(String),
    #[error("invalid TargetAddress {0:?}")]
    InvalidAddress(String),
    #[error("TargetAddress before any TargetName")]
    OrphanAddress,
}

/// Splits a (reassembled) data segment into pairs, in order.
///
/// Empty entries (consecutive NULs, e.g. padding some peers leave) are
/// skipped; a final pair without its NUL is an error (§6.1: every pair,
/// including the last, is followed by a null).
pub fn decode_pairs(data: &[u8]) -> Result<Vec<(String, String)>, TextError> {
    let mut pairs = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(TextError::Unterminated);
        };
        let entry = &rest[..end];
        rest = &rest[end + 1..];
        if entry.is_empty() {
            continue;
        }
        pairs.push(decode_pair(entry)?);
    }
    Ok(pairs)
}

fn decode_pair(entry: &[u8]) -> Result<(String, String), TextError> {
    let Some(eq) = entry.iter().position(|&b| b == b'=') else {
        let shown = String::from_utf8_lossy(&entry[..entry.len().min(MAX_KEY_LEN)]);
        return Err(TextError::MissingEquals(shown.into_owned()));
    };
    let key = &entry[..eq];
    let value = &entry[eq + 1..];
    if key.is_empty() {
        return Err(TextError::EmptyKey);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(TextError::KeyTooLong { len: key.len() });
    }
    let key = std::str::from_utf8(key).map_err(|_| TextError::InvalidUtf8)?;
    if !key.bytes().all(is_key_char) {
        return Err(TextError::InvalidKey(key.to_string()));
    }
    let max = super::keys::max_value_len(key);
    if value.len() > max {
        return Err(TextError::ValueTooLong {
            key: key.to_string(),
            len: value.len(),
            max,
        });
    }
    let value = std::str::from_utf8(value).map_err(|_| TextError::InvalidUtf8)?;
    Ok((key.to_string(), value.to_string()))
}

/// Key names use letters, digits and `.-+@_:` (§6.1), plus `#` for the
/// public extension keys `X#...` (§13.22).
fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".-+@_:#".contains(&b)
}

/// Encodes pairs as `key=value\0...`.
pub fn encode_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Bytes {
    let len = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = BytesMut::with_capacity(len);
    for (k, v) in pairs {
        out.put_slice(k.as_ref().as_bytes());
        out.put_u8(b'=');
        out.put_slice(v.as_ref().as_bytes());
        out.put_u8(0);
    }
    out.freeze()
}

/// The values of a list value (§6.1 "list-of-values"), comma-separated.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',')
}

/// A Boolean value: `Yes` or `No` (§6.1 "boolean-value").
pub fn parse_bool(value: &str) -> Result<bool, TextError> {
    match value {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err(TextError::InvalidBoolean(truncate(value))),
    }
}

/// The RFC's spelling of a Boolean.
pub fn format_bool(v: bool) -> &'static str {
    if v { "Yes" } else { "No" }
}

/// A numerical value (§6.1): a decimal constant, or a hex constant with
/// `0x`/`0X`; less than 2^64.
pub fn parse_number(value: &str) -> Result<u64, TextError> {
    let bad = || TextError::InvalidNumber(truncate(value));
    if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let digits = hex.trim_start_matches('0');
        if digits.len() > 16 {
            return Err(bad());
        }
        return if digits.is_empty() {
            Ok(0)
        } else {
            u64::from_str_radix(digits, 16).map_err(|_| bad())
        };
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse::<u64>().map_err(|_| bad())
}

/// A binary value (§6.1 "binary-value"): `0x` hex (an odd digit count has
/// an implicit leading zero nibble) or `0b` base64. At most
/// [`MAX_BINARY_LEN`] bytes once decoded.
pub fn decode_binary(value: &str) -> Result<Vec<u8>, TextError> {
    let bad = || TextError::InvalidBinary(truncate(value));
    let bytes = if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        decode_hex(hex).ok_or_else(bad)?
    } else if let Some(b64) = value
        .strip_prefix("0b")
        .or_else(|| value.strip_prefix("0B"))
    {
        decode_base64(b64).ok_or_else(bad)?
    } else {
        return Err(bad());
    };
    if bytes.is_empty() || bytes.len() > MAX_BINARY_LEN {
        return Err(bad());
    }
    Ok(bytes)
}

/// Encodes bytes as a `0x` hex constant (lower case).
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Encodes bytes as a `0b` base64 constant (RFC 4648 §4, padded).
pub fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(2 + bytes.len().div_ceil(3) * 4);
    s.push_str("0b");
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (chunk.get(1).copied().unwrap_or(0) as u32) << 8
            | chunk.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= n {
                s.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let digits = hex.as_bytes();
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    let (head, tail) = digits.split_at(digits.len() % 2);
    if let [d] = head {
        out.push(nibble(*d)?);
    }
    for pair in tail.chunks(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(out)
}

fn decode_base64(b64: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let data = b64.trim_end_matches('=').as_bytes();
    let padding = b64.len() - data.len();
    if data.is_empty() || padding > 2 || (padding > 0 && b64.len() % 4 != 0) {
        return None;
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut v = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            v |= sextet(b)? << (18 - 6 * i);
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// A short, printable prefix of a peer's value for error messages.
fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn round_trip() {
        let pairs = [("HeaderDigest", "CRC32C,None"), ("TargetAlias", "")];
        let data = encode_pairs(&pairs);
        assert_eq!(&data[..], b"HeaderDigest=CRC32C,None\0TargetAlias=\0");
        let back = decode_pairs(&data).unwrap();
        assert_eq!(
            back,
            vec![
                ("HeaderDigest".to_string(), "CRC32C,None".to_string()),
                ("TargetAlias".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn value_may_contain_equals() {
        let pairs = decode_pairs(b"X-a=b=c\0").unwrap();
        assert_eq!(pairs, vec![("X-a".to_string(), "b=c".to_string())]);
    }

    #[test]
    fn empty_entries_are_skipped() {
        let pairs = decode_pairs(b"A=1\0\0\0B=2\0").unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(decode_pairs(b"").unwrap(), vec![]);
    }

    #[rstest]
    #[case::missing_equals(b"HeaderDigest\0".as_slice(), TextError::MissingEquals("HeaderDigest".into()))]
    #[case::empty_key(b"=None\0".as_slice(), TextError::EmptyKey)]
    #[case::unterminated(b"A=1\0B=2".as_slice(), TextError::Unterminated)]
    #[case::bad_utf8_value(b"TargetAlias=\xff\xfe\0".as_slice(), TextError::InvalidUtf8)]
    #[case::bad_utf8_key(b"\xc3(=1\0".as_slice(), TextError::InvalidUtf8)]
    #[case::bad_key_char(b"Bad Key=1\0".as_slice(), TextError::InvalidKey("Bad Key".into()))]
    fn malformed(#[case] data: &[u8], #[case] err: TextError) {
        assert_eq!(decode_pairs(data), Err(err));
    }

    #[test]
    fn key_length_bound() {
        let ok = format!("X-{}=1\0", "k".repeat(MAX_KEY_LEN - 2));
        assert!(decode_pairs(ok.as_bytes()).is_ok());
        let long = format!("X-{}=1\0", "k".repeat(MAX_KEY_LEN - 1));
        assert_eq!(
            decode_pairs(long.as_bytes()),
            Err(TextError::KeyTooLong {
                len: MAX_KEY_LEN + 1
            })
        );
    }

    #[test]
    fn value_length_bounds() {
        let ok = format!("X-big={}\0", "v".repeat(MAX_VALUE_LEN));
        assert!(decode_pairs(ok.as_bytes()).is_ok());
        let long = format!("X-big={}\0", "v".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(
            decode_pairs(long.as_bytes()),
            Err(TextError::ValueTooLong { len: 8193, .. })
        ));
        let name = format!("InitiatorName=iqn.{}\0", "n".repeat(252));
        assert!(matches!(
            decode_pairs(name.as_bytes()),
            Err(TextError::ValueTooLong { max: 255, .. })
        ));
    }

    #[rstest]
    #[case("0", 0)]
    #[case("8192", 8192)]
    #[case("0x2000", 8192)]
    #[case("0X00ff", 255)]
    #[case("18446744073709551615", u64::MAX)]
    #[case("0xffffffffffffffff", u64::MAX)]
    fn numbers(#[case] text: &str, #[case] value: u64) {
        assert_eq!(parse_number(text), Ok(value));
    }

    #[rstest]
    #[case("")]
    #[case("0x")]
    #[case("-1")]
    #[case("12a")]
    #[case("18446744073709551616")]
    #[case("0x10000000000000000")]
    #[case(" 1")]
    fn bad_numbers(#[case] text: &str) {
        assert!(matches!(
            parse_number(text),
            Err(TextError::InvalidNumber(_))
        ));
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("No"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert_eq!(format_bool(true), "Yes");
    }

    #[rstest]
    #[case("0x0102ff", &[1, 2, 255])]
    #[case("0X102", &[1, 2])]
    #[case("0bAQL/", &[1, 2, 255])]
    #[case("0bAQI=", &[1, 2])]
    #[case("0bAQ==", &[1])]
    #[case("0bAQ", &[1])]
    #[case("0bTWFu", b"Man")]
    fn binaries(#[case] text: &str, #[case] bytes: &[u8]) {
        assert_eq!(decode_binary(text).unwrap(), bytes);
    }

    #[rstest]
    #[case("0102")]
    #[case("0x")]
    #[case("0xzz")]
    #[case("0b")]
    #[case("0bA")]
    #[case("0bA===")]
    #[case("0bAQ=")]
    #[case("0b@@@@")]
    fn bad_binaries(#[case] text: &str) {
        assert!(decode_binary(text).is_err(), "{text}");
    }

    #[test]
    fn binary_length_bound() {
        let max = encode_hex(&vec![7u8; MAX_BINARY_LEN]);
        assert_eq!(decode_binary(&max).unwrap().len(), MAX_BINARY_LEN);
        let over = encode_hex(&vec![7u8; MAX_BINARY_LEN + 1]);
        assert!(decode_binary(&over).is_err());
    }

    #[test]
    fn binary_encodings_round_trip() {
        for len in 1..40u8 {
            let bytes: Vec<u8> = (0..len).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(decode_binary(&encode_hex(&bytes)).unwrap(), bytes);
            assert_eq!(decode_binary(&encode_base64(&bytes)).unwrap(), bytes);
        }
        assert_eq!(encode_base64(b"Man"), "0bTWFu");
        assert_eq!(encode_base64(b"Ma"), "0bTWE=");
        assert_eq!(encode_hex(&[0, 0xab]), "0x00ab");
    }

    #[test]
    fn lists() {
        let v: Vec<_> = split_list("CRC32C,None").collect();
        assert_eq!(v, ["CRC32C", "None"]);
    }
}
