//! The text format of Login and Text PDUs: `key=value` pairs, each ended by
//! a NUL byte (RFC 7143 §6.1).

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    #[error("text pair without '=': {0:?}")]
    MissingEquals(String),
}

/// Splits a (reassembled) data segment into pairs, in order.
pub fn decode_pairs(data: &[u8]) -> Result<Vec<(String, String)>, TextError> {
    let _ = data;
    todo!("text codec")
}

/// Encodes pairs as `key=value\0...`.
pub fn encode_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Bytes {
    let _ = pairs;
    todo!("text codec")
}
