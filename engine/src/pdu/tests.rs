//! Tests of the PDU codec: RFC 7143 Appendix B known answers, hand-written
//! field layouts, round-trip and robustness properties.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

use super::digest::to_wire;
use super::*;

// ---------------------------------------------------------------- helpers

fn enc(digests: Digests) -> Encoder {
    Encoder { digests }
}

fn dec(digests: Digests, max: u32) -> Decoder {
    Decoder {
        digests,
        max_recv_data_segment_length: max,
    }
}

const NONE: Digests = Digests {
    header: false,
    data: false,
};
const BOTH: Digests = Digests {
    header: true,
    data: true,
};

fn encode(digests: Digests, pdu: &Pdu) -> BytesMut {
    let mut buf = BytesMut::new();
    enc(digests).encode(pdu, &mut buf);
    buf
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    ::hex::decode(s).unwrap()
}

/// Decodes `bytes` as exactly one PDU, with no digests.
fn decode_one(bytes: &[u8]) -> Pdu {
    let mut buf = BytesMut::from(bytes);
    let pdu = dec(NONE, MAX_DATA_SEGMENT_LENGTH)
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    pdu
}

/// Both directions of a hand-written layout: `bytes` decodes to `pdu` and
/// `pdu` encodes to `bytes`.
fn check_layout(bytes: &[u8], pdu: Pdu) {
    assert_eq!(decode_one(bytes), pdu);
    assert_eq!(&encode(NONE, &pdu)[..], bytes);
}

fn nop_out(itt: u32) -> Header {
    Header::NopOut(NopOut {
        immediate: true,
        lun: Lun(0),
        itt,
        ttt: RESERVED_TAG,
        cmd_sn: 7,
        exp_stat_sn: 9,
    })
}

// ------------------------------------------- RFC 7143 Appendix B.4 (CRC32C)

/// The CRC examples of RFC 7143 Appendix B.4, bytes as the RFC lists them.
#[test]
fn pdu_crc32c_known_answers_rfc7143_appendix_b4() {
    let incrementing: Vec<u8> = (0u8..32).collect();
    let decrementing: Vec<u8> = (0u8..32).rev().collect();
    let cases: [(&[u8], [u8; 4]); 4] = [
        (&[0; 32], [0xaa, 0x36, 0x91, 0x8a]),
        (&[0xff; 32], [0x43, 0xab, 0xa8, 0x62]),
        (&incrementing, [0x4e, 0x79, 0xdd, 0x46]),
        (&decrementing, [0x5c, 0xdb, 0x3f, 0x11]),
    ];
    for (data, wire) in cases {
        assert_eq!(to_wire(crc32c(data)), wire);
    }
}

/// The SCSI Read (10) Command PDU of RFC 7143 Appendix B.4, followed by the
/// header digest the RFC gives for it.
const RFC_READ10_PDU: &str = "01 c0 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                              14 00 00 00  00 00 04 00  00 00 00 14  00 00 00 18
                              28 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00";
const RFC_READ10_CRC: &str = "56 3a 96 d9";

fn rfc_read10() -> Pdu {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x28;
    cdb[8] = 0x02;
    Pdu::bare(Header::ScsiCommand(ScsiCommand {
        immediate: false,
        final_: true,
        read: true,
        write: false,
        attr: TaskAttr::Untagged,
        lun: Lun(0),
        itt: 0x1400_0000,
        expected_data_transfer_length: 1024,
        cmd_sn: 0x14,
        exp_stat_sn: 0x18,
        cdb: Cdb::new(&cdb),
        bidi_read_length: None,
    }))
}

/// Encoding the RFC's example with HeaderDigest=CRC32C yields the RFC's
/// bytes and digest; decoding them checks the digest and gives the PDU.
#[test]
fn pdu_header_digest_matches_rfc7143_appendix_b4_read10() {
    let mut wire = hex(RFC_READ10_PDU);
    check_layout(&wire, rfc_read10());
    wire.extend(hex(RFC_READ10_CRC));
    let digests = Digests {
        header: true,
        data: false,
    };
    assert_eq!(&encode(digests, &rfc_read10())[..], &wire[..]);
    let mut buf = BytesMut::from(&wire[..]);
    let pdu = dec(digests, 8192).decode(&mut buf).unwrap().unwrap();
    assert_eq!(pdu, rfc_read10());
}

// ------------------------------------------------- hand-written layouts

#[test]
fn pdu_layout_scsi_command_write_with_immediate_data() {
    let bytes = hex("41 a1 00 00  00 00 00 05  00 01 00 00  00 00 00 00
                     0a 0b 0c 0d  00 00 10 00  11 12 13 14  21 22 23 24
                     2a 00 00 00  00 10 00 00  08 00 00 00  00 00 00 00
                     61 62 63 64  65 00 00 00");
    let pdu = Pdu::new(
        Header::ScsiCommand(ScsiCommand {
            immediate: true,
            final_: true,
            read: false,
            write: true,
            attr: TaskAttr::Simple,
            lun: Lun::from_index(1),
            itt: 0x0a0b_0c0d,
            expected_data_transfer_length: 4096,
            cmd_sn: 0x1112_1314,
            exp_stat_sn: 0x2122_2324,
            cdb: Cdb::new(&[0x2a, 0, 0, 0, 0, 0x10, 0, 0, 8, 0]),
            bidi_read_length: None,
        }),
        Bytes::from_static(b"abcde"),
    );
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_login_request() {
    let bytes = hex("43 87 00 00  00 00 00 0c  80 12 34 56  78 9a 00 00
                     00 00 00 01  00 02 00 00  00 00 00 03  00 00 00 04
                     00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                     41 75 74 68  4d 65 74 68  6f 64 3d 4e");
    let pdu = Pdu::new(
        Header::LoginRequest(LoginRequest {
            transit: true,
            continue_: false,
            csg: Stage::LoginOperationalNegotiation,
            nsg: Stage::FullFeaturePhase,
            version_max: 0,
            version_min: 0,
            isid: Isid([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]),
            tsih: 0,
            itt: 1,
            cid: 2,
            cmd_sn: 3,
            exp_stat_sn: 4,
        }),
        Bytes::from_static(b"AuthMethod=N"),
    );
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_login_response() {
    let bytes = hex("23 41 00 00  00 00 00 00  80 12 34 56  78 9a 01 02
                     00 00 00 01  00 00 00 00  00 00 00 05  00 00 00 06
                     00 00 00 07  02 01 00 00  00 00 00 00  00 00 00 00");
    let pdu = Pdu::bare(Header::LoginResponse(LoginResponse {
        transit: false,
        continue_: true,
        csg: Stage::SecurityNegotiation,
        nsg: Stage::LoginOperationalNegotiation,
        version_max: 0,
        version_active: 0,
        isid: Isid([0x80, 0x12, 0x34, 0x56, 0x78, 0x9a]),
        tsih: 0x0102,
        itt: 1,
        stat_sn: 5,
        exp_cmd_sn: 6,
        max_cmd_sn: 7,
        status_class: 2,
        status_detail: 1,
    }));
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_data_in_with_status() {
    let bytes = hex("25 83 00 00  00 00 00 04  00 02 00 00  00 00 00 00
                     00 00 00 10  ff ff ff ff  00 00 00 20  00 00 00 21
                     00 00 00 30  00 00 00 02  00 00 20 00  00 00 01 00
                     de ad be ef");
    let pdu = Pdu::new(
        Header::DataIn(DataIn {
            final_: true,
            ack: false,
            overflow: false,
            underflow: true,
            status_present: true,
            status: 0,
            lun: Lun::from_index(2),
            itt: 0x10,
            ttt: RESERVED_TAG,
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
            data_sn: 2,
            buffer_offset: 0x2000,
            residual_count: 0x100,
        }),
        Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
    );
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_r2t() {
    let bytes = hex("31 80 00 00  00 00 00 00  00 01 00 00  00 00 00 00
                     00 00 00 10  00 00 00 77  00 00 00 20  00 00 00 21
                     00 00 00 30  00 00 00 03  00 01 00 00  00 00 40 00");
    let pdu = Pdu::bare(Header::R2t(R2t {
        lun: Lun::from_index(1),
        itt: 0x10,
        ttt: 0x77,
        stat_sn: 0x20,
        exp_cmd_sn: 0x21,
        max_cmd_sn: 0x30,
        r2t_sn: 3,
        buffer_offset: 0x10000,
        desired_data_transfer_length: 0x4000,
    }));
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_scsi_response_with_residuals() {
    let bytes = hex("21 96 00 02  00 00 00 00  00 00 00 00  00 00 00 00
                     00 00 00 10  00 00 00 00  00 00 00 20  00 00 00 21
                     00 00 00 30  00 00 00 04  00 00 00 05  00 00 00 06");
    let pdu = Pdu::bare(Header::ScsiResponse(ScsiResponse {
        bidi_overflow: true,
        bidi_underflow: false,
        overflow: true,
        underflow: true,
        response: 0,
        status: 2,
        itt: 0x10,
        snack_tag: 0,
        stat_sn: 0x20,
        exp_cmd_sn: 0x21,
        max_cmd_sn: 0x30,
        exp_data_sn: 4,
        bidi_read_residual_count: 5,
        residual_count: 6,
    }));
    check_layout(&bytes, pdu);
}

#[test]
fn pdu_layout_task_mgmt_request_and_logout_response() {
    let bytes = hex("42 81 00 00  00 00 00 00  00 03 00 00  00 00 00 00
                     00 00 00 11  00 00 00 10  00 00 00 05  00 00 00 06
                     00 00 00 04  00 00 00 09  00 00 00 00  00 00 00 00");
    check_layout(
        &bytes,
        Pdu::bare(Header::TaskMgmtRequest(TaskMgmtRequest {
            immediate: true,
            function: TmfFunction::AbortTask as u8,
            lun: Lun::from_index(3),
            itt: 0x11,
            referenced_task_tag: 0x10,
            cmd_sn: 5,
            exp_stat_sn: 6,
            ref_cmd_sn: 4,
            exp_data_sn: 9,
        })),
    );
    let bytes = hex("26 80 02 00  00 00 00 00  00 00 00 00  00 00 00 00
                     00 00 00 12  00 00 00 00  00 00 00 20  00 00 00 21
                     00 00 00 30  00 00 00 00  00 02 00 14  00 00 00 00");
    check_layout(
        &bytes,
        Pdu::bare(Header::LogoutResponse(LogoutResponse {
            response: 2,
            itt: 0x12,
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
            time2wait: 2,
            time2retain: 20,
        })),
    );
}

#[test]
fn pdu_layout_snack_async_and_reject() {
    let bytes = hex("10 81 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                     00 00 00 13  ff ff ff ff  00 00 00 00  00 00 00 22
                     00 00 00 00  00 00 00 00  00 00 00 05  00 00 00 02");
    check_layout(
        &bytes,
        Pdu::bare(Header::SnackRequest(SnackRequest {
            snack_type: SnackType::Status as u8,
            lun: Lun(0),
            itt: 0x13,
            ttt: RESERVED_TAG,
            exp_stat_sn: 0x22,
            beg_run: 5,
            run_length: 2,
        })),
    );
    let bytes = hex("32 80 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                     ff ff ff ff  00 00 00 00  00 00 00 20  00 00 00 21
                     00 00 00 30  01 00 00 00  00 05 00 07  00 00 00 00");
    check_layout(
        &bytes,
        Pdu::bare(Header::AsyncMessage(AsyncMessage {
            lun: Lun(0),
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
            async_event: async_event::LOGOUT_REQUEST,
            async_vcode: 0,
            parameter1: 0,
            parameter2: 5,
            parameter3: 7,
        })),
    );
    let rejected = nop_out(5).to_bhs(0);
    let mut bytes = hex("3f 80 09 00  00 00 00 30  00 00 00 00  00 00 00 00
                         ff ff ff ff  00 00 00 00  00 00 00 20  00 00 00 21
                         00 00 00 30  00 00 00 00  00 00 00 00  00 00 00 00");
    bytes.extend_from_slice(&rejected);
    check_layout(
        &bytes,
        Pdu::new(
            Header::Reject(Reject {
                reason: reject_reason::INVALID_PDU_FIELD,
                stat_sn: 0x20,
                exp_cmd_sn: 0x21,
                max_cmd_sn: 0x30,
                data_sn_r2t_sn: 0,
            }),
            Bytes::copy_from_slice(&rejected),
        ),
    );
}

#[test]
fn pdu_layout_remaining_opcodes() {
    let nop_out = hex("40 80 00 00  00 00 00 00  00 01 00 00  00 00 00 00
                       00 00 00 10  ff ff ff ff  00 00 00 05  00 00 00 06
                       00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00");
    check_layout(
        &nop_out,
        Pdu::bare(Header::NopOut(NopOut {
            immediate: true,
            lun: Lun::from_index(1),
            itt: 0x10,
            ttt: RESERVED_TAG,
            cmd_sn: 5,
            exp_stat_sn: 6,
        })),
    );
    let mut text_request = hex("44 80 00 00  00 00 00 10  00 00 00 00  00 00 00 00
                                00 00 00 20  ff ff ff ff  00 00 00 07  00 00 00 08
                                00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00");
    text_request.extend_from_slice(b"SendTargets=All\0");
    check_layout(
        &text_request,
        Pdu::new(
            Header::TextRequest(TextRequest {
                immediate: true,
                final_: true,
                continue_: false,
                lun: Lun(0),
                itt: 0x20,
                ttt: RESERVED_TAG,
                cmd_sn: 7,
                exp_stat_sn: 8,
            }),
            Bytes::from_static(b"SendTargets=All\0"),
        ),
    );
    let data_out = hex("05 80 00 00  00 00 00 04  00 01 00 00  00 00 00 00
                        00 00 00 10  00 00 00 77  00 00 00 00  00 00 00 09
                        00 00 00 00  00 00 00 01  00 00 20 00  00 00 00 00
                        01 02 03 04");
    check_layout(
        &data_out,
        Pdu::new(
            Header::DataOut(DataOut {
                final_: true,
                lun: Lun::from_index(1),
                itt: 0x10,
                ttt: 0x77,
                exp_stat_sn: 9,
                data_sn: 1,
                buffer_offset: 0x2000,
            }),
            Bytes::from_static(&[1, 2, 3, 4]),
        ),
    );
    let logout = hex("46 81 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                      00 00 00 30  00 03 00 00  00 00 00 0a  00 00 00 0b
                      00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00");
    check_layout(
        &logout,
        Pdu::bare(Header::LogoutRequest(LogoutRequest {
            immediate: true,
            reason: LogoutReason::CloseConnection as u8,
            itt: 0x30,
            cid: 3,
            cmd_sn: 10,
            exp_stat_sn: 11,
        })),
    );
    let nop_in = hex("20 80 00 00  00 00 00 00  00 00 00 00  00 00 00 00
                      ff ff ff ff  00 00 00 55  00 00 00 20  00 00 00 21
                      00 00 00 30  00 00 00 00  00 00 00 00  00 00 00 00");
    check_layout(
        &nop_in,
        Pdu::bare(Header::NopIn(NopIn {
            lun: Lun(0),
            itt: RESERVED_TAG,
            ttt: 0x55,
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
        })),
    );
    let tmf_resp = hex("22 80 05 00  00 00 00 00  00 00 00 00  00 00 00 00
                            00 00 00 11  00 00 00 00  00 00 00 20  00 00 00 21
                            00 00 00 30  00 00 00 00  00 00 00 00  00 00 00 00");
    check_layout(
        &tmf_resp,
        Pdu::bare(Header::TaskMgmtResponse(TaskMgmtResponse {
            response: tmf_response::FUNCTION_NOT_SUPPORTED,
            itt: 0x11,
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
        })),
    );
    let text_response = hex("24 40 00 00  00 00 00 00  00 02 00 00  00 00 00 00
                             00 00 00 20  00 00 00 99  00 00 00 20  00 00 00 21
                             00 00 00 30  00 00 00 00  00 00 00 00  00 00 00 00");
    check_layout(
        &text_response,
        Pdu::bare(Header::TextResponse(TextResponse {
            final_: false,
            continue_: true,
            lun: Lun::from_index(2),
            itt: 0x20,
            ttt: 0x99,
            stat_sn: 0x20,
            exp_cmd_sn: 0x21,
            max_cmd_sn: 0x30,
        })),
    );
}

/// Reserved bits and fields are ignored on receipt (§11.2.1): NOP-Out with
/// every reserved bit set decodes like the clean one.
#[test]
fn pdu_reserved_bits_are_ignored() {
    let clean = nop_out(3).to_bhs(0);
    let mut dirty = clean;
    dirty[0] |= 0x80;
    dirty[1] |= 0x7f;
    dirty[2] = 0xff;
    dirty[3] = 0xff;
    dirty[32..48].fill(0xff);
    assert_eq!(decode_one(&dirty), decode_one(&clean));
}

/// The I bit of a Login Request is always 1 when sent; one received
/// without it is decoded all the same (§11.12).
#[test]
fn pdu_login_request_i_bit() {
    let login = Header::LoginRequest(LoginRequest::default());
    let mut bhs = login.to_bhs(0);
    assert_eq!(bhs[0], 0x43);
    bhs[0] = 0x03;
    assert_eq!(decode_one(&bhs).header, login);
}

/// `to_bhs` is the BHS the encoder sends, TotalAHSLength included.
#[test]
fn pdu_to_bhs_matches_encoding() {
    let pdu = Pdu::new(scsi_with_ahs(32, Some(9)), Bytes::from_static(b"xyz"));
    let wire = encode(NONE, &pdu);
    assert_eq!(pdu.header.to_bhs(3)[..], wire[..BHS_LEN]);
    assert_eq!(wire[4], 7);
}

// ------------------------------------------------------------- AHS

fn scsi_with_ahs(cdb_len: usize, bidi: Option<u32>) -> Header {
    let cdb: Vec<u8> = (0..cdb_len).map(|i| (i as u8).wrapping_add(0x40)).collect();
    Header::ScsiCommand(ScsiCommand {
        final_: true,
        read: bidi.is_some(),
        write: true,
        cdb: Cdb::new(&cdb),
        bidi_read_length: bidi,
        ..ScsiCommand::default()
    })
}

/// A 32-byte CDB: 16 bytes in the BHS, 16 in an Extended CDB AHS with
/// AHSLength = CDBLength - 15 = 17, padded to 20 bytes (§11.2.2.3).
#[test]
fn pdu_extended_cdb_of_32_bytes() {
    let pdu = Pdu::bare(scsi_with_ahs(32, None));
    let wire = encode(NONE, &pdu);
    assert_eq!(wire.len(), BHS_LEN + 20);
    assert_eq!(wire[4], 5, "TotalAHSLength in words");
    assert_eq!(wire[32..48], (0x40..0x50).collect::<Vec<u8>>()[..]);
    let mut ahs = hex("00 11 01 00");
    ahs.extend(0x50..0x60);
    assert_eq!(wire[BHS_LEN..], ahs[..]);
    assert_eq!(decode_one(&wire), pdu);
}

/// Extended CDB padding: 17..=20-byte CDBs, and the largest one that fits.
#[test]
fn pdu_extended_cdb_padding() {
    for (cdb_len, ahs_len) in [(17, 8), (18, 8), (19, 8), (20, 8), (21, 12), (260, 248)] {
        let pdu = Pdu::bare(scsi_with_ahs(cdb_len, None));
        let wire = encode(NONE, &pdu);
        assert_eq!(wire.len(), BHS_LEN + ahs_len, "CDB of {cdb_len}");
        assert_eq!(
            u16::from_be_bytes([wire[48], wire[49]]) as usize,
            cdb_len - 15
        );
        assert!(wire[BHS_LEN + 4 + cdb_len - 16..].iter().all(|&b| b == 0));
        assert_eq!(decode_one(&wire), pdu);
    }
    let pdu = Pdu::bare(scsi_with_ahs(16 + 1016, None));
    assert_eq!(encode(NONE, &pdu)[4], 255);
    assert_eq!(decode_one(&encode(NONE, &pdu)), pdu);
}

#[test]
#[should_panic(expected = "TotalAHSLength")]
fn pdu_extended_cdb_too_long_to_encode() {
    let _ = encode(NONE, &Pdu::bare(scsi_with_ahs(16 + 1017, None)));
}

/// Expected Bidirectional Read-Data Length AHS (§11.2.2.4), alone and
/// after an Extended CDB.
#[test]
fn pdu_bidi_read_length_ahs() {
    let pdu = Pdu::bare(scsi_with_ahs(10, Some(0x0102_0304)));
    let wire = encode(NONE, &pdu);
    assert_eq!(wire[4], 2);
    assert_eq!(wire[BHS_LEN..], hex("00 05 02 00 01 02 03 04")[..]);
    assert_eq!(decode_one(&wire), pdu);

    let pdu = Pdu::bare(scsi_with_ahs(24, Some(512)));
    let wire = encode(BOTH, &pdu);
    assert_eq!(wire[4], 5);
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(dec(BOTH, 0).decode(&mut buf), Ok(Some(pdu)));
}

/// The bidirectional AHS may come first on the wire.
#[test]
fn pdu_ahs_in_either_order() {
    let mut bhs = scsi_with_ahs(17, Some(7)).to_bhs(0).to_vec();
    bhs.extend(hex("00 05 02 00 00 00 00 07  00 02 01 00 50 00 00 00"));
    assert_eq!(decode_one(&bhs).header, scsi_with_ahs(17, Some(7)));
}

/// Malformed AHS and AHS on other opcodes are invalid fields; the PDU is
/// consumed so the next one decodes.
#[test]
fn pdu_malformed_ahs_is_invalid_field() {
    let scsi = Header::ScsiCommand(ScsiCommand::default());
    let cases: [(&Header, &str); 8] = [
        (&scsi, "00 01 03 00"),                                     // unknown AHSType
        (&scsi, "00 09 01 00 11 22 33 44"),                         // AHSLength too long
        (&scsi, "00 04 02 00 00 00 00 07"),                         // bidi AHSLength 4
        (&scsi, "00 01 01 00"),                                     // 16-byte "extended" CDB
        (&scsi, "00 05 02 00 00 00 00 07 00 05 02 00 00 00 00 07"), // duplicate
        (&scsi, "00 02 01 00 50 00 00 00 00 02 01 00 50 00 00 00"), // duplicate
        (&nop_out(1), "00 05 02 00 00 00 00 07"),                   // AHS on NOP-Out
        (&scsi, "00 00 00 00"),                                     // AHSType 0 is reserved
    ];
    for (header, ahs) in cases {
        let ahs = hex(ahs);
        let mut bhs = header.to_bhs(0);
        bhs[4] = (ahs.len() / 4) as u8;
        let mut buf = BytesMut::from(&bhs[..]);
        buf.extend_from_slice(&ahs);
        buf.extend_from_slice(&encode(NONE, &Pdu::bare(nop_out(2))));
        let decoder = dec(NONE, 8192);
        let err = decoder.decode(&mut buf).unwrap_err();
        assert!(
            matches!(&err, DecodeError::InvalidField { bhs: got, .. } if **got == bhs),
            "{ahs:02x?}: {err:?}"
        );
        assert!(err.is_recoverable());
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap().header,
            nop_out(2)
        );
    }
}

// --------------------------------------------------- data and padding

#[test]
fn pdu_data_segment_padding() {
    for (len, padded) in [(0, 0), (1, 4), (2, 4), (3, 4), (4, 4), (5, 8), (8192, 8192)] {
        let data = Bytes::from(vec![0xa5; len]);
        let pdu = Pdu::new(nop_out(1), data.clone());
        let wire = encode(NONE, &pdu);
        assert_eq!(wire.len(), BHS_LEN + padded);
        assert_eq!(&wire[5..8], &(len as u32).to_be_bytes()[1..]);
        assert!(wire[BHS_LEN + len..].iter().all(|&b| b == 0));
        assert_eq!(decode_one(&wire), pdu);
        // The data digest covers data and padding and is absent without data.
        let wire = encode(BOTH, &pdu);
        let digest = if len == 0 { 0 } else { 4 };
        assert_eq!(wire.len(), BHS_LEN + 4 + padded + digest);
        if len > 0 {
            assert_eq!(
                wire[wire.len() - 4..],
                to_wire(crc32c(&wire[BHS_LEN + 4..wire.len() - 4]))
            );
        }
        let trailer = enc(BOTH).trailer(&data);
        assert_eq!(trailer.as_ref(), &wire[BHS_LEN + 4 + len..]);
    }
}

/// Non-zero padding is ignored but covered by the data digest (§13.1).
#[test]
fn pdu_padding_is_covered_by_data_digest() {
    let pdu = Pdu::new(nop_out(1), Bytes::from_static(b"a"));
    let mut wire = encode(BOTH, &pdu);
    let pad = BHS_LEN + 4 + 1;
    wire[pad] = 0xee;
    let digest = to_wire(crc32c(&wire[BHS_LEN + 4..BHS_LEN + 8]));
    let n = wire.len();
    wire[n - 4..].copy_from_slice(&digest);
    assert_eq!(dec(BOTH, 8192).decode(&mut wire), Ok(Some(pdu)));
}

/// The decoded data segment is a slice of the receive buffer, not a copy.
#[test]
fn pdu_data_is_zero_copy() {
    let pdu = Pdu::new(nop_out(1), Bytes::from(vec![7u8; 1000]));
    let mut buf = encode(BOTH, &pdu);
    let range = buf.as_ptr_range();
    let got = dec(BOTH, 8192).decode(&mut buf).unwrap().unwrap();
    assert_eq!(got, pdu);
    assert!(range.contains(&got.data.as_ptr()));
    assert_eq!(got.data.as_ptr(), range.start.wrapping_add(BHS_LEN + 4));
}

/// Encoding into a buffer with room does not reallocate it, and writes
/// exactly what `header_len` and the trailer announce.
#[test]
fn pdu_encoding_stays_in_reserved_buffer() {
    let encoder = enc(BOTH);
    let pdu = Pdu::new(scsi_with_ahs(20, Some(1)), Bytes::from(vec![1u8; 4097]));
    let mut dst = BytesMut::with_capacity(64 * 1024);
    let ptr = dst.as_ptr();
    let mut expected = 0;
    for _ in 0..8 {
        encoder.encode(&pdu, &mut dst);
        expected +=
            encoder.header_len(&pdu.header) + 4097 + encoder.trailer(&pdu.data).as_ref().len();
        assert_eq!(dst.len(), expected);
    }
    assert_eq!(dst.as_ptr(), ptr);
    assert_eq!(dst.capacity(), 64 * 1024);
}

// ------------------------------------------------------ decoder rules

/// Every strict prefix of a PDU is incomplete and consumes nothing.
#[test]
fn pdu_incomplete_consumes_nothing() {
    let pdu = Pdu::new(scsi_with_ahs(17, Some(3)), Bytes::from_static(b"hello"));
    let wire = encode(BOTH, &pdu);
    for n in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..n]);
        assert_eq!(dec(BOTH, 8192).decode(&mut buf), Ok(None), "prefix {n}");
        assert_eq!(buf.len(), n);
    }
}

/// A BHS claiming a 16 MiB data segment is refused on the BHS alone,
/// nothing consumed, whatever the max.
#[test]
fn pdu_data_segment_too_long() {
    let mut bhs = nop_out(1).to_bhs(0);
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    for max in [0, 8192, 0x00ff_fffe] {
        let mut buf = BytesMut::from(&bhs[..]);
        let err = dec(BOTH, max).decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            DecodeError::DataSegmentTooLong {
                bhs: Box::new(bhs),
                length: 0x00ff_ffff,
                max
            }
        );
        assert!(!err.is_recoverable());
        assert_eq!(buf.len(), BHS_LEN);
    }
    // Exactly the max is fine.
    let pdu = Pdu::new(nop_out(1), Bytes::from(vec![0; 100]));
    let mut buf = encode(NONE, &pdu);
    assert_eq!(dec(NONE, 100).decode(&mut buf), Ok(Some(pdu)));
}

#[test]
fn pdu_header_digest_mismatch() {
    let pdu = Pdu::new(scsi_with_ahs(20, None), Bytes::from_static(b"data"));
    let wire = encode(BOTH, &pdu);
    // Any flipped bit of BHS, AHS or the digest itself is caught.
    for byte in [0, 5, 16, 47, 48, 55, 56, 59] {
        let mut buf = BytesMut::from(&wire[..]);
        buf[byte] ^= 0x10;
        let before = buf.clone();
        let err = dec(BOTH, 0x00ff_ffff).decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, DecodeError::HeaderDigest { .. }),
            "byte {byte}: {err:?}"
        );
        assert!(!err.is_recoverable());
        assert_eq!(buf, before, "nothing consumed");
    }
}

/// The header digest is checked as soon as the header is in, before the
/// data segment arrives.
#[test]
fn pdu_header_digest_checked_before_data() {
    let pdu = Pdu::new(nop_out(1), Bytes::from(vec![0; 4000]));
    let wire = encode(BOTH, &pdu);
    let mut buf = BytesMut::from(&wire[..BHS_LEN + 4]);
    buf[20] ^= 1;
    assert!(matches!(
        dec(BOTH, 8192).decode(&mut buf),
        Err(DecodeError::HeaderDigest { .. })
    ));
}

#[test]
fn pdu_data_digest_mismatch() {
    let pdu = Pdu::new(nop_out(1), Bytes::from_static(b"ping!"));
    let next = Pdu::bare(nop_out(2));
    let wire = encode(BOTH, &pdu);
    // A flipped bit in data, in padding, or in the digest.
    for byte in [BHS_LEN + 4, BHS_LEN + 8, BHS_LEN + 9, wire.len() - 1] {
        let mut buf = BytesMut::from(&wire[..]);
        buf[byte] ^= 0x01;
        enc(BOTH).encode(&next, &mut buf);
        let decoder = dec(BOTH, 8192);
        let err = decoder.decode(&mut buf).unwrap_err();
        match &err {
            DecodeError::DataDigest { header, bhs, .. } => {
                assert_eq!(**header, pdu.header);
                assert_eq!(bhs[..], wire[..BHS_LEN]);
            }
            other => panic!("byte {byte}: {other:?}"),
        }
        assert!(err.is_recoverable());
        assert_eq!(decoder.decode(&mut buf), Ok(Some(next.clone())));
        assert!(buf.is_empty());
    }
}

/// Vendor-specific (0x1c-0x1e, 0x3c-0x3e) and other undefined opcodes are
/// consumed with their data and reported; the stream goes on.
#[test]
fn pdu_unknown_and_vendor_opcodes() {
    for opcode in [0x1c, 0x1d, 0x1e, 0x3c, 0x3d, 0x3e, 0x07, 0x11, 0x27, 0x30] {
        let mut bhs = nop_out(1).to_bhs(6);
        bhs[0] = 0x40 | opcode;
        bhs[4] = 1;
        let mut buf = BytesMut::from(&bhs[..]);
        buf.extend_from_slice(&[9; 4]); // AHS word
        buf.extend_from_slice(b"vendor\0\0"); // data and padding
        enc(NONE).encode(&Pdu::bare(nop_out(2)), &mut buf);
        let decoder = dec(NONE, 8192);
        let err = decoder.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownOpcode {
                opcode,
                bhs: Box::new(bhs)
            }
        );
        assert_eq!(err.bhs(), Some(&bhs));
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap().header,
            nop_out(2)
        );
    }
    // Its data is bounded like any other.
    let mut bhs = [0u8; BHS_LEN];
    bhs[0] = 0x1c;
    bhs[7] = 200;
    let mut buf = BytesMut::from(&bhs[..]);
    assert!(matches!(
        dec(NONE, 100).decode(&mut buf),
        Err(DecodeError::DataSegmentTooLong { length: 200, .. })
    ));
}

// ---------------------------------------------------------- proptest

fn lun() -> impl Strategy<Value = Lun> {
    any::<u64>().prop_map(Lun)
}

fn stage() -> impl Strategy<Value = Stage> {
    (0u8..4).prop_map(Stage::from_bits)
}

fn isid() -> impl Strategy<Value = Isid> {
    any::<[u8; 6]>().prop_map(Isid)
}

/// A CDB of 1 to 16 bytes, or longer with an Extended CDB AHS (at most
/// 1008 extra bytes, so that a bidirectional AHS still fits).
fn cdb() -> impl Strategy<Value = Cdb> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|base| Cdb {
            base,
            extended: Vec::new()
        }),
        (any::<[u8; 16]>(), vec(any::<u8>(), 1..=1008))
            .prop_map(|(base, extended)| Cdb { base, extended }),
    ]
}

fn scsi_command() -> impl Strategy<Value = Header> {
    (
        (
            any::<[bool; 4]>(),
            (0u8..5).prop_map(TaskAttr::from_bits),
            lun(),
        ),
        any::<[u32; 4]>(),
        cdb(),
        any::<Option<u32>>(),
    )
        .prop_map(
            |(([i, f, r, w], attr, lun), [itt, edtl, cmd_sn, exp_stat_sn], cdb, bidi)| {
                Header::ScsiCommand(ScsiCommand {
                    immediate: i,
                    final_: f,
                    read: r,
                    write: w,
                    attr,
                    lun,
                    itt,
                    expected_data_transfer_length: edtl,
                    cmd_sn,
                    exp_stat_sn,
                    cdb,
                    bidi_read_length: bidi,
                })
            },
        )
}

/// Every header RFC 7143 §11 defines, with every field arbitrary within
/// its width on the wire.
fn header() -> impl Strategy<Value = Header> {
    let n = any::<[u32; 9]>;
    Union::new([
        (any::<bool>(), lun(), n())
            .prop_map(|(immediate, lun, n)| {
                Header::NopOut(NopOut {
                    immediate,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    cmd_sn: n[2],
                    exp_stat_sn: n[3],
                })
            })
            .boxed(),
        scsi_command().boxed(),
        (any::<bool>(), 0u8..0x80, lun(), n())
            .prop_map(|(immediate, function, lun, n)| {
                Header::TaskMgmtRequest(TaskMgmtRequest {
                    immediate,
                    function,
                    lun,
                    itt: n[0],
                    referenced_task_tag: n[1],
                    cmd_sn: n[2],
                    exp_stat_sn: n[3],
                    ref_cmd_sn: n[4],
                    exp_data_sn: n[5],
                })
            })
            .boxed(),
        (
            any::<[bool; 2]>(),
            stage(),
            stage(),
            any::<[u8; 2]>(),
            isid(),
            any::<[u16; 2]>(),
            n(),
        )
            .prop_map(|([t, c], csg, nsg, v, isid, s, n)| {
                Header::LoginRequest(LoginRequest {
                    transit: t,
                    continue_: c,
                    csg,
                    nsg,
                    version_max: v[0],
                    version_min: v[1],
                    isid,
                    tsih: s[0],
                    itt: n[0],
                    cid: s[1],
                    cmd_sn: n[1],
                    exp_stat_sn: n[2],
                })
            })
            .boxed(),
        (any::<[bool; 3]>(), lun(), n())
            .prop_map(|([i, f, c], lun, n)| {
                Header::TextRequest(TextRequest {
                    immediate: i,
                    final_: f,
                    continue_: c,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    cmd_sn: n[2],
                    exp_stat_sn: n[3],
                })
            })
            .boxed(),
        (any::<bool>(), lun(), n())
            .prop_map(|(final_, lun, n)| {
                Header::DataOut(DataOut {
                    final_,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    exp_stat_sn: n[2],
                    data_sn: n[3],
                    buffer_offset: n[4],
                })
            })
            .boxed(),
        (any::<bool>(), 0u8..0x80, any::<u16>(), n())
            .prop_map(|(immediate, reason, cid, n)| {
                Header::LogoutRequest(LogoutRequest {
                    immediate,
                    reason,
                    itt: n[0],
                    cid,
                    cmd_sn: n[1],
                    exp_stat_sn: n[2],
                })
            })
            .boxed(),
        (0u8..0x10, lun(), n())
            .prop_map(|(snack_type, lun, n)| {
                Header::SnackRequest(SnackRequest {
                    snack_type,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    exp_stat_sn: n[2],
                    beg_run: n[3],
                    run_length: n[4],
                })
            })
            .boxed(),
        (lun(), n())
            .prop_map(|(lun, n)| {
                Header::NopIn(NopIn {
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    stat_sn: n[2],
                    exp_cmd_sn: n[3],
                    max_cmd_sn: n[4],
                })
            })
            .boxed(),
        (any::<[bool; 4]>(), any::<[u8; 2]>(), n())
            .prop_map(|(f, b, n)| {
                Header::ScsiResponse(ScsiResponse {
                    bidi_overflow: f[0],
                    bidi_underflow: f[1],
                    overflow: f[2],
                    underflow: f[3],
                    response: b[0],
                    status: b[1],
                    itt: n[0],
                    snack_tag: n[1],
                    stat_sn: n[2],
                    exp_cmd_sn: n[3],
                    max_cmd_sn: n[4],
                    exp_data_sn: n[5],
                    bidi_read_residual_count: n[6],
                    residual_count: n[7],
                })
            })
            .boxed(),
        (any::<u8>(), n())
            .prop_map(|(response, n)| {
                Header::TaskMgmtResponse(TaskMgmtResponse {
                    response,
                    itt: n[0],
                    stat_sn: n[1],
                    exp_cmd_sn: n[2],
                    max_cmd_sn: n[3],
                })
            })
            .boxed(),
        (
            any::<[bool; 2]>(),
            stage(),
            stage(),
            any::<[u8; 4]>(),
            isid(),
            any::<u16>(),
            n(),
        )
            .prop_map(|([t, c], csg, nsg, b, isid, tsih, n)| {
                Header::LoginResponse(LoginResponse {
                    transit: t,
                    continue_: c,
                    csg,
                    nsg,
                    version_max: b[0],
                    version_active: b[1],
                    isid,
                    tsih,
                    itt: n[0],
                    stat_sn: n[1],
                    exp_cmd_sn: n[2],
                    max_cmd_sn: n[3],
                    status_class: b[2],
                    status_detail: b[3],
                })
            })
            .boxed(),
        (any::<[bool; 2]>(), lun(), n())
            .prop_map(|([f, c], lun, n)| {
                Header::TextResponse(TextResponse {
                    final_: f,
                    continue_: c,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    stat_sn: n[2],
                    exp_cmd_sn: n[3],
                    max_cmd_sn: n[4],
                })
            })
            .boxed(),
        (any::<[bool; 5]>(), any::<u8>(), lun(), n())
            .prop_map(|(f, status, lun, n)| {
                Header::DataIn(DataIn {
                    final_: f[0],
                    ack: f[1],
                    overflow: f[2],
                    underflow: f[3],
                    status_present: f[4],
                    status,
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    stat_sn: n[2],
                    exp_cmd_sn: n[3],
                    max_cmd_sn: n[4],
                    data_sn: n[5],
                    buffer_offset: n[6],
                    residual_count: n[7],
                })
            })
            .boxed(),
        (any::<u8>(), any::<[u16; 2]>(), n())
            .prop_map(|(response, t, n)| {
                Header::LogoutResponse(LogoutResponse {
                    response,
                    itt: n[0],
                    stat_sn: n[1],
                    exp_cmd_sn: n[2],
                    max_cmd_sn: n[3],
                    time2wait: t[0],
                    time2retain: t[1],
                })
            })
            .boxed(),
        (lun(), n())
            .prop_map(|(lun, n)| {
                Header::R2t(R2t {
                    lun,
                    itt: n[0],
                    ttt: n[1],
                    stat_sn: n[2],
                    exp_cmd_sn: n[3],
                    max_cmd_sn: n[4],
                    r2t_sn: n[5],
                    buffer_offset: n[6],
                    desired_data_transfer_length: n[7],
                })
            })
            .boxed(),
        (lun(), any::<[u8; 2]>(), any::<[u16; 3]>(), n())
            .prop_map(|(lun, e, p, n)| {
                Header::AsyncMessage(AsyncMessage {
                    lun,
                    stat_sn: n[0],
                    exp_cmd_sn: n[1],
                    max_cmd_sn: n[2],
                    async_event: e[0],
                    async_vcode: e[1],
                    parameter1: p[0],
                    parameter2: p[1],
                    parameter3: p[2],
                })
            })
            .boxed(),
        (any::<u8>(), n())
            .prop_map(|(reason, n)| {
                Header::Reject(Reject {
                    reason,
                    stat_sn: n[0],
                    exp_cmd_sn: n[1],
                    max_cmd_sn: n[2],
                    data_sn_r2t_sn: n[3],
                })
            })
            .boxed(),
    ])
}

fn data() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        vec(any::<u8>(), 1..600).prop_map(Bytes::from),
    ]
}

fn pdu() -> impl Strategy<Value = Pdu> {
    (header(), data()).prop_map(|(header, data)| Pdu::new(header, data))
}

fn digests() -> impl Strategy<Value = Digests> {
    any::<(bool, bool)>().prop_map(|(header, data)| Digests { header, data })
}

/// Feeds `wire` to a decoder in the given chunk sizes (cycled), decoding
/// after each chunk; every error is returned in place of a PDU.
fn decode_chunked(
    decoder: &Decoder,
    wire: &[u8],
    chunks: &[usize],
) -> (Vec<Result<Pdu, DecodeError>>, BytesMut) {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(pdu)) => out.push(Ok(pdu)),
                Ok(None) => break,
                Err(e) => {
                    let fatal = !e.is_recoverable();
                    out.push(Err(e));
                    if fatal {
                        return (out, buf);
                    }
                }
            }
        }
    }
    (out, buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → decode gives back every PDU of every opcode, with and
    /// without each digest; the header length is as announced.
    #[test]
    fn pdu_roundtrip(pdu in pdu(), digests in digests()) {
        let wire = encode(digests, &pdu);
        let header_len = enc(digests).header_len(&pdu.header);
        prop_assert_eq!(wire[4] as usize * 4, pdu.header.ahs_len());
        prop_assert_eq!(&wire[..BHS_LEN], &pdu.header.to_bhs(pdu.data.len() as u32)[..]);
        prop_assert_eq!(
            wire.len(),
            header_len + enc(digests).trailer(&pdu.data).as_ref().len() + pdu.data.len()
        );
        let mut buf = wire;
        let got = dec(digests, pdu.data.len() as u32).decode(&mut buf);
        prop_assert_eq!(got, Ok(Some(pdu)));
        prop_assert!(buf.is_empty());
    }

    /// A stream of PDUs decodes the same whatever the read boundaries.
    #[test]
    fn pdu_stream_in_arbitrary_chunks(
        pdus in vec(pdu(), 1..8),
        digests in digests(),
        chunks in vec(1usize..300, 1..16),
    ) {
        let mut wire = BytesMut::new();
        for pdu in &pdus {
            enc(digests).encode(pdu, &mut wire);
        }
        let (got, rest) = decode_chunked(&dec(digests, 1024), &wire, &chunks);
        let expected: Vec<_> = pdus.into_iter().map(Ok).collect();
        prop_assert_eq!(got, expected);
        prop_assert!(rest.is_empty());
    }

    /// Arbitrary bytes never panic the decoder, never make it grow the
    /// buffer, never yield data beyond the max, and errors consume as
    /// documented.
    #[test]
    fn pdu_decoder_survives_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..2048),
        digests in digests(),
        max in prop_oneof![0u32..64, 0u32..=MAX_DATA_SEGMENT_LENGTH],
    ) {
        check_decoder_invariants(&dec(digests, max), &bytes)?;
    }

    /// The same on valid streams with a few bytes corrupted, which reach
    /// deeper than random bytes (AHS, digests, opcodes).
    #[test]
    fn pdu_decoder_survives_corrupted_streams(
        pdus in vec(pdu(), 1..6),
        digests in digests(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        max in prop_oneof![Just(1024u32), 0u32..1024],
    ) {
        let mut wire = BytesMut::new();
        for pdu in &pdus {
            enc(digests).encode(pdu, &mut wire);
        }
        for (at, x) in flips {
            let i = at.index(wire.len());
            wire[i] ^= x;
        }
        check_decoder_invariants(&dec(digests, max), &wire)?;
    }
}

fn check_decoder_invariants(decoder: &Decoder, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(bytes);
    let capacity = buf.capacity();
    loop {
        let before = buf.len();
        let result = decoder.decode(&mut buf);
        prop_assert!(buf.capacity() <= capacity, "decoder grew the buffer");
        match result {
            Ok(None) => {
                prop_assert_eq!(buf.len(), before);
                return Ok(());
            }
            Ok(Some(pdu)) => {
                prop_assert!(pdu.data.len() <= decoder.max_recv_data_segment_length as usize);
                prop_assert!(buf.len() < before);
            }
            Err(e) if e.is_recoverable() => {
                prop_assert!(e.bhs().is_some());
                prop_assert!(buf.len() < before);
            }
            Err(e) => {
                prop_assert_eq!(buf.len(), before, "{}", e);
                return Ok(());
            }
        }
    }
}
