//! The [`Target`] a client asks a front end for, and the host, port and `host:port` parsing
//! shared by the SOCKS5, HTTP and forward-spec parsers, so that all three accept and refuse
//! the same things with the same messages.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Longest DNS name (RFC 1035), without a trailing dot.
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// What a client wants to reach: an address, or a name the dialer resolves itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl Target {
    /// A target from a host (IP literal, bracketed IPv6 literal or DNS name) and a port. IP
    /// literals become [`Target::Addr`] so that no resolver is ever asked about them.
    pub fn from_host(host: &str, port: u16) -> Result<Self, AddressError> {
        if host.is_empty() {
            return Err(AddressError::EmptyHost);
        }
        if let Some(inner) = host.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| AddressError::UnclosedBracket(host.to_owned()))?;
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| AddressError::BracketsNotIpv6(host.to_owned()))?;
            return Ok(Self::Addr(SocketAddr::new(IpAddr::V6(ip), port)));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self::Addr(SocketAddr::new(ip, port)));
        }
        if !is_valid_hostname(host) {
            return Err(AddressError::InvalidHost(host.to_owned()));
        }
        Ok(Self::Name(host.to_owned(), port))
    }

    pub fn port(&self) -> u16 {
        match self {
            Self::Addr(addr) => addr.port(),
            Self::Name(_, port) => *port,
        }
    }
}

impl fmt::Display for Target {
    /// `host:port`, `1.2.3.4:port` or `[v6]:port`: the form [`Target::from_str`] parses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::Name(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for Target {
    type Err = AddressError;

    /// Parses `host:port`, with IPv6 literals in brackets (`[fd00::1]:80`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, port) = split_host_port(text)?;
        Target::from_host(host, parse_port(port)?)
    }
}

/// Why a host, port or `host:port` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressError {
    EmptyHost,
    InvalidHost(String),
    MissingPort(String),
    InvalidPort(String),
    PortZero,
    PortOutOfRange(String),
    UnclosedBracket(String),
    BracketsNotIpv6(String),
    UnbracketedIpv6(String),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyHost => write!(f, "empty host"),
            Self::InvalidHost(host) => write!(
                f,
                "invalid host {host:?}: expected an IP address or a DNS name \
                 (letters, digits, '-', '_' and '.')"
            ),
            Self::MissingPort(text) => write!(f, "missing port in {text:?}"),
            Self::InvalidPort(port) => write!(f, "{port:?} is not a port number"),
            Self::PortZero => write!(f, "port 0 is not allowed (expected 1-65535)"),
            Self::PortOutOfRange(port) => write!(f, "port {port} is out of range 1-65535"),
            Self::UnclosedBracket(text) => write!(f, "unclosed '[' in {text:?}"),
            Self::BracketsNotIpv6(text) => {
                write!(f, "{text:?}: only IPv6 addresses go in brackets")
            }
            Self::UnbracketedIpv6(text) => {
                write!(
                    f,
                    "{text:?}: IPv6 addresses must be in brackets, as in [fd00::1]"
                )
            }
        }
    }
}

impl std::error::Error for AddressError {}

/// Parses a decimal port in 1..=65535, naming the problem otherwise.
pub(crate) fn parse_port(text: &str) -> Result<u16, AddressError> {
    if text.is_empty() {
        return Err(AddressError::MissingPort(text.to_owned()));
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(AddressError::InvalidPort(text.to_owned()));
    }
    let trimmed = text.trim_start_matches('0');
    if trimmed.is_empty() {
        return Err(AddressError::PortZero);
    }
    // Longer than "65535" cannot fit, whatever the digits; checking the length first keeps
    // the parse below from overflowing.
    if trimmed.len() > 5 {
        return Err(AddressError::PortOutOfRange(text.to_owned()));
    }
    let value: u32 = trimmed
        .parse()
        .map_err(|_| AddressError::InvalidPort(text.to_owned()))?;
    u16::try_from(value).map_err(|_| AddressError::PortOutOfRange(text.to_owned()))
}

/// Splits `host:port` / `[v6]:port` into the host (brackets kept, so that
/// [`Target::from_host`] knows it was bracketed) and the port text.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, &str), AddressError> {
    if text.starts_with('[') {
        let close = text
            .find(']')
            .ok_or_else(|| AddressError::UnclosedBracket(text.to_owned()))?;
        let (host, rest) = text.split_at(close + 1);
        let port = rest
            .strip_prefix(':')
            .ok_or_else(|| AddressError::MissingPort(text.to_owned()))?;
        return Ok((host, port));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| AddressError::MissingPort(text.to_owned()))?;
    if host.contains(':') {
        return Err(AddressError::UnbracketedIpv6(text.to_owned()));
    }
    Ok((host, port))
}

/// A DNS name as clients send it: labels of letters, digits, '-' and '_' separated by dots,
/// an optional trailing dot. Anything else (spaces, control bytes, '@', '/') is refused
/// before it reaches a resolver or a generated header.
pub(crate) fn is_valid_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    })
}
