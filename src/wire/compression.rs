//! LZ4 payload compression (protocol 4): raw LZ4 blocks over `packet[28..]`, flagged by bit 7
//! of the verb byte. Decompression output is capped at `MAX_PACKET_LEN - 28` bytes (H2.9) and
//! always goes into caller-owned buffers; the sender rule (only payloads over 64 bytes, kept
//! only if strictly smaller) lives here too.

use lz4_flex::block;

use super::packet::{HEADER_LEN, IDX_VERB, MAX_PACKET_LEN};
use super::verb::VERB_FLAG_COMPRESSED;
use super::{Error, Result};

/// Largest payload (after the verb byte) of an assembled packet, compressed or not.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - HEADER_LEN;
/// Senders only try to compress payloads longer than this.
pub const MIN_COMPRESSIBLE_PAYLOAD: usize = 64;
/// Scratch space [`compress_payload`] may need for a payload of [`MAX_PAYLOAD_LEN`].
pub const MAX_COMPRESS_SCRATCH: usize = block::get_maximum_output_size(MAX_PAYLOAD_LEN);

/// Decompresses one raw LZ4 block into `out`, writing at most `min(out.len(),
/// MAX_PAYLOAD_LEN)` bytes; returns the decompressed length. Input that would expand past
/// the cap, or is not valid LZ4, is rejected.
pub fn decompress_payload(compressed: &[u8], out: &mut [u8]) -> Result<usize> {
    if compressed.len() > MAX_PAYLOAD_LEN {
        return Err(Error::TooLarge("compressed payload"));
    }
    let cap = out.len().min(MAX_PAYLOAD_LEN);
    let out = out.get_mut(..cap).unwrap_or_default();
    block::decompress_into(compressed, out).map_err(|e| match e {
        block::DecompressError::OutputTooSmall { .. } => Error::TooLarge("decompressed payload"),
        _ => Error::Malformed("lz4 payload"),
    })
}

/// Compresses `payload` into `out` following the sender rule: returns the compressed length
/// only if the payload is longer than 64 bytes and the result is strictly smaller; `None`
/// means "send it uncompressed". `out` should hold `block::get_maximum_output_size` bytes
/// ([`MAX_COMPRESS_SCRATCH`] covers every packet); if it is smaller, compression that does
/// not fit is simply not used.
pub fn compress_payload(payload: &[u8], out: &mut [u8]) -> Option<usize> {
    if payload.len() <= MIN_COMPRESSIBLE_PAYLOAD || payload.len() > MAX_PAYLOAD_LEN {
        return None;
    }
    match block::compress_into(payload, out) {
        Ok(n) if n < payload.len() => Some(n),
        _ => None,
    }
}

/// Receiver side: given a dearmored packet, writes to `out` the same packet with its payload
/// decompressed and the compressed flag cleared. A packet without the flag is copied as is.
/// `out` is reused: it is cleared and grows to at most `MAX_PACKET_LEN` bytes.
pub fn decompress_packet(packet: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if packet.len() < HEADER_LEN {
        return Err(Error::Truncated("packet header"));
    }
    if packet.len() > MAX_PACKET_LEN {
        return Err(Error::TooLarge("packet"));
    }
    out.clear();
    let (header, payload) = packet.split_at(HEADER_LEN);
    let verb = header.get(IDX_VERB).copied().unwrap_or_default();
    out.extend_from_slice(header);
    if verb & VERB_FLAG_COMPRESSED == 0 {
        out.extend_from_slice(payload);
        return Ok(());
    }
    if let Some(v) = out.get_mut(IDX_VERB) {
        *v = verb & !VERB_FLAG_COMPRESSED;
    }
    out.resize(MAX_PACKET_LEN, 0);
    let n = match out.get_mut(HEADER_LEN..) {
        Some(dst) => decompress_payload(payload, dst),
        None => Err(Error::Truncated("packet header")),
    };
    match n {
        Ok(n) => {
            out.truncate(HEADER_LEN + n);
            Ok(())
        }
        Err(e) => {
            out.clear();
            Err(e)
        }
    }
}

/// Sender side, before armor: compresses `packet[28..]` in place if the sender rule says so,
/// setting the compressed flag, and otherwise clears the flag. `scratch` is reused (grows to
/// at most [`MAX_COMPRESS_SCRATCH`]). Returns whether the payload is now compressed.
pub fn compress_packet(packet: &mut Vec<u8>, scratch: &mut Vec<u8>) -> bool {
    let Some(payload) = packet.get(HEADER_LEN..) else {
        return false;
    };
    scratch.clear();
    scratch.resize(block::get_maximum_output_size(payload.len()), 0);
    let compressed = compress_payload(payload, scratch);
    if let Some(n) = compressed {
        packet.truncate(HEADER_LEN);
        packet.extend_from_slice(scratch.get(..n).unwrap_or_default());
    }
    if let Some(v) = packet.get_mut(IDX_VERB) {
        if compressed.is_some() {
            *v |= VERB_FLAG_COMPRESSED;
        } else {
            *v &= !VERB_FLAG_COMPRESSED;
        }
    }
    compressed.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet_with_payload(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[IDX_VERB] = 0x09;
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn sender_rule() {
        let mut scratch = Vec::new();
        let mut short = packet_with_payload(&[0u8; 64]);
        short[IDX_VERB] |= VERB_FLAG_COMPRESSED;
        assert!(!compress_packet(&mut short, &mut scratch));
        assert_eq!(short[IDX_VERB], 0x09);
        assert_eq!(short.len(), HEADER_LEN + 64);

        let mut long = packet_with_payload(&[7u8; 65]);
        let original = long.clone();
        assert!(compress_packet(&mut long, &mut scratch));
        assert_eq!(long[IDX_VERB], 0x89);
        assert!(long.len() < original.len());
        let mut back = Vec::new();
        decompress_packet(&long, &mut back).unwrap();
        assert_eq!(back, original);

        // Incompressible data is left alone.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..500)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let mut p = packet_with_payload(&noise);
        assert!(!compress_packet(&mut p, &mut scratch));
        assert_eq!(&p[HEADER_LEN..], &noise[..]);
    }

    #[test]
    fn decompression_is_capped() {
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        let compressed = block::compress(&big);
        let mut out = vec![0u8; MAX_PACKET_LEN * 2];
        assert_eq!(
            decompress_payload(&compressed, &mut out),
            Err(Error::TooLarge("decompressed payload"))
        );
        let mut p = packet_with_payload(&compressed);
        p[IDX_VERB] |= VERB_FLAG_COMPRESSED;
        let mut v = Vec::new();
        assert!(decompress_packet(&p, &mut v).is_err());
        assert!(v.is_empty());
        let exact = block::compress(&big[..MAX_PAYLOAD_LEN]);
        assert_eq!(decompress_payload(&exact, &mut out), Ok(MAX_PAYLOAD_LEN));
    }

    #[test]
    fn garbage_and_plain_packets() {
        let mut out = Vec::new();
        let mut p = packet_with_payload(&[0xf0, 1, 2]);
        p[IDX_VERB] |= VERB_FLAG_COMPRESSED;
        assert_eq!(
            decompress_packet(&p, &mut out),
            Err(Error::Malformed("lz4 payload"))
        );
        let plain = packet_with_payload(b"hello");
        decompress_packet(&plain, &mut out).unwrap();
        assert_eq!(out, plain);
        assert!(decompress_packet(&plain[..27], &mut out).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_blocks_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = vec![0u8; MAX_PACKET_LEN];
            if let Ok(n) = decompress_payload(&data, &mut out) {
                prop_assert!(n <= MAX_PAYLOAD_LEN);
            }
            let mut v = Vec::new();
            let _ = decompress_packet(&data, &mut v);
            prop_assert!(v.len() <= MAX_PACKET_LEN);
        }

        #[test]
        fn compress_round_trips(
            payload in proptest::collection::vec(0u8..4, 0..MAX_PAYLOAD_LEN),
            verb in 0u8..32,
        ) {
            let mut p = packet_with_payload(&payload);
            p[IDX_VERB] = verb;
            let original = p.clone();
            let mut scratch = Vec::new();
            let compressed = compress_packet(&mut p, &mut scratch);
            prop_assert_eq!(compressed, p[IDX_VERB] & VERB_FLAG_COMPRESSED != 0);
            prop_assert!(p.len() <= original.len());
            let mut back = Vec::new();
            decompress_packet(&p, &mut back).unwrap();
            prop_assert_eq!(back, original);
        }
    }
}
