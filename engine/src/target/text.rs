//! Text Requests in the full-feature phase (RFC 7143 §11.10, §11.11):
//! SendTargets discovery (§13.3, Appendix C), long responses continued
//! with the C bit and a TTT, and key renegotiation.

use bytes::Bytes;

use super::ConnId;
use super::connection::TextContinuation;
use super::endpoint::Endpoint;
use crate::pdu::{Header, Lun, Pdu, RESERVED_TAG, TextResponse, reject_reason};
use crate::text::{SessionType, decode_pairs, encode_pairs};

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
        let mut reply: Vec<(String, String)> = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "SendTargets" => self.send_targets(id, tsih, &value, &mut reply),
                "MaxRecvDataSegmentLength" => match value.parse::<u32>() {
                    Ok(v) if (512..=16_777_215).contains(&v) => {
                        if let Some(conn) = self.conns.get_mut(&id) {
                            conn.max_xmit = v;
                            let ours = conn.decoder.max_recv_data_segment_length;
                            reply.push((key, ours.to_string()));
                        }
                    }
                    _ => reply.push((key, "Reject".into())),
                },
                k if k.starts_with("X-") || k.starts_with("X#") => {
                    reply.push((key, "NotUnderstood".into()))
                }
                _ => reply.push((key, "Reject".into())),
            }
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

    /// SendTargets (Appendix C): `All` lists every target this initiator
    /// may access (discovery sessions), a name lists that target, and an
    /// empty value in a normal session lists the session's own target.
    fn send_targets(&self, id: ConnId, tsih: u16, value: &str, reply: &mut Vec<(String, String)>) {
        let (Some(conn), Some(session)) = (self.conns.get(&id), self.sessions.get(&tsih)) else {
            return;
        };
        let discovery = session.kind == SessionType::Discovery;
        let wanted = |name: &str| -> bool {
            match value {
                "All" => {
                    discovery
                        || session
                            .target
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(name))
                }
                "" => {
                    !discovery
                        && session
                            .target
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(name))
                }
                v => v.eq_ignore_ascii_case(name),
            }
        };
        for target in &self.config.targets {
            let name = &target.node.name;
            if !wanted(name)
                || !target
                    .acl
                    .iter()
                    .any(|a| a.allows(&session.initiator_name, conn.peer))
            {
                continue;
            }
            reply.push(("TargetName".into(), name.clone()));
            let tpgt = target.node.portal_group_tag;
            if self.config.portals.is_empty() {
                let addr = match conn.local {
                    std::net::SocketAddr::V4(a) => a.to_string(),
                    std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                };
                reply.push(("TargetAddress".into(), format!("{addr},{tpgt}")));
            }
            for portal in &self.config.portals {
                reply.push(("TargetAddress".into(), format!("{portal},{tpgt}")));
            }
        }
    }
}
