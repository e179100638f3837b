//! Whatever a target sends, the initiator does not panic: random PDUs of
//! every target opcode (aimed at the commands in flight) and random bytes.

use proptest::prelude::*;

use super::*;

/// Target opcodes (RFC 7143 §11.1.1) and an unknown one.
const OPCODES: [u8; 11] = [
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f, 0x1c,
];

fn pdu() -> impl Strategy<Value = (u8, [u8; 48], Vec<u8>, bool)> {
    (
        0..OPCODES.len(),
        proptest::array::uniform32(any::<u8>()),
        proptest::array::uniform16(any::<u8>()),
        proptest::collection::vec(any::<u8>(), 0..96),
        any::<bool>(),
    )
        .prop_map(|(op, a, b, data, aim)| {
            let mut bhs = [0u8; 48];
            bhs[..32].copy_from_slice(&a);
            bhs[32..].copy_from_slice(&b);
            bhs[0] = OPCODES[op];
            bhs[4] = 0;
            let len = data.len() as u32;
            bhs[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
            (OPCODES[op], bhs, data, aim)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_pdus_never_panic(pdus in proptest::collection::vec(pdu(), 1..12)) {
        let mut p = Pair::logged_in();
        p.hold = true;
        let tasks = [p.read(0, 4), p.write(8, pattern(4096, 1)), p.read(16, 1)];
        p.drive();
        for (_, mut bhs, data, aim) in pdus {
            if aim {
                let t = tasks[bhs[1] as usize % tasks.len()];
                bhs[16..20].copy_from_slice(&t.0.to_be_bytes());
            }
            let mut bytes = bhs.to_vec();
            bytes.extend_from_slice(&data);
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            if p.initiator.connection().is_some() && p.initiator.state() == crate::initiator::State::FullFeature {
                p.inject(&bytes);
            }
        }
        p.release();
        // Past the replacement timeout every task has an outcome: an Async
        // Message may ask for a Time2Wait longer than a minute (§11.9.1).
        let horizon = p.initiator.config().replacement_timeout + std::time::Duration::from_secs(60);
        p.run_until(horizon, |p| tasks.iter().all(|t| p.completions.contains_key(t)));
        for t in tasks {
            prop_assert!(p.completions.contains_key(&t), "{t} never completed");
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut p = Pair::logged_in();
        p.inject(&bytes);
        p.advance(std::time::Duration::from_secs(10));
    }
}
