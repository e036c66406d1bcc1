//! Fuzz target: the InetAddress codec.
//!
//! Invariants: no panic; the consumed length never exceeds the input; an IP re-emits to
//! exactly the bytes it was parsed from and reparses to itself; reserved types re-emit as
//! the one-byte nil address (we never originate them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::InetAddress;
use ztrs::wire::cursor::Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok((addr, used)) = InetAddress::parse(data) {
        assert!(used <= data.len());
        let mut out = Vec::new();
        addr.emit(&mut out);
        assert_eq!(out.len(), addr.emitted_len());
        match addr {
            InetAddress::Other(_) => assert_eq!(out, [0]),
            _ => {
                assert_eq!(out[..], data[..used]);
                assert_eq!(InetAddress::parse(&out), Ok((addr, used)));
            }
        }
        if let Some(sa) = addr.socket_addr() {
            let canonical = InetAddress::from_socket_addr(sa);
            assert!(canonical.socket_addr().is_some());
        }
    }
    // A sequence of addresses, as in a HELLO or a world, never loops or panics.
    let mut r = Reader::new(data);
    while !r.is_empty() {
        if InetAddress::read(&mut r).is_err() {
            break;
        }
    }
});
