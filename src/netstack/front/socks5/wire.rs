//! SOCKS5 wire formats (RFC 1928, RFC 1929): parsers for the messages a client sends and
//! encoders for the ones the server sends. Parsers take the bytes received so far and say
//! whether a message is complete (`Ok(Some((message, used)))`), needs more bytes
//! (`Ok(None)`) or is malformed; they never panic on any input.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::netstack::front::Target;

pub const VERSION: u8 = 5;
/// Version of the username/password subnegotiation (RFC 1929).
pub const USER_PASS_VERSION: u8 = 1;
pub const METHOD_NO_AUTH: u8 = 0x00;
pub const METHOD_USER_PASS: u8 = 0x02;
pub const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;

const CMD_CONNECT: u8 = 1;
const CMD_BIND: u8 = 2;
const CMD_UDP_ASSOCIATE: u8 = 3;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// Longest UDP request header: RSV(2) FRAG(1) ATYP(1) DST.ADDR(1 + 255) DST.PORT(2).
pub const MAX_UDP_HEADER: usize = 262;

/// The methods a client offers in its greeting (only the two we implement matter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Greeting {
    pub offers_no_auth: bool,
    pub offers_user_pass: bool,
}

/// An RFC 1929 username/password request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPass {
    pub username: Vec<u8>,
    pub password: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Connect,
    Bind,
    UdpAssociate,
    Unknown(u8),
}

/// A client's request: a command and its DST.ADDR / DST.PORT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
    pub target: Target,
}

/// The header of a datagram relayed through a UDP association.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub fragment: u8,
    pub target: Target,
    /// Where the payload starts in the datagram.
    pub header_len: usize,
}

/// REP values of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0x00,
    GeneralFailure = 0x01,
    NotAllowed = 0x02,
    NetworkUnreachable = 0x03,
    HostUnreachable = 0x04,
    ConnectionRefused = 0x05,
    TtlExpired = 0x06,
    CommandNotSupported = 0x07,
    AddressTypeNotSupported = 0x08,
}

impl Reply {
    /// The reply for a failed dial.
    pub fn for_dial_error(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Self::ConnectionRefused,
            io::ErrorKind::TimedOut => Self::TtlExpired,
            // NotFound: the dialer could not resolve the name.
            io::ErrorKind::HostUnreachable | io::ErrorKind::NotFound => Self::HostUnreachable,
            io::ErrorKind::NetworkUnreachable => Self::NetworkUnreachable,
            io::ErrorKind::PermissionDenied => Self::NotAllowed,
            _ => Self::GeneralFailure,
        }
    }
}

/// Why a client message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    BadVersion(u8),
    BadAddressType(u8),
    EmptyDomain,
    BadDomain,
    /// A UDP datagram shorter than its header.
    Truncated,
}

impl WireError {
    /// The reply a malformed request gets, where the protocol has one.
    pub fn reply(&self) -> Reply {
        match self {
            Self::BadAddressType(_) => Reply::AddressTypeNotSupported,
            _ => Reply::GeneralFailure,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadVersion(version) => write!(f, "unsupported version {version}"),
            Self::BadAddressType(atyp) => write!(f, "unsupported address type {atyp}"),
            Self::EmptyDomain => write!(f, "empty domain name"),
            Self::BadDomain => write!(f, "invalid domain name"),
            Self::Truncated => write!(f, "truncated datagram header"),
        }
    }
}

impl std::error::Error for WireError {}

pub type Parsed<T> = Result<Option<(T, usize)>, WireError>;

/// VER NMETHODS METHODS...
pub fn parse_greeting(buf: &[u8]) -> Parsed<Greeting> {
    let Some(&version) = buf.first() else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(WireError::BadVersion(version));
    }
    let Some(&count) = buf.get(1) else {
        return Ok(None);
    };
    let used = 2 + usize::from(count);
    let Some(methods) = buf.get(2..used) else {
        return Ok(None);
    };
    let greeting = Greeting {
        offers_no_auth: methods.contains(&METHOD_NO_AUTH),
        offers_user_pass: methods.contains(&METHOD_USER_PASS),
    };
    Ok(Some((greeting, used)))
}

/// VER ULEN UNAME PLEN PASSWD (RFC 1929).
pub fn parse_user_pass(buf: &[u8]) -> Parsed<UserPass> {
    let Some(&version) = buf.first() else {
        return Ok(None);
    };
    if version != USER_PASS_VERSION {
        return Err(WireError::BadVersion(version));
    }
    let Some((username, after_name)) = length_prefixed(buf, 1) else {
        return Ok(None);
    };
    let Some((password, used)) = length_prefixed(buf, after_name) else {
        return Ok(None);
    };
    let message = UserPass {
        username: username.to_vec(),
        password: password.to_vec(),
    };
    Ok(Some((message, used)))
}

/// VER CMD RSV ATYP DST.ADDR DST.PORT. RSV is ignored, as most clients and servers do.
pub fn parse_request(buf: &[u8]) -> Parsed<Request> {
    let Some(&version) = buf.first() else {
        return Ok(None);
    };
    if version != VERSION {
        return Err(WireError::BadVersion(version));
    }
    let Some(&command) = buf.get(1) else {
        return Ok(None);
    };
    let command = match command {
        CMD_CONNECT => Command::Connect,
        CMD_BIND => Command::Bind,
        CMD_UDP_ASSOCIATE => Command::UdpAssociate,
        other => Command::Unknown(other),
    };
    Ok(parse_address(buf, 3)?.map(|(target, used)| (Request { command, target }, used)))
}

/// RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA: the header of a client's UDP datagram.
pub fn parse_udp_header(datagram: &[u8]) -> Result<UdpHeader, WireError> {
    let Some(&fragment) = datagram.get(2) else {
        return Err(WireError::Truncated);
    };
    let (target, header_len) = parse_address(datagram, 3)?.ok_or(WireError::Truncated)?;
    Ok(UdpHeader {
        fragment,
        target,
        header_len,
    })
}

/// VER REP RSV ATYP BND.ADDR BND.PORT.
pub fn encode_reply(reply: Reply, bound: SocketAddr) -> Vec<u8> {
    let mut out = vec![VERSION, reply as u8, 0];
    encode_address(bound, &mut out);
    out
}

/// Appends RSV(2) FRAG(0) ATYP ADDR PORT for a datagram that came from `source`.
pub fn encode_udp_header(source: SocketAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0]);
    encode_address(source, out);
}

fn encode_address(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// ATYP DST.ADDR DST.PORT starting at `at`; returns the target and the offset past it.
fn parse_address(buf: &[u8], at: usize) -> Parsed<Target> {
    let Some(&atyp) = buf.get(at) else {
        return Ok(None);
    };
    let start = at + 1;
    let (ip, port_at) = match atyp {
        ATYP_IPV4 => {
            let Some(octets) = fixed::<4>(buf, start) else {
                return Ok(None);
            };
            (IpAddr::V4(Ipv4Addr::from(octets)), start + 4)
        }
        ATYP_IPV6 => {
            let Some(octets) = fixed::<16>(buf, start) else {
                return Ok(None);
            };
            (IpAddr::V6(Ipv6Addr::from(octets)), start + 16)
        }
        ATYP_DOMAIN => {
            let Some((name, port_at)) = length_prefixed(buf, start) else {
                return Ok(None);
            };
            let Some(port) = fixed::<2>(buf, port_at) else {
                return Ok(None);
            };
            if name.is_empty() {
                return Err(WireError::EmptyDomain);
            }
            let name = std::str::from_utf8(name).map_err(|_| WireError::BadDomain)?;
            let target = Target::from_host(name, u16::from_be_bytes(port))
                .map_err(|_| WireError::BadDomain)?;
            return Ok(Some((target, port_at + 2)));
        }
        other => return Err(WireError::BadAddressType(other)),
    };
    let Some(port) = fixed::<2>(buf, port_at) else {
        return Ok(None);
    };
    let target = Target::Addr(SocketAddr::new(ip, u16::from_be_bytes(port)));
    Ok(Some((target, port_at + 2)))
}

/// A length byte at `at` and that many bytes after it; returns them and the offset past.
fn length_prefixed(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = usize::from(*buf.get(at)?);
    let end = at + 1 + len;
    Some((buf.get(at + 1..end)?, end))
}

fn fixed<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at + N)?.try_into().ok()
}
