//! `caw-race`: COMPARE AND WRITE (SBC-4 §5.3) as a lock-free counter
//! shared by three initiators. Each reads the two-block record (a fixed
//! header block, then the counter), and swaps in the incremented record
//! with COMPARE AND WRITE; on MISCOMPARE (sense key 0Eh) it reads again
//! and retries. Atomicity means no two increments can start from the same
//! value: every successful swap must have a distinct predecessor, and the
//! final counter must equal the number of successful swaps.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::scsi::{command, compare_and_write, rw10};
use super::{Ctx, Scenario};
use crate::faults::FaultKind;
use crate::workload::{Io, IoParams, session_config};
use crate::world::{TargetSetup, WorldSetup, software};

pub const SCENARIO: Scenario = Scenario {
    name: "caw-race",
    summary: "three initiators increment a counter with COMPARE AND WRITE: no lost update",
    faults: FaultKind::TIMING,
    build,
};

/// Where the record lives (outside any other workload's blocks).
const LBA: u64 = 1000;
const HOSTS: usize = 3;
const INCREMENTS: u32 = 6;
const MISCOMPARE: u8 = 0x0e;

/// The record: block 0 a fixed header, block 1 the counter, who wrote it
/// and from which value.
fn record(counter: u64, host: u8) -> Vec<u8> {
    let mut r = vec![0u8; 1024];
    r[..8].copy_from_slice(b"CAW-LOCK");
    r[512..520].copy_from_slice(&counter.to_le_bytes());
    r[520] = host;
    r
}

fn counter_of(r: &[u8]) -> Result<u64, String> {
    if r.iter().all(|&b| b == 0) {
        return Ok(0);
    }
    if &r[..8] != b"CAW-LOCK" {
        return Err(format!("the record's header is {:02x?}", &r[..8]));
    }
    Ok(u64::from_le_bytes(
        r[512..520].try_into().map_err(|_| "short")?,
    ))
}

/// Successful swaps: predecessor value → the host that swapped from it.
type Ledger = Rc<RefCell<BTreeMap<u64, String>>>;

fn build(_: &mut Ctx<'_>) -> WorldSetup {
    let mut target = TargetSetup::standard(Default::default(), 16 << 20);
    target.latency.max = std::time::Duration::from_millis(3);
    let mut setup = WorldSetup::new(target);
    setup.heal_at = Duration::from_secs(5);
    let ledger: Ledger = Rc::default();
    let finished = Rc::new(RefCell::new(0usize));
    for h in 1..=HOSTS {
        let (ledger, finished) = (ledger.clone(), finished.clone());
        setup.initiator(
            &format!("init-{h}"),
            software(move |ctx| {
                let (ledger, finished) = (ledger.clone(), finished.clone());
                async move {
                    let params = IoParams::default();
                    let io = Io::new(ctx.clone(), params, session_config(&ctx));
                    let (_, s) = io.session().await?;
                    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed("caw"));
                    let mut done = 0;
                    let mut misses = 0u32;
                    while done < INCREMENTS {
                        let current = command(&s, 1, &rw10(false, LBA, 2, false), Bytes::new(), 1024)
                            .await
                            .map_err(|e| format!("READ: {e}"))?;
                        if current.status != 0 {
                            return Err(format!("READ of the record: status {:#x}", current.status));
                        }
                        let value = counter_of(&current.data)?;
                        let mut data = current.data.to_vec();
                        data.extend_from_slice(&record(value + 1, h as u8));
                        let o = command(&s, 1, &compare_and_write(LBA, 2), Bytes::from(data), 0)
                            .await
                            .map_err(|e| format!("COMPARE AND WRITE: {e}"))?;
                        match (o.status, o.sense.as_ref().map(|s| s.key)) {
                            (0, _) => {
                                done += 1;
                                if let Some(other) =
                                    ledger.borrow_mut().insert(value, ctx.name.to_string())
                                {
                                    return Err(format!(
                                        "{} and {other} both swapped the counter from {value}: COMPARE AND WRITE is not atomic",
                                        ctx.name
                                    ));
                                }
                            }
                            (0x02, Some(MISCOMPARE)) => misses += 1,
                            (status, key) => {
                                return Err(format!(
                                    "COMPARE AND WRITE: status {status:#x} sense key {key:?}"
                                ));
                            }
                        }
                        tokio::time::sleep(Duration::from_micros(rng.random_range(0..3_000))).await;
                    }
                    ctx.trace(format_args!("{done} increments, {misses} miscompares"));
                    *finished.borrow_mut() += 1;
                    while *finished.borrow() < HOSTS {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    let last = command(&s, 1, &rw10(false, LBA, 2, false), Bytes::new(), 1024)
                        .await
                        .map_err(|e| format!("READ: {e}"))?;
                    let total = counter_of(&last.data)?;
                    let swaps = ledger.borrow().len() as u64;
                    if total != swaps {
                        return Err(format!(
                            "the counter reads {total} after {swaps} successful swaps: an update was lost"
                        ));
                    }
                    io.logout().await
                }
            }),
        );
    }
    setup
}
