//! CRC32C (Castagnoli) digests, RFC 7143 §13.1 and RFC 3385.

/// The CRC32C of `data`, as HeaderDigest and DataDigest carry it.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}
