//! Serial number arithmetic (RFC 1982, 32 bits) for CmdSN, StatSN, DataSN
//! and R2TSN, as RFC 7143 §4.2.2.1 requires.

/// `a < b` in 32-bit serial number arithmetic.
pub fn lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// `a <= b` in 32-bit serial number arithmetic.
pub fn le(a: u32, b: u32) -> bool {
    a == b || lt(a, b)
}

/// `a > b` in 32-bit serial number arithmetic.
pub fn gt(a: u32, b: u32) -> bool {
    lt(b, a)
}

/// `a >= b` in 32-bit serial number arithmetic.
pub fn ge(a: u32, b: u32) -> bool {
    le(b, a)
}

/// Whether `sn` lies in the inclusive window `[lo, hi]` (serial arithmetic).
pub fn in_window(sn: u32, lo: u32, hi: u32) -> bool {
    le(lo, sn) && le(sn, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert!(lt(0xffff_fff0, 5));
        assert!(gt(5, 0xffff_fff0));
        assert!(!lt(5, 5));
        assert!(le(5, 5));
        assert!(in_window(0, 0xffff_fffe, 3));
        assert!(!in_window(4, 0xffff_fffe, 3));
    }
}
