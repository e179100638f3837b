//! One SCSI task on the target: gathering its Data-Out (immediate data,
//! unsolicited Data-Out, R2T-solicited Data-Out; RFC 7143 §4.2.4, §11.7,
//! §11.8) and turning its result into Data-In and SCSI Response PDUs
//! (§11.4, §11.7, with residuals and phase-collapsed status).

use bytes::{Bytes, BytesMut};

use super::ConnId;
use crate::pdu::{
    Cdb, DataIn, DataOut, Header, Itt, Lun, Pdu, R2t, RESERVED_TAG, ScsiResponse, TaskAttr, Ttt,
};
use crate::scsi::{CommandResult, sense};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for Data-Out and/or its CmdSN turn.
    Collecting,
    /// Handed to the SCSI layer; the result is awaited.
    Executing,
    /// Aborted while executing: the result will be dropped.
    Aborted,
}

/// An R2T the initiator has yet to satisfy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutstandingR2t {
    pub ttt: Ttt,
    pub offset: u32,
    pub len: u32,
    pub received: u32,
    pub next_data_sn: u32,
}

/// Why a Data-Out was refused: the task ends with CHECK CONDITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataOutError {
    /// Unsolicited data the negotiation does not allow (§11.4.7.2:
    /// ABORTED COMMAND, 0x0c/0x0c).
    UnexpectedUnsolicited,
    /// A DataSN, offset, length or TTT that breaks the sequence rules
    /// (§11.4.7.2 "incorrect amount of data": ABORTED COMMAND, 0x0c/0x0d).
    Sequence,
}

impl DataOutError {
    pub fn sense(self) -> sense::Sense {
        let asc = match self {
            DataOutError::UnexpectedUnsolicited => sense::Asc(0x0c, 0x0c),
            DataOutError::Sequence => sense::Asc(0x0c, 0x0d),
        };
        sense::Sense::new(sense::key::ABORTED_COMMAND, asc)
    }
}

/// The limits the session negotiated that shape data transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Burst {
    pub first_burst_length: u32,
    pub max_burst_length: u32,
    pub max_outstanding_r2t: u16,
    pub initial_r2t: bool,
}

/// Gathers a write's Data-Out in offset order (DataPDUInOrder and
/// DataSequenceInOrder are always Yes with this target).
#[derive(Debug)]
pub(crate) struct Collector {
    edtl: u32,
    /// The data so far: one zero-copy segment, or an assembly buffer.
    single: Option<Bytes>,
    assembled: Option<BytesMut>,
    received: u32,
    /// Where unsolicited data ends, once known (F bit seen or none sent).
    unsolicited_end: Option<u32>,
    unsolicited_limit: u32,
    unsolicited_data_sn: u32,
    pub r2ts: Vec<OutstandingR2t>,
    next_r2t_offset: u32,
    pub next_r2t_sn: u32,
}

impl Collector {
    /// Starts collection with the command PDU's immediate data. `final_`
    /// is the command PDU's F bit: no unsolicited Data-Out follows.
    pub fn new(edtl: u32, immediate: Bytes, final_: bool, burst: &Burst) -> Collector {
        let received = immediate.len() as u32;
        let unsolicited_limit = burst.first_burst_length.min(edtl);
        let unsolicited_open = !final_ && !burst.initial_r2t && received < unsolicited_limit;
        Collector {
            edtl,
            single: (!immediate.is_empty()).then_some(immediate),
            assembled: None,
            received,
            unsolicited_end: if unsolicited_open {
                None
            } else {
                Some(received)
            },
            unsolicited_limit,
            unsolicited_data_sn: 0,
            r2ts: Vec::new(),
            next_r2t_offset: received,
            next_r2t_sn: 0,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.received >= self.edtl
    }

    /// Takes the gathered data (zero-copy when one PDU carried it all).
    pub fn take_data(&mut self) -> Bytes {
        if let Some(buf) = self.assembled.take() {
            return buf.freeze();
        }
        self.single.take().unwrap_or_default()
    }

    fn append(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.received += data.len() as u32;
        match (&mut self.assembled, self.single.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => self.single = Some(data),
            (None, Some(first)) => {
                let mut buf = BytesMut::with_capacity(self.edtl as usize);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                self.assembled = Some(buf);
            }
        }
        debug_assert!(self.received <= self.edtl);
    }

    /// Accepts one Data-Out PDU (§11.7): unsolicited when its TTT is the
    /// reserved tag, else for the R2T whose TTT it carries.
    pub fn accept(&mut self, h: &DataOut, data: Bytes) -> Result<(), DataOutError> {
        let len = data.len() as u32;
        if h.buffer_offset != self.received || self.received.saturating_add(len) > self.edtl {
            return Err(DataOutError::Sequence);
        }
        if h.ttt == RESERVED_TAG {
            if self.unsolicited_end.is_some() {
                return Err(DataOutError::UnexpectedUnsolicited);
            }
            if h.data_sn != self.unsolicited_data_sn || self.received + len > self.unsolicited_limit
            {
                return Err(DataOutError::Sequence);
            }
            self.unsolicited_data_sn += 1;
            self.append(data);
            if h.final_ || self.received == self.unsolicited_limit {
                if !h.final_ {
                    return Err(DataOutError::Sequence);
                }
                self.unsolicited_end = Some(self.received);
                self.next_r2t_offset = self.received;
            }
            return Ok(());
        }
        let Some(index) = self.r2ts.iter().position(|r| r.ttt == h.ttt) else {
            return Err(DataOutError::Sequence);
        };
        let r2t = &mut self.r2ts[index];
        if h.data_sn != r2t.next_data_sn
            || h.buffer_offset != r2t.offset + r2t.received
            || r2t.received + len > r2t.len
        {
            return Err(DataOutError::Sequence);
        }
        r2t.next_data_sn += 1;
        r2t.received += len;
        let done = r2t.received == r2t.len;
        if done != h.final_ {
            return Err(DataOutError::Sequence);
        }
        if done {
            self.r2ts.remove(index);
        }
        self.append(data);
        Ok(())
    }

    /// Whether an R2T is due: the unsolicited phase is over, data is still
    /// unrequested and fewer than MaxOutstandingR2T are outstanding.
    pub fn wants_r2t(&self, burst: &Burst) -> bool {
        self.unsolicited_end.is_some()
            && self.next_r2t_offset < self.edtl
            && self.r2ts.len() < burst.max_outstanding_r2t as usize
    }

    /// Records an R2T for the next MaxBurstLength of data: its R2TSN,
    /// BufferOffset and Desired Data Transfer Length (§11.8).
    pub fn issue_r2t(&mut self, burst: &Burst, ttt: Ttt) -> (u32, u32, u32) {
        debug_assert!(self.wants_r2t(burst));
        let offset = self.next_r2t_offset;
        let len = burst.max_burst_length.min(self.edtl - offset);
        let r2t_sn = self.next_r2t_sn;
        self.next_r2t_sn += 1;
        self.next_r2t_offset += len;
        self.r2ts.push(OutstandingR2t {
            ttt,
            offset,
            len,
            received: 0,
            next_data_sn: 0,
        });
        (r2t_sn, offset, len)
    }
}

pub(crate) struct Task {
    pub itt: Itt,
    pub conn: ConnId,
    pub generation: u64,
    pub lun: Lun,
    pub cdb: Cdb,
    pub attr: TaskAttr,
    pub read: bool,
    pub edtl: u32,
    pub bidi_read_length: Option<u32>,
    /// Its CmdSN turn has come (immediate commands: at once).
    pub delivered: bool,
    pub stage: Stage,
    /// Present for commands with Data-Out.
    pub collector: Option<Collector>,
}

impl Task {
    /// The length Data-In is measured against for residuals.
    pub fn expected_in_len(&self) -> u32 {
        match self.bidi_read_length {
            Some(len) => len,
            None if self.read => self.edtl,
            None => 0,
        }
    }

    /// Whether the command can go to the SCSI layer.
    pub fn ready(&self) -> bool {
        self.stage == Stage::Collecting
            && self.delivered
            && self.collector.as_ref().is_none_or(Collector::is_complete)
    }

    pub fn r2t(&self, ttt: Ttt, r2t_sn: u32, offset: u32, len: u32) -> Pdu {
        Pdu::bare(Header::R2t(R2t {
            lun: self.lun,
            itt: self.itt,
            ttt,
            r2t_sn,
            buffer_offset: offset,
            desired_data_transfer_length: len,
            ..R2t::default()
        }))
    }

    /// Turns the SCSI result into Data-In PDUs and, unless the status rode
    /// on the last Data-In, a SCSI Response (§11.4, §11.7.4 phase collapse).
    /// `wanted_out` is the Data-Out length the CDB asks for, if known.
    pub fn respond(
        &self,
        result: CommandResult,
        wanted_out: Option<u32>,
        max_xmit: u32,
        max_burst: u32,
        mut push: impl FnMut(Pdu),
    ) {
        let expected_in = self.expected_in_len();
        let produced = result.data_in.len() as u32;
        let sent = produced.min(expected_in);
        let (overflow, underflow, residual) =
            if self.read || self.bidi_read_length.is_some() || produced > 0 {
                residual_of(produced, expected_in)
            } else {
                (false, false, 0)
            };
        let (overflow, underflow, residual) = match (self.bidi_read_length, wanted_out) {
            // Writes report residuals against the Data-Out the CDB wants.
            (None, Some(wanted)) if !self.read => residual_of(wanted, self.edtl),
            _ => (overflow, underflow, residual),
        };
        let collapse =
            result.status == crate::scsi::status::GOOD && result.sense.is_none() && sent > 0;
        let data = result.data_in.slice(..sent as usize);
        let max_xmit = max_xmit.max(512);
        let mut offset = 0u32;
        let mut data_sn = 0u32;
        let mut in_burst = 0u32;
        while offset < sent {
            let len = (sent - offset).min(max_xmit).min(max_burst - in_burst);
            in_burst += len;
            let last = offset + len == sent;
            let end_of_burst = last || in_burst == max_burst;
            let status_here = last && collapse;
            push(Pdu::new(
                Header::DataIn(DataIn {
                    final_: end_of_burst,
                    status_present: status_here,
                    status: if status_here { result.status } else { 0 },
                    overflow: status_here && overflow,
                    underflow: status_here && underflow,
                    residual_count: if status_here { residual } else { 0 },
                    lun: self.lun,
                    itt: self.itt,
                    ttt: RESERVED_TAG,
                    data_sn,
                    buffer_offset: offset,
                    ..DataIn::default()
                }),
                data.slice(offset as usize..(offset + len) as usize),
            ));
            if end_of_burst {
                in_burst = 0;
            }
            offset += len;
            data_sn += 1;
        }
        if collapse {
            return;
        }
        let sense_data = match &result.sense {
            Some(s) => {
                let mut buf = BytesMut::with_capacity(2 + s.len());
                buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
                buf.extend_from_slice(s);
                buf.freeze()
            }
            None => Bytes::new(),
        };
        push(Pdu::new(
            Header::ScsiResponse(ScsiResponse {
                overflow,
                underflow,
                residual_count: residual,
                response: 0,
                status: result.status,
                itt: self.itt,
                exp_data_sn: data_sn,
                ..ScsiResponse::default()
            }),
            sense_data,
        ));
    }
}

/// Residual flags and count of `actual` bytes against `expected`
/// (§11.4.5): overflow when more was wanted than the initiator expected.
fn residual_of(actual: u32, expected: u32) -> (bool, bool, u32) {
    if actual > expected {
        (true, false, actual - expected)
    } else if actual < expected {
        (false, true, expected - actual)
    } else {
        (false, false, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst() -> Burst {
        Burst {
            first_burst_length: 8192,
            max_burst_length: 16384,
            max_outstanding_r2t: 2,
            initial_r2t: false,
        }
    }

    fn data_out(ttt: Ttt, data_sn: u32, offset: u32, final_: bool) -> DataOut {
        DataOut {
            final_,
            ttt,
            data_sn,
            buffer_offset: offset,
            ..DataOut::default()
        }
    }

    #[test]
    fn immediate_only_is_zero_copy() {
        let data = Bytes::from(vec![7u8; 4096]);
        let mut c = Collector::new(4096, data.clone(), true, &burst());
        assert!(c.is_complete());
        let out = c.take_data();
        assert_eq!(out.as_ptr(), data.as_ptr());
    }

    #[test]
    fn unsolicited_then_r2ts() {
        let b = burst();
        let mut c = Collector::new(40960, Bytes::from(vec![1u8; 4096]), false, &b);
        assert!(!c.wants_r2t(&b), "no R2T while unsolicited data is open");
        c.accept(
            &data_out(RESERVED_TAG, 0, 4096, true),
            Bytes::from(vec![2u8; 4096]),
        )
        .unwrap();
        assert_eq!(c.issue_r2t(&b, 101), (0, 8192, 16384));
        assert_eq!(c.issue_r2t(&b, 102), (1, 24576, 16384));
        assert!(
            !c.wants_r2t(&b),
            "MaxOutstandingR2T=2 and the transfer is covered"
        );
        c.accept(&data_out(101, 0, 8192, false), Bytes::from(vec![3u8; 8192]))
            .unwrap();
        c.accept(&data_out(101, 1, 16384, true), Bytes::from(vec![3u8; 8192]))
            .unwrap();
        assert!(!c.wants_r2t(&b), "R2Ts already cover the whole transfer");
        assert!(!c.is_complete());
        c.accept(
            &data_out(102, 0, 24576, true),
            Bytes::from(vec![4u8; 16384]),
        )
        .unwrap();
        assert!(c.is_complete());
        let all = c.take_data();
        assert_eq!(all.len(), 40960);
        assert_eq!((all[0], all[4096], all[8192], all[24576]), (1, 2, 3, 4));
    }

    #[test]
    fn bad_data_sn_is_a_sequence_error() {
        let b = Burst {
            initial_r2t: true,
            ..burst()
        };
        let mut c = Collector::new(1024, Bytes::new(), true, &b);
        assert!(c.wants_r2t(&b));
        c.issue_r2t(&b, 9);
        let ttt = 9;
        c.accept(&data_out(ttt, 0, 0, false), Bytes::from(vec![0u8; 512]))
            .unwrap();
        assert_eq!(
            c.accept(&data_out(ttt, 0, 512, true), Bytes::from(vec![0u8; 512])),
            Err(DataOutError::Sequence)
        );
    }

    #[test]
    fn unsolicited_when_initial_r2t_is_refused() {
        let b = Burst {
            initial_r2t: true,
            ..burst()
        };
        let mut c = Collector::new(1024, Bytes::new(), false, &b);
        assert_eq!(
            c.accept(
                &data_out(RESERVED_TAG, 0, 0, true),
                Bytes::from(vec![0u8; 512])
            ),
            Err(DataOutError::UnexpectedUnsolicited)
        );
    }
}
