//! The oracle: every write, read, flush and crash the workloads and the
//! world perform is recorded here, in one global order (the simulation
//! runs on one thread, so the order of calls is the real-time order), and
//! every read is checked block by block against what the storage contract
//! allows.
//!
//! The contract, per logical block (SBC-4 with a volatile write cache,
//! WCE=1):
//! - Between crashes a block is a linearizable register: a read returns
//!   the value of a write that began before the read ended and that no
//!   other write had entirely superseded before the read began; a later
//!   read never goes back to a value older than one an earlier (finished)
//!   read returned.
//! - A write acknowledged before a SYNCHRONIZE CACHE began (that then
//!   succeeded), or acknowledged with FUA, is durable: after a target
//!   crash the block holds that write or a newer one, never an older
//!   value. Anything not durable may survive or vanish, independently per
//!   block (torn multi-block writes).
//! - A write whose outcome the initiator does not know (it failed: a lost
//!   connection, an abort, a timeout) may take effect at any time, or not.
//!
//! The workloads never have two writes to the same block in flight at
//! once (as a file system would not), so retried writes (RFC 7143
//! ErrorRecoveryLevel 0 recovery retries unacknowledged commands) stay
//! linearizable.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::payload::{self, Value};

/// Identifies one operation; a write's tag is its id.
pub type OpId = u64;

#[derive(Debug, Clone)]
struct WriteRec {
    lun: u16,
    invoke: u64,
    /// When the acknowledgement came; `None` while in flight or when the
    /// outcome is unknown (then it may apply at any time).
    complete: Option<u64>,
    fua: bool,
}

#[derive(Debug, Clone, Copy)]
struct FlushRec {
    lun: u16,
    invoke: u64,
    complete: u64,
}

#[derive(Debug, Clone)]
struct Block {
    /// Tags of the writes that covered this block.
    writes: Vec<u64>,
    /// The values the block may hold at the start of the epoch (the last
    /// crash), and whether a read has settled which.
    base: BTreeSet<Value>,
    /// When the epoch began (the sequence number of the last crash).
    epoch: u64,
    /// The last finished read's end and value.
    last_read: Option<(u64, Value)>,
}

impl Block {
    fn new() -> Block {
        Block {
            writes: Vec::new(),
            base: BTreeSet::from([Value::Zero]),
            epoch: 0,
            last_read: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ReadRec {
    lun: u16,
    lba: u64,
    blocks: u32,
    invoke: u64,
}

/// Counts, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OracleStats {
    pub writes: u64,
    pub writes_acked: u64,
    pub writes_unknown: u64,
    pub reads_checked: u64,
    pub blocks_checked: u64,
    pub flushes: u64,
    pub crashes: u64,
}

/// The record of every operation of a run, and the checker of reads.
#[derive(Debug)]
pub struct Oracle {
    seq: u64,
    block_size: u32,
    writes: BTreeMap<u64, WriteRec>,
    flushes: Vec<FlushRec>,
    pending_flushes: BTreeMap<OpId, (u16, u64)>,
    reads: BTreeMap<OpId, ReadRec>,
    blocks: BTreeMap<(u16, u64), Block>,
    stats: OracleStats,
}

impl Oracle {
    pub fn new(block_size: u32) -> Oracle {
        Oracle {
            seq: 0,
            block_size,
            writes: BTreeMap::new(),
            flushes: Vec::new(),
            pending_flushes: BTreeMap::new(),
            reads: BTreeMap::new(),
            blocks: BTreeMap::new(),
            stats: OracleStats::default(),
        }
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn stats(&self) -> OracleStats {
        self.stats
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A write of `blocks` blocks at `lba` begins; returns its id and the
    /// data to write.
    pub fn begin_write(&mut self, lun: u16, lba: u64, blocks: u32, fua: bool) -> (OpId, Bytes) {
        let id = self.tick();
        self.stats.writes += 1;
        self.writes.insert(
            id,
            WriteRec {
                lun,
                invoke: id,
                complete: None,
                fua,
            },
        );
        for i in 0..u64::from(blocks) {
            self.blocks
                .entry((lun, lba + i))
                .or_insert_with(Block::new)
                .writes
                .push(id);
        }
        let data = payload::encode(id, lun, lba, blocks, self.block_size);
        (id, Bytes::from(data))
    }

    /// The write was acknowledged (`true`) or failed with an unknown
    /// outcome (`false`).
    pub fn end_write(&mut self, id: OpId, acked: bool) {
        let now = self.tick();
        if let Some(w) = self.writes.get_mut(&id) {
            if acked {
                w.complete = Some(now);
                self.stats.writes_acked += 1;
            } else {
                self.stats.writes_unknown += 1;
            }
        }
    }

    pub fn begin_flush(&mut self, lun: u16) -> OpId {
        let id = self.tick();
        self.pending_flushes.insert(id, (lun, id));
        id
    }

    /// SYNCHRONIZE CACHE ended; only a GOOD one makes anything durable.
    pub fn end_flush(&mut self, id: OpId, ok: bool) {
        let now = self.tick();
        if let Some((lun, invoke)) = self.pending_flushes.remove(&id) {
            if ok {
                self.stats.flushes += 1;
                self.flushes.push(FlushRec {
                    lun,
                    invoke,
                    complete: now,
                });
            }
        }
    }

    pub fn begin_read(&mut self, lun: u16, lba: u64, blocks: u32) -> OpId {
        let id = self.tick();
        self.reads.insert(
            id,
            ReadRec {
                lun,
                lba,
                blocks,
                invoke: id,
            },
        );
        id
    }

    /// A read failed: nothing to check.
    pub fn abandon_read(&mut self, id: OpId) {
        self.reads.remove(&id);
    }

    /// A read returned `data`: checks every block. The error names the
    /// first block that breaks the contract.
    pub fn end_read(&mut self, id: OpId, data: &[u8]) -> Result<(), String> {
        let now = self.tick();
        let Some(r) = self.reads.remove(&id) else {
            return Ok(());
        };
        let bs = self.block_size as usize;
        if data.len() != r.blocks as usize * bs {
            return Err(format!(
                "read of {} blocks at lba {} returned {} bytes",
                r.blocks,
                r.lba,
                data.len()
            ));
        }
        self.stats.reads_checked += 1;
        for (i, block) in data.chunks(bs).enumerate() {
            let lba = r.lba + i as u64;
            self.stats.blocks_checked += 1;
            let value = payload::decode_block(block, r.lun, lba)
                .map_err(|e| format!("lun {} lba {lba}: {e}", r.lun))?;
            self.check(r.lun, lba, r.invoke, now, value)
                .map_err(|e| format!("lun {} lba {lba}: {e}", r.lun))?;
        }
        Ok(())
    }

    fn check(&mut self, lun: u16, lba: u64, ri: u64, rc: u64, value: Value) -> Result<(), String> {
        let writes = &self.writes;
        let block = self.blocks.entry((lun, lba)).or_insert_with(Block::new);
        let epoch = block.epoch;
        let in_epoch = |w: &WriteRec| w.complete.is_none_or(|c| c > epoch);
        // The latest invocation among epoch writes acknowledged before the
        // read began: a write acknowledged before it is superseded.
        let mut superseding_invoke: Option<u64> = None;
        let mut any_acked_before = false;
        for tag in &block.writes {
            let w = &writes[tag];
            // Only writes begun after the crash surely took effect after
            // it: the acknowledgement of one begun before may have been in
            // flight while its cached data was lost.
            if let Some(c) = w.complete {
                if w.invoke > epoch && c < ri {
                    any_acked_before = true;
                    superseding_invoke =
                        Some(superseding_invoke.map_or(w.invoke, |m| m.max(w.invoke)));
                }
            }
        }
        let as_epoch_write = match value {
            Value::Tag(t) => block
                .writes
                .contains(&t)
                .then(|| &writes[&t])
                .filter(|w| in_epoch(w) && w.invoke < rc),
            Value::Zero => None,
        };
        if let (Some(w), Value::Tag(t)) = (as_epoch_write, value) {
            if let (Some(c), Some(s)) = (w.complete, superseding_invoke) {
                if c < s {
                    return Err(format!(
                        "read returned write #{t}, which a write acknowledged before the read began had overwritten"
                    ));
                }
            }
            if let Some((last_end, Value::Tag(prev))) = block.last_read {
                if last_end < ri && prev != t && !block.base.contains(&Value::Tag(prev)) {
                    let p = &writes[&prev];
                    if w.complete.is_some_and(|c| c < p.invoke) {
                        return Err(format!(
                            "read returned write #{t} after an earlier read had returned the newer write #{prev}"
                        ));
                    }
                }
            }
        } else {
            // A value from before the epoch (or zeros).
            if !block.base.contains(&value) {
                return Err(match value {
                    Value::Zero => {
                        "read returned zeros, but acknowledged durable data was there".to_string()
                    }
                    Value::Tag(t) if writes.get(&t).is_none_or(|w| w.invoke >= rc) => {
                        format!("read returned write #{t}, which had not begun")
                    }
                    Value::Tag(t) => format!(
                        "read returned write #{t}, which a durable or later write had replaced"
                    ),
                });
            }
            if any_acked_before {
                return Err(format!(
                    "read returned {}, older than a write acknowledged before the read began",
                    describe(value)
                ));
            }
            if let Some((last_end, Value::Tag(prev))) = block.last_read {
                if last_end < ri && !block.base.contains(&Value::Tag(prev)) {
                    return Err(format!(
                        "read returned {} after an earlier read had returned the newer write #{prev}",
                        describe(value)
                    ));
                }
            }
            block.base = BTreeSet::from([value]);
        }
        if block.last_read.is_none_or(|(end, _)| end < rc) {
            block.last_read = Some((rc, value));
        }
        Ok(())
    }

    /// The target crashed: each block now holds its latest durable value
    /// or any value that was not older than it.
    pub fn crash(&mut self) {
        let now = self.tick();
        self.stats.crashes += 1;
        let durable = |w: &WriteRec, flushes: &[FlushRec]| {
            let Some(c) = w.complete else {
                return false;
            };
            (w.fua && c < now)
                || flushes
                    .iter()
                    .any(|f| f.lun == w.lun && f.complete < now && c < f.invoke)
        };
        for block in self.blocks.values_mut() {
            let epoch = block.epoch;
            let live: Vec<&WriteRec> = block
                .writes
                .iter()
                .map(|t| &self.writes[t])
                .filter(|w| w.invoke < now && w.complete.is_none_or(|c| c > epoch))
                .collect();
            let durables: Vec<&WriteRec> = live
                .iter()
                .copied()
                .filter(|w| durable(w, &self.flushes))
                .collect();
            let mut next: BTreeSet<Value> = BTreeSet::new();
            let base_superseded = durables.iter().any(|d| d.invoke > epoch);
            if !base_superseded {
                next.extend(block.base.iter().copied());
            }
            for (tag, w) in block
                .writes
                .iter()
                .zip(block.writes.iter().map(|t| &self.writes[t]))
            {
                if !(w.invoke < now && w.complete.is_none_or(|c| c > epoch)) {
                    continue;
                }
                let before_durable = w
                    .complete
                    .is_some_and(|c| durables.iter().any(|d| c < d.invoke));
                if !before_durable {
                    next.insert(Value::Tag(*tag));
                }
            }
            block.base = next;
            block.epoch = now;
            block.last_read = None;
        }
    }
}

fn describe(v: Value) -> String {
    match v {
        Value::Zero => "zeros".to_string(),
        Value::Tag(t) => format!("write #{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(o: &mut Oracle, lba: u64, data: &[u8]) -> Result<(), String> {
        let id = o.begin_read(1, lba, (data.len() / 512) as u32);
        o.end_read(id, data)
    }

    #[test]
    fn reads_see_acknowledged_writes() {
        let mut o = Oracle::new(512);
        assert!(read(&mut o, 0, &[0u8; 512]).is_ok());
        let (w, data) = o.begin_write(1, 0, 2, false);
        assert!(
            read(&mut o, 0, &[0u8; 1024]).is_ok(),
            "in flight: old is fine"
        );
        assert!(read(&mut o, 0, &data).is_ok(), "in flight: new is fine");
        o.end_write(w, true);
        let err = read(&mut o, 0, &[0u8; 1024]).unwrap_err();
        assert!(
            err.contains("newer write") || err.contains("older"),
            "{err}"
        );
        assert!(read(&mut o, 0, &data).is_ok());
    }

    #[test]
    fn an_overwritten_value_is_refused() {
        let mut o = Oracle::new(512);
        let (a, da) = o.begin_write(1, 5, 1, false);
        o.end_write(a, true);
        let (b, db) = o.begin_write(1, 5, 1, false);
        o.end_write(b, true);
        assert!(read(&mut o, 5, &db).is_ok());
        assert!(read(&mut o, 5, &da).unwrap_err().contains("overwritten"));
    }

    #[test]
    fn flushed_data_survives_a_crash_and_unflushed_may_not() {
        let mut o = Oracle::new(512);
        let (a, da) = o.begin_write(1, 0, 1, false);
        o.end_write(a, true);
        let f = o.begin_flush(1);
        o.end_flush(f, true);
        let (b, db) = o.begin_write(1, 0, 1, false);
        o.end_write(b, true);
        o.crash();
        // Either a (durable) or b (may have been kept) is fine; zeros not.
        assert!(read(&mut o, 0, &[0u8; 512]).is_err());
        let mut o2 = Oracle::new(512);
        let (a2, _) = o2.begin_write(1, 0, 1, false);
        o2.end_write(a2, true);
        o2.crash();
        assert!(
            read(&mut o2, 0, &[0u8; 512]).is_ok(),
            "unflushed may vanish"
        );
        assert!(read(&mut o, 0, &da).is_ok());
        // Once a read settled the post-crash value, it stays.
        assert!(read(&mut o, 0, &db).is_err());
    }

    #[test]
    fn fua_writes_are_durable() {
        let mut o = Oracle::new(512);
        let (a, _) = o.begin_write(1, 0, 1, true);
        o.end_write(a, true);
        o.crash();
        assert!(read(&mut o, 0, &[0u8; 512]).is_err());
    }

    #[test]
    fn an_acknowledgement_in_flight_across_a_crash_proves_nothing() {
        let mut o = Oracle::new(512);
        let (a, da) = o.begin_write(1, 0, 1, true);
        o.end_write(a, true);
        let (b, _) = o.begin_write(1, 0, 1, false);
        o.crash();
        // b's GOOD was on the wire when the target lost its cache.
        o.end_write(b, true);
        assert!(read(&mut o, 0, &da).is_ok());
    }

    #[test]
    fn garbage_is_refused() {
        let mut o = Oracle::new(512);
        assert!(read(&mut o, 0, &[1u8; 512]).is_err());
    }
}
