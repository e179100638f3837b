//! Fuzzes the PDU decoder (RFC 7143 §11): arbitrary bytes, with and without
//! digests and under several MaxRecvDataSegmentLength values, must never
//! panic, never yield more data than the max, never grow the buffer, and
//! every decoded PDU must re-encode to bytes that decode to the same PDU.
#![no_main]

use bytes::BytesMut;
use iscsi_engine::pdu::{Decoder, Digests, Encoder};
use libfuzzer_sys::fuzz_target;

/// MaxRecvDataSegmentLength values to try: zero, tiny, the login default,
/// and the largest the 24-bit field allows (RFC 7143 §13.12).
const MAXES: [u32; 6] = [0, 1, 48, 512, 8192, 0x00ff_ffff];

fuzz_target!(|input: &[u8]| {
    let Some((&config, bytes)) = input.split_first() else {
        return;
    };
    let digests = Digests {
        header: config & 1 != 0,
        data: config & 2 != 0,
    };
    let decoder = Decoder {
        digests,
        max_recv_data_segment_length: MAXES[usize::from(config >> 2) % MAXES.len()],
    };
    let encoder = Encoder { digests };

    let mut buf = BytesMut::from(bytes);
    let capacity = buf.capacity();
    loop {
        let before = buf.len();
        let result = decoder.decode(&mut buf);
        assert!(buf.capacity() <= capacity, "decoder grew the buffer");
        match result {
            Ok(None) => {
                assert_eq!(buf.len(), before, "incomplete input was consumed");
                break;
            }
            Ok(Some(pdu)) => {
                assert!(buf.len() < before);
                assert!(pdu.data.len() <= decoder.max_recv_data_segment_length as usize);
                let mut again = BytesMut::new();
                encoder.encode(&pdu, &mut again);
                let redecoded = decoder.decode(&mut again);
                assert_eq!(redecoded, Ok(Some(pdu)), "re-encoded PDU decodes differently");
                assert!(again.is_empty());
            }
            Err(e) if e.is_recoverable() => {
                assert!(buf.len() < before, "recoverable error consumed nothing");
                assert!(e.bhs().is_some());
            }
            Err(_) => {
                assert_eq!(buf.len(), before, "fatal error consumed bytes");
                break;
            }
        }
    }
});
