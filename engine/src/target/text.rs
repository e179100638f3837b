//! Text Requests in the full-feature phase (RFC 7143 §11.10, §11.11):
//! SendTargets discovery (§13.3, Appendix C), long responses continued
//! with the C bit and a TTT, and key renegotiation.

use bytes::Bytes;

use super::ConnId;
use super::connection::TextContinuation;
use super::endpoint::Endpoint;
use crate::pdu::{Header, Lun, Pdu, RESERVED_TAG, TextResponse, reject_reason};
use crate::text::discovery::{
    SendTargetsRequest, TargetAddress, TargetRecord, encode_send_targets,
};
use crate::text::{decode_pairs, encode_pairs};

/// The most text an initiator may send in one request, across PDUs.
const MAX_TEXT_REQUEST: usize = 64 * 1024;

impl Endpoint {
    pub(super) fn on_text(&mut self, id: ConnId, tsih: u16, pdu: Pdu) {
        let Header::TextRequest(h) = &pdu.header else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if h.ttt != RESERVED_TAG {
            match conn.text_out.take() {
                Some(c) if c.itt == h.itt && c.ttt == h.ttt => {
                    self.send_text(id, h.itt, h.lun, c.rest)
                }
                _ => self.reject(id, reject_reason::INVALID_PDU_FIELD, &pdu),
            }
            return;
        }
        let mut text = match conn.text_in.take() {
            Some((itt, buf)) if itt == h.itt => buf,
            _ => Vec::new(),
        };
        text.extend_from_slice(&pdu.data);
        if text.len() > MAX_TEXT_REQUEST {
            self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu);
            return;
        }
        if h.continue_ {
            // More text follows: answer empty and ask for it (§11.10.2).
            conn.text_in = Some((h.itt, text));
            let ttt = self.next_ttt();
            let reply = TextResponse {
                final_: false,
                lun: h.lun,
                itt: h.itt,
                ttt,
                ..Default::default()
            };
            self.queue(id, Pdu::bare(Header::TextResponse(reply)));
            return;
        }
        let Ok(pairs) = decode_pairs(&text) else {
            self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu);
            return;
        };
        let Some(negotiator) = self.conns.get_mut(&id).and_then(|c| c.negotiator.as_mut()) else {
            return;
        };
        negotiator.begin_exchange();
        let mut reply = match negotiator.handle(&pairs) {
            Ok(answers) => answers,
            Err(e) => {
                tracing::warn!(%id, %e, "text negotiation failed");
                self.reject(id, reject_reason::PROTOCOL_ERROR, &pdu);
                return;
            }
        };
        let max_xmit = negotiator.connection_params().max_xmit_data_segment_length;
        let send_targets = negotiator.send_targets().map(str::to_string);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.max_xmit = max_xmit;
        }
        if let Some(value) = send_targets {
            self.send_targets(id, tsih, &value, &mut reply);
        }
        self.send_text(id, h.itt, h.lun, encode_pairs(&reply));
    }

    /// Sends `data` as one Text Response, or the first part of it with the
    /// C bit and a TTT the initiator echoes to get the rest.
    fn send_text(&mut self, id: ConnId, itt: u32, lun: Lun, mut data: Bytes) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let max = conn.max_xmit as usize;
        if data.len() <= max {
            let reply = TextResponse {
                final_: true,
                lun,
                itt,
                ttt: RESERVED_TAG,
                ..Default::default()
            };
            self.queue(id, Pdu::new(Header::TextResponse(reply), data));
            return;
        }
        let chunk = data.split_to(max);
        let ttt = self.next_ttt();
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.text_out = Some(TextContinuation {
                itt,
                ttt,
                rest: data,
            });
        }
        let reply = TextResponse {
            final_: false,
            continue_: true,
            lun,
            itt,
            ttt,
            ..Default::default()
        };
        self.queue(id, Pdu::new(Header::TextResponse(reply), chunk));
    }

    /// SendTargets (Appendix C): the targets this initiator may access,
    /// each with the portals it is reachable at.
    fn send_targets(&self, id: ConnId, tsih: u16, value: &str, reply: &mut Vec<(String, String)>) {
        let (Some(conn), Some(session)) = (self.conns.get(&id), self.sessions.get(&tsih)) else {
            return;
        };
        let Some(request) = SendTargetsRequest::parse(value, session.kind) else {
            reply.push(("SendTargets".into(), "Reject".into()));
            return;
        };
        let wanted = |name: &str| match &request {
            SendTargetsRequest::All => true,
            SendTargetsRequest::Target(t) => t.eq_ignore_ascii_case(name),
            SendTargetsRequest::Session => session
                .target
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(name)),
        };
        let records: Vec<TargetRecord> = self
            .config
            .targets
            .iter()
            .filter(|t| wanted(&t.node.name))
            .filter(|t| {
                t.acl
                    .iter()
                    .any(|a| a.allows(&session.initiator_name, conn.peer))
            })
            .map(|t| {
                let tpgt = t.node.portal_group_tag;
                let addresses = if self.config.portals.is_empty() {
                    vec![TargetAddress::from_socket(conn.local, tpgt)]
                } else {
                    self.config
                        .portals
                        .iter()
                        .filter_map(|p| TargetAddress::parse(p).ok())
                        .map(|a| TargetAddress {
                            portal_group_tag: Some(tpgt),
                            ..a
                        })
                        .collect()
                };
                TargetRecord {
                    name: t.node.name.clone(),
                    addresses,
                }
            })
            .collect();
        reply.extend(encode_send_targets(&records));
    }
}
