//! Fuzz target: LZ4 payload decompression (capped) and the sender-side compression rule.
//!
//! Invariants: no panic; decompressed output never exceeds `MAX_PACKET_LEN`; a successfully
//! decompressed packet compresses (or not) and decompresses back to itself; any payload
//! compresses to something that decompresses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::VERB_FLAG_COMPRESSED;
use ztrs::wire::compression::{
    MAX_PAYLOAD_LEN, compress_packet, decompress_packet, decompress_payload,
};
use ztrs::wire::packet::{HEADER_LEN, IDX_VERB, MAX_PACKET_LEN};

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; MAX_PACKET_LEN];
    if let Ok(n) = decompress_payload(data, &mut out) {
        assert!(n <= MAX_PAYLOAD_LEN);
    }

    // As a received packet with the compressed flag forced on.
    let mut scratch = Vec::new();
    if data.len() >= HEADER_LEN {
        let mut packet = data.to_vec();
        packet[IDX_VERB] |= VERB_FLAG_COMPRESSED;
        let mut plain = Vec::new();
        if decompress_packet(&packet, &mut plain).is_ok() {
            assert!(plain.len() <= MAX_PACKET_LEN);
            assert_eq!(plain[IDX_VERB] & VERB_FLAG_COMPRESSED, 0);
            let mut again = plain.clone();
            compress_packet(&mut again, &mut scratch);
            let mut back = Vec::new();
            decompress_packet(&again, &mut back).expect("our own output decompresses");
            assert_eq!(back, plain);
        }
    }

    // As a payload to send.
    if data.len() <= MAX_PAYLOAD_LEN {
        let mut packet = vec![0u8; HEADER_LEN];
        packet.extend_from_slice(data);
        let original = packet.clone();
        let compressed = compress_packet(&mut packet, &mut scratch);
        assert!(!compressed || packet.len() < original.len());
        let mut back = Vec::new();
        decompress_packet(&packet, &mut back).expect("our own output decompresses");
        assert_eq!(back, original);
    }
});
