//! CRC32C (Castagnoli) digests, RFC 7143 §13.1 and RFC 3385.
//!
//! The digest is the CRC-32C of RFC 3385 (reflected, initial value and
//! final XOR `0xffffffff`). On the wire its four bytes go least
//! significant first: RFC 7143 Appendix B.4 gives `aa 36 91 8a` for 32
//! zero bytes, whose CRC-32C is `0x8a9136aa`. A known-answer test with
//! those examples and an interoperability test with tgtd prove the order.

/// The CRC32C of `data`, as HeaderDigest and DataDigest carry it.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Continues the CRC32C `crc` over `data`.
pub(super) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

/// The on-wire bytes of a digest (RFC 7143 Appendix B.4 byte order).
pub(super) fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

/// The digest carried by the on-wire bytes `b` (RFC 7143 Appendix B.4).
pub(super) fn from_wire(b: [u8; 4]) -> u32 {
    u32::from_le_bytes(b)
}
