//! Arbitrary CDBs and parameter data never panic.

use super::*;

/// Every SPC command, with arbitrary CDB bytes and parameter data, returns
/// a status and never panics.
#[test]
fn arbitrary_cdbs_never_panic() {
    let spc_opcodes = [
        0x00, 0x03, 0x12, 0x15, 0x55, 0x1a, 0x5a, 0x16, 0x56, 0x17, 0x57, 0x5e, 0x5f, 0xa3, 0x1b,
        0x1e, 0xa0, 0x83, 0x84,
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut dev = device_with(&[(0, config("F0")), (1, config("F1"))]);
    for round in 0..20_000 {
        let mut cdb = [0u8; 16];
        for b in cdb.iter_mut() {
            *b = next() as u8;
        }
        cdb[0] = spc_opcodes[round % spc_opcodes.len()];
        // Keep lengths small so the data often covers them.
        if round % 2 == 0 {
            for b in &mut cdb[4..14] {
                *b &= 0x01;
            }
        }
        let len = (next() % 96) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 && len >= 16 {
            data[2] = 0;
            data[3] = 32;
            data[8..12].copy_from_slice(&[0, 0, 0, 28]);
            data[12..16].fill(0);
        }
        let who = if next() % 2 == 0 { i1() } else { i2() };
        let lun = (next() % 3) as u16;
        let r = run(&mut dev, &who, lun, &cdb, &data);
        assert!(
            [
                status::GOOD,
                status::CHECK_CONDITION,
                status::RESERVATION_CONFLICT
            ]
            .contains(&r.status)
        );
        if r.status == status::CHECK_CONDITION {
            assert!(r.sense.is_some());
        }
        if round % 1000 == 0 {
            dev.task_management(&who, Lun::from_index(0), TaskManagement::TargetWarmReset);
        }
    }
}
