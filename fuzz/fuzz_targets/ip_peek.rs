//! Fuzz target: the header peeks that classify packets without a full parse — the node's
//! control-frame test (`node::is_control_frame`, which frames get the transmit queue's
//! reserved room) and the user-space stack's SYN test (`netstack::bare_syn`, which packets
//! meet the listener admission).
//!
//! Input: one byte choosing the ethertype (ARP, IPv4, IPv6, other), then the packet.
//! Invariants: no panic; a bare SYN is always a control frame of its IP version; the
//! endpoints `bare_syn` reports are the packet's own bytes.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use ztrs::netstack::bare_syn;
use ztrs::node::is_control_frame;

const ETHERTYPES: [u16; 4] = [0x0806, 0x0800, 0x86dd, 0x88b5];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, packet)) = data.split_first() else {
        return;
    };
    let ethertype = ETHERTYPES[usize::from(choice) % ETHERTYPES.len()];
    let _ = is_control_frame(ethertype, packet);
    if let Some(syn) = bare_syn(packet) {
        let (own_ethertype, source_at, destination_at) = match syn.to.ip() {
            IpAddr::V4(_) => (0x0800, 12, 16),
            IpAddr::V6(_) => (0x86dd, 8, 24),
        };
        assert!(is_control_frame(own_ethertype, packet), "a SYN is control");
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let from = bytes(syn.from.ip());
        let to = bytes(syn.to.ip());
        assert_eq!(
            packet.get(source_at..source_at + from.len()),
            Some(&from[..])
        );
        assert_eq!(
            packet.get(destination_at..destination_at + to.len()),
            Some(&to[..])
        );
    }
});
