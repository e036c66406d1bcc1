//! Fuzz target: datagram classification, fragment parsing, the bounded reassembler and the
//! sender-side splitter.
//!
//! Invariants: no panic; the reassembler never holds more partial packets or buffer capacity
//! than its configuration allows; whatever it returns is a valid packet of at most
//! `MAX_PACKET_LEN` bytes; any packet split at any valid MTU reassembles to itself with the
//! pieces in any order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::fragment::{Fragment, FragmentHeader, split};
use ztrs::wire::packet::{
    Datagram, FLAG_FRAGMENTED, HEADER_LEN, IDX_FLAGS, MAX_PACKET_LEN, Packet, classify,
};
use ztrs::wire::reassembly::{Reassembler, ReassemblerConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let max_in_flight = usize::from(config % 8) + 1;
    let mut r = Reassembler::new(ReassemblerConfig {
        max_in_flight,
        timeout_ms: 500,
        ..ReassemblerConfig::default()
    });

    // 1. A stream of datagrams: [control, len/8, bytes...]*.
    let mut now = 0u64;
    while let [control, len, tail @ ..] = rest {
        let len = (usize::from(*len) * 8).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        now += u64::from(control & 0x0f) * 60;
        let mut datagram = datagram.to_vec();
        if control & 0x10 != 0 && datagram.len() > 16 {
            // Steer towards plausible fragments of a few packet ids.
            datagram[13] = 0xff;
            datagram[..7].fill(0);
        }
        if let Ok(f) = Fragment::new_checked(&datagram[..]) {
            let h = FragmentHeader::parse(&datagram).expect("view implies header");
            assert_eq!((h.total, h.number), (f.total(), f.number()));
            assert_eq!(FragmentHeader::parse(&h.to_bytes()), Ok(h));
        }
        let out = match classify(&datagram) {
            Datagram::Fragment => r.accept_fragment(now, &datagram),
            Datagram::Packet => r.accept_head(now, &datagram),
            Datagram::Beacon | Datagram::Runt => None,
        };
        if let Some(out) = out {
            assert!(out.len() <= MAX_PACKET_LEN);
            assert!(Packet::new_checked(&*out).is_ok());
        }
        if control & 0x20 != 0 {
            r.expire(now);
        }
        assert!(r.in_flight() <= max_in_flight);
        assert!(r.buffered_capacity() <= (max_in_flight + 1) * MAX_PACKET_LEN);
    }

    // 2. Split the whole input as a packet and reassemble it backwards.
    if data.len() >= HEADER_LEN && data.len() <= MAX_PACKET_LEN && data[13] != 0xff {
        let mut packet = data.to_vec();
        packet[IDX_FLAGS] |= FLAG_FRAGMENTED;
        let mtu = HEADER_LEN + usize::from(config) * 6;
        if let Ok(s) = split(&packet, mtu) {
            let mut datagrams = vec![s.head.to_vec()];
            for piece in s.fragments {
                let mut d = Vec::new();
                piece.emit(&mut d);
                assert!(d.len() <= mtu);
                datagrams.push(d);
            }
            let mut r = Reassembler::default();
            let mut got = None;
            for (i, d) in datagrams.iter().enumerate().rev() {
                let out = if i == 0 {
                    r.accept_head(0, d)
                } else {
                    r.accept_fragment(0, d)
                };
                if let Some(out) = out {
                    got = Some(out.to_vec());
                }
            }
            if datagrams.len() > 1 {
                assert_eq!(got.as_deref(), Some(&packet[..]));
            }
        }
    }
});
