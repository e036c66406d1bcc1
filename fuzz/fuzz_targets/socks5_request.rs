//! Fuzz target: the SOCKS5 wire parsers (greeting, username/password, request, UDP header).
//!
//! Invariants: no panic; a complete message never claims more bytes than it was given and
//! parses identically from exactly those bytes (so trailing pipelined data cannot change
//! it); a UDP header ends inside the datagram, and an address target re-encodes to a header
//! that parses back to it (IPv4-mapped addresses as IPv4).
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use ztrs::netstack::front::Target;
use ztrs::netstack::front::socks5::wire;

fn check_prefix_stable<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    parse: fn(&[u8]) -> wire::Parsed<T>,
) {
    if let Ok(Some((message, used))) = parse(data) {
        assert!(used <= data.len());
        assert_eq!(parse(&data[..used]), Ok(Some((message, used))));
    }
}

fuzz_target!(|data: &[u8]| {
    check_prefix_stable(data, wire::parse_greeting);
    check_prefix_stable(data, wire::parse_user_pass);
    check_prefix_stable(data, wire::parse_request);
    if let Ok(header) = wire::parse_udp_header(data) {
        assert!(header.header_len <= data.len());
        assert!(header.header_len <= wire::MAX_UDP_HEADER);
        if let Target::Addr(addr) = header.target {
            let mut encoded = Vec::new();
            wire::encode_udp_header(addr, &mut encoded);
            let reparsed = wire::parse_udp_header(&encoded).expect("own header parses");
            assert_eq!(reparsed.header_len, encoded.len());
            // IPv4-mapped IPv6 addresses are sent as the IPv4 addresses they are.
            let canonical = SocketAddr::new(addr.ip().to_canonical(), addr.port());
            assert_eq!(reparsed.target, Target::Addr(canonical));
        }
    }
});
