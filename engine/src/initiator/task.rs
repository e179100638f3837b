//! One request of the initiator: a SCSI command with its data transfer in
//! both directions (immediate data, unsolicited Data-Out, Data-Out for
//! R2Ts, Data-In reassembly; RFC 7143 §4.2.4, §11.3, §11.7, §11.8), a task
//! management function, a SendTargets exchange, or the logout.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::error::InitiatorError;
use super::sense::SenseInfo;
use super::{Residual, ScsiOutcome};
use crate::pdu::{
    Cdb, DataIn, DataOut, Header, Itt, Lun, Pdu, R2t, RESERVED_TAG, ScsiCommand, TaskAttr,
    TmfFunction, Ttt,
};
use crate::text::SessionParams;

/// What kind of request a task is.
#[derive(Debug)]
pub(super) enum Kind {
    Scsi(Box<ScsiTask>),
    Tmf(TmfTask),
    Text(TextTask),
    Logout,
}

/// One request, from submission to completion.
#[derive(Debug)]
pub(super) struct Task {
    pub itt: Itt,
    /// Submission order: retries after a reinstatement go out in it.
    pub seq: u64,
    pub kind: Kind,
    /// Sent on the current connection (and not yet answered).
    pub sent: bool,
    /// The CmdSN it was sent with (non-immediate requests).
    pub cmd_sn: u32,
    /// How many connections were lost while it was in flight.
    pub retries: u32,
    /// When the command timeout fires, while it is in flight.
    pub deadline: Option<std::time::Instant>,
    /// The command timed out and is being aborted.
    pub timed_out: bool,
}

/// A task management request (§11.5).
#[derive(Debug)]
pub(super) struct TmfTask {
    pub lun: Lun,
    pub function: TmfFunction,
    pub referenced: Option<Itt>,
    /// The tasks in flight the function covers, fixed when it is sent.
    pub affected: Vec<Itt>,
    /// Sent by the session itself (a command timeout): no completion.
    pub internal: bool,
}

/// A Text Request exchange (§11.10), e.g. SendTargets.
#[derive(Debug)]
pub(super) struct TextTask {
    pub request: Bytes,
    pub received: Vec<u8>,
}

/// The most text a SendTargets answer may run to.
pub(super) const MAX_TEXT_RESPONSE: usize = 1 << 20;

/// A SCSI command and the state of its current attempt.
#[derive(Debug)]
pub(super) struct ScsiTask {
    pub lun: Lun,
    pub cdb: Cdb,
    pub data_out: Bytes,
    pub expected_in: u32,
    pub attr: TaskAttr,
    data_in: Assembly,
    next_r2t_sn: u32,
}

impl ScsiTask {
    pub fn new(lun: Lun, cdb: Cdb, data_out: Bytes, expected_in: u32, attr: TaskAttr) -> Self {
        ScsiTask {
            lun,
            cdb,
            data_out,
            expected_in,
            attr,
            data_in: Assembly::default(),
            next_r2t_sn: 0,
        }
    }

    fn is_write(&self) -> bool {
        !self.data_out.is_empty()
    }

    /// The Expected Data Transfer Length (§11.3.4).
    fn edtl(&self) -> u32 {
        if self.is_write() {
            self.data_out.len() as u32
        } else {
            self.expected_in
        }
    }

    /// Queues the SCSI Command PDU with its immediate data, then the
    /// unsolicited Data-Out the negotiation allows (§4.2.4.2, §13.10-§13.14):
    /// unsolicited data ends at FirstBurstLength; with InitialR2T=Yes only
    /// immediate data is unsolicited. Resets the attempt's state.
    pub fn send(
        &mut self,
        itt: Itt,
        cmd_sn: u32,
        params: &SessionParams,
        max_xmit: u32,
        out: &mut VecDeque<Pdu>,
    ) {
        self.data_in = Assembly::default();
        self.next_r2t_sn = 0;
        let edtl = self.edtl();
        let (immediate, unsolicited_end) = if self.is_write() {
            let first_burst = params.first_burst_length.min(edtl);
            let immediate = if params.immediate_data {
                first_burst.min(max_xmit)
            } else {
                0
            };
            let unsolicited = if params.initial_r2t { 0 } else { first_burst };
            (immediate, unsolicited.max(immediate))
        } else {
            (0, 0)
        };
        debug_assert!(immediate <= unsolicited_end && unsolicited_end <= edtl);
        let header = ScsiCommand {
            immediate: false,
            final_: unsolicited_end == immediate,
            read: !self.is_write() && self.expected_in > 0,
            write: self.is_write(),
            attr: self.attr,
            lun: self.lun,
            itt,
            expected_data_transfer_length: edtl,
            cmd_sn,
            exp_stat_sn: 0,
            cdb: self.cdb.clone(),
            bidi_read_length: None,
        };
        out.push_back(Pdu::new(
            Header::ScsiCommand(header),
            self.data_out.slice(..immediate as usize),
        ));
        if unsolicited_end > immediate {
            data_out_pdus(
                self.lun,
                itt,
                RESERVED_TAG,
                &self.data_out,
                immediate,
                unsolicited_end - immediate,
                max_xmit,
                out,
            );
        }
    }

    /// Answers an R2T (§11.8) with Data-Out PDUs of at most `max_xmit`
    /// bytes, DataSN counting from 0 within the R2T, F on the last.
    pub fn answer_r2t(
        &mut self,
        h: &R2t,
        params: &SessionParams,
        max_xmit: u32,
        out: &mut VecDeque<Pdu>,
    ) -> Result<(), &'static str> {
        if !self.is_write() {
            return Err("R2T for a command without Data-Out");
        }
        if h.r2t_sn != self.next_r2t_sn {
            return Err("R2TSN out of order");
        }
        let len = h.desired_data_transfer_length;
        let end = h.buffer_offset.checked_add(len);
        if len == 0 || end.is_none_or(|e| e > self.edtl()) {
            return Err("R2T outside the transfer");
        }
        if len > params.max_burst_length {
            return Err("R2T longer than MaxBurstLength");
        }
        if h.ttt == RESERVED_TAG {
            return Err("R2T with the reserved Target Transfer Tag");
        }
        self.next_r2t_sn = self.next_r2t_sn.wrapping_add(1);
        data_out_pdus(
            self.lun,
            h.itt,
            h.ttt,
            &self.data_out,
            h.buffer_offset,
            len,
            max_xmit,
            out,
        );
        Ok(())
    }

    /// Takes one Data-In PDU (§11.7) into the reassembly.
    pub fn accept_data_in(&mut self, h: &DataIn, data: Bytes) -> Result<(), &'static str> {
        if self.is_write() {
            return Err("Data-In for a write");
        }
        self.data_in.accept(h, data, self.expected_in)
    }

    /// The outcome once the status is in (§11.4, or a Data-In with S).
    pub fn finish(
        &mut self,
        status: u8,
        sense: Option<SenseInfo>,
        overflow: bool,
        underflow: bool,
        residual_count: u32,
    ) -> Result<ScsiOutcome, InitiatorError> {
        let data = self.data_in.take();
        let residual = match (underflow, overflow) {
            (true, _) => Residual::Underflow(residual_count),
            (false, true) => Residual::Overflow(residual_count),
            _ => Residual::None,
        };
        if status == crate::scsi::status::GOOD && !self.is_write() {
            let promised = match residual {
                Residual::Underflow(n) => self.expected_in.saturating_sub(n),
                _ => self.expected_in,
            };
            if (data.len() as u32) < promised {
                return Err(InitiatorError::ShortTransfer {
                    expected: promised,
                    got: data.len() as u32,
                });
            }
        }
        Ok(ScsiOutcome {
            status,
            data,
            sense,
            residual,
        })
    }
}

/// Queues Data-Out PDUs for `len` bytes of `data` from `offset`.
#[allow(clippy::too_many_arguments)]
fn data_out_pdus(
    lun: Lun,
    itt: Itt,
    ttt: Ttt,
    data: &Bytes,
    offset: u32,
    len: u32,
    max_xmit: u32,
    out: &mut VecDeque<Pdu>,
) {
    debug_assert!(max_xmit > 0 && len > 0);
    debug_assert!((offset + len) as usize <= data.len());
    let mut done = 0u32;
    let mut data_sn = 0u32;
    while done < len {
        let n = (len - done).min(max_xmit);
        let at = offset + done;
        out.push_back(Pdu::new(
            Header::DataOut(DataOut {
                final_: done + n == len,
                lun,
                itt,
                ttt,
                exp_stat_sn: 0,
                data_sn,
                buffer_offset: at,
            }),
            data.slice(at as usize..(at + n) as usize),
        ));
        done += n;
        data_sn += 1;
    }
}

/// Data-In in arrival order: one zero-copy segment while a single PDU
/// carries it all, an assembly buffer beyond.
#[derive(Debug, Default)]
struct Assembly {
    single: Option<Bytes>,
    buf: Option<BytesMut>,
    received: u32,
    next_data_sn: u32,
}

impl Assembly {
    /// DataPDUInOrder and DataSequenceInOrder are Yes (this initiator
    /// offers Yes, and both keys are OR): DataSN counts up from 0 and every
    /// PDU starts where the previous ended (§4.2.4.1, §11.7.5).
    fn accept(&mut self, h: &DataIn, data: Bytes, expected: u32) -> Result<(), &'static str> {
        if h.data_sn != self.next_data_sn {
            return Err("Data-In DataSN out of order");
        }
        if h.buffer_offset != self.received {
            return Err("Data-In BufferOffset out of order");
        }
        let len = data.len() as u32;
        if u64::from(self.received) + u64::from(len) > u64::from(expected) {
            return Err("Data-In beyond the Expected Data Transfer Length");
        }
        self.next_data_sn = self.next_data_sn.wrapping_add(1);
        if data.is_empty() {
            return Ok(());
        }
        self.received += len;
        match (&mut self.buf, self.single.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => self.single = Some(data),
            (None, Some(first)) => {
                let mut buf = BytesMut::with_capacity(expected as usize);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                self.buf = Some(buf);
            }
        }
        debug_assert!(self.received <= expected);
        Ok(())
    }

    fn take(&mut self) -> Bytes {
        if let Some(buf) = self.buf.take() {
            return buf.freeze();
        }
        self.single.take().unwrap_or_default()
    }
}
