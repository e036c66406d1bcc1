//! Unit tests of the SOCKS5 wire formats: greeting, username/password, requests with each
//! address type, replies and the UDP header, complete, truncated and malformed.

use std::net::SocketAddr;

use super::Target;
use super::socks5::wire::{self, Command, Greeting, Reply, Request, UserPass, WireError};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Every strict prefix of a complete message asks for more bytes.
fn assert_prefixes_incomplete<T: std::fmt::Debug>(
    message: &[u8],
    parse: fn(&[u8]) -> wire::Parsed<T>,
) {
    for len in 0..message.len() {
        assert!(
            matches!(parse(&message[..len]), Ok(None)),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn greeting_lists_the_offered_methods() {
    let message = [5, 3, 0x00, 0x01, 0x02, 0xAA];
    let expected = Greeting {
        offers_no_auth: true,
        offers_user_pass: true,
    };
    assert_eq!(wire::parse_greeting(&message), Ok(Some((expected, 5))));
    assert_eq!(
        wire::parse_greeting(&[5, 1, 0x01]),
        Ok(Some((Greeting::default(), 3)))
    );
    assert_eq!(
        wire::parse_greeting(&[5, 0]),
        Ok(Some((Greeting::default(), 2)))
    );
    assert_prefixes_incomplete(&message[..5], wire::parse_greeting);
    assert_eq!(
        wire::parse_greeting(&[4, 1, 0]),
        Err(WireError::BadVersion(4))
    );
}

#[test]
fn username_password_request() {
    let message = [1, 5, b'a', b'l', b'i', b'c', b'e', 3, b'p', b'w', b'd'];
    let expected = UserPass {
        username: b"alice".to_vec(),
        password: b"pwd".to_vec(),
    };
    assert_eq!(wire::parse_user_pass(&message), Ok(Some((expected, 11))));
    assert_prefixes_incomplete(&message, wire::parse_user_pass);
    assert_eq!(
        wire::parse_user_pass(&[5, 0, 0]),
        Err(WireError::BadVersion(5))
    );
}

#[test]
fn requests_with_each_address_type() {
    let ipv4 = [5, 1, 0, 1, 10, 1, 2, 3, 0x1F, 0x90];
    let expected = Request {
        command: Command::Connect,
        target: Target::Addr(addr("10.1.2.3:8080")),
    };
    assert_eq!(wire::parse_request(&ipv4), Ok(Some((expected, 10))));
    assert_prefixes_incomplete(&ipv4, wire::parse_request);

    let mut ipv6 = vec![5, 3, 0, 4];
    ipv6.extend_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    ipv6.extend_from_slice(&53u16.to_be_bytes());
    let expected = Request {
        command: Command::UdpAssociate,
        target: Target::Addr(addr("[fd00::1]:53")),
    };
    assert_eq!(wire::parse_request(&ipv6), Ok(Some((expected, 22))));
    assert_prefixes_incomplete(&ipv6, wire::parse_request);

    let mut name = vec![5, 2, 0, 3, 11];
    name.extend_from_slice(b"example.com");
    name.extend_from_slice(&443u16.to_be_bytes());
    let expected = Request {
        command: Command::Bind,
        target: Target::Name("example.com".into(), 443),
    };
    assert_eq!(wire::parse_request(&name), Ok(Some((expected, 18))));
    assert_prefixes_incomplete(&name, wire::parse_request);
}

#[test]
fn a_name_that_is_an_ip_literal_becomes_an_address() {
    let mut message = vec![5, 1, 0, 3, 9];
    message.extend_from_slice(b"127.0.0.1");
    message.extend_from_slice(&80u16.to_be_bytes());
    let (request, _) = wire::parse_request(&message).unwrap().unwrap();
    assert_eq!(request.target, Target::Addr(addr("127.0.0.1:80")));
}

#[test]
fn malformed_requests_name_their_reply() {
    let unknown_command = [5, 9, 0, 1, 1, 2, 3, 4, 0, 80];
    let (request, _) = wire::parse_request(&unknown_command).unwrap().unwrap();
    assert_eq!(request.command, Command::Unknown(9));

    let bad_type = wire::parse_request(&[5, 1, 0, 7]).unwrap_err();
    assert_eq!(bad_type, WireError::BadAddressType(7));
    assert_eq!(bad_type.reply(), Reply::AddressTypeNotSupported);
    assert_eq!(
        wire::parse_request(&[5, 1, 0, 3, 0, 0, 80]),
        Err(WireError::EmptyDomain)
    );
    let spaces = [5, 1, 0, 3, 3, b'a', b' ', b'b', 0, 80];
    assert_eq!(wire::parse_request(&spaces), Err(WireError::BadDomain));
    assert_eq!(
        wire::parse_request(&[5, 1, 0, 3, 1, 0xFF, 0, 80]),
        Err(WireError::BadDomain)
    );
    assert_eq!(wire::parse_request(&[4, 1]), Err(WireError::BadVersion(4)));
    assert_eq!(WireError::BadDomain.reply(), Reply::GeneralFailure);
}

#[test]
fn replies_encode_both_families() {
    assert_eq!(
        wire::encode_reply(Reply::Succeeded, addr("192.0.2.1:1080")),
        [5, 0, 0, 1, 192, 0, 2, 1, 0x04, 0x38]
    );
    let v6 = wire::encode_reply(Reply::HostUnreachable, addr("[2001:db8::2]:7"));
    assert_eq!(v6.len(), 4 + 16 + 2);
    assert_eq!(&v6[..4], &[5, 4, 0, 4]);
    // A v4-mapped address is reported as the IPv4 address it is.
    let mapped = wire::encode_reply(Reply::Succeeded, addr("[::ffff:10.0.0.1]:9"));
    assert_eq!(mapped, [5, 0, 0, 1, 10, 0, 0, 1, 0, 9]);
}

#[test]
fn dial_errors_map_to_reply_codes() {
    use std::io::{Error, ErrorKind};
    let reply = |kind| Reply::for_dial_error(&Error::from(kind));
    assert_eq!(
        reply(ErrorKind::ConnectionRefused),
        Reply::ConnectionRefused
    );
    assert_eq!(reply(ErrorKind::TimedOut), Reply::TtlExpired);
    assert_eq!(reply(ErrorKind::HostUnreachable), Reply::HostUnreachable);
    assert_eq!(
        reply(ErrorKind::NetworkUnreachable),
        Reply::NetworkUnreachable
    );
    assert_eq!(reply(ErrorKind::Other), Reply::GeneralFailure);
}

#[test]
fn udp_header_round_trip_and_truncation() {
    let mut datagram = Vec::new();
    wire::encode_udp_header(addr("10.0.0.7:5353"), &mut datagram);
    let header_len = datagram.len();
    datagram.extend_from_slice(b"payload");
    let header = wire::parse_udp_header(&datagram).unwrap();
    assert_eq!(header.fragment, 0);
    assert_eq!(header.target, Target::Addr(addr("10.0.0.7:5353")));
    assert_eq!(header.header_len, header_len);
    assert_eq!(&datagram[header.header_len..], b"payload");

    let mut by_name = vec![0, 0, 2, 3, 4];
    by_name.extend_from_slice(b"host");
    by_name.extend_from_slice(&[0, 53]);
    let header = wire::parse_udp_header(&by_name).unwrap();
    assert_eq!((header.fragment, header.header_len), (2, by_name.len()));
    assert_eq!(header.target, Target::Name("host".into(), 53));

    for len in 0..header_len {
        assert_eq!(
            wire::parse_udp_header(&datagram[..len]),
            Err(WireError::Truncated)
        );
    }
    assert!(wire::MAX_UDP_HEADER >= header_len);
}
