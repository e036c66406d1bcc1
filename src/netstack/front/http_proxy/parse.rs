//! Parsing for the HTTP proxy: the request head (request line and header fields, RFC 9112),
//! what the request asks the proxy to do (CONNECT or an absolute-form request), the
//! origin-form head forwarded to the origin, and Basic `Proxy-Authorization` credentials.
//! Nothing here panics on any input.

use std::fmt;

use crate::netstack::front::Target;
use crate::netstack::front::address::{self, AddressError};

/// Largest request head accepted (431 beyond).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const DEFAULT_HTTP_PORT: u16 = 80;

/// Header fields that concern only the hop to the proxy and are not forwarded.
const HOP_BY_HOP: [&str; 4] = [
    "proxy-authorization",
    "proxy-connection",
    "connection",
    "keep-alive",
];
/// Header fields that frame the body we relay untouched: never dropped, even if a
/// `Connection` field lists them.
const BODY_FRAMING: [&str; 2] = ["content-length", "transfer-encoding"];

/// A request line and its header fields, borrowed from the head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
}

impl RequestHead<'_> {
    /// The first header field of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

/// What a request asks the proxy to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `CONNECT host:port`: a tunnel.
    Connect { target: Target },
    /// `METHOD http://authority/path`: one request forwarded in origin form.
    Forward {
        target: Target,
        /// `host[:port]` as the client wrote it, for the `Host` field.
        authority: String,
        /// Path and query (`/` when the URI had none), without any fragment.
        path: String,
    },
}

/// Why a request head was refused; [`HeadError::status`] is the response status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    NotUtf8,
    MalformedRequestLine,
    UnsupportedVersion,
    MalformedHeader,
    /// A header line continued on the next (obsolete line folding).
    ObsoleteFolding,
    HttpsAbsoluteForm,
    UnsupportedScheme,
    UserInfoInUri,
    MissingHost,
    BadTarget(AddressError),
    /// Origin-form or asterisk-form: a request for a server, not for a proxy.
    NotAProxyRequest,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            Self::UnsupportedVersion => 505,
            Self::NotAProxyRequest => 405,
            _ => 400,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => write!(f, "request head is not UTF-8"),
            Self::MalformedRequestLine => write!(f, "malformed request line"),
            Self::UnsupportedVersion => write!(f, "unsupported HTTP version"),
            Self::MalformedHeader => write!(f, "malformed header field"),
            Self::ObsoleteFolding => write!(f, "obsolete header line folding"),
            Self::HttpsAbsoluteForm => write!(f, "https:// URIs need CONNECT"),
            Self::UnsupportedScheme => write!(f, "unsupported URI scheme"),
            Self::UserInfoInUri => write!(f, "user information in the URI"),
            Self::MissingHost => write!(f, "missing host"),
            Self::BadTarget(error) => write!(f, "bad target: {error}"),
            Self::NotAProxyRequest => write!(f, "not a proxy request (origin or asterisk form)"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Where the head ends (just past its empty line), scanning from `from`: a caller that
/// scanned a shorter prefix before passes where it stopped, minus 3, so bytes are not
/// rescanned on every read. Lines may end in CRLF or a bare LF.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(offset) = buf.get(at..)?.iter().position(|&byte| byte == b'\n') {
        let newline = at + offset;
        match (buf.get(newline + 1), buf.get(newline + 2)) {
            (Some(b'\n'), _) => return Some(newline + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(newline + 3),
            _ => at = newline + 1,
        }
    }
    None
}

/// Parses a complete head (as delimited by [`find_head_end`]).
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead<'_>, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::NotUtf8)?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().ok_or(HeadError::MalformedRequestLine)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::MalformedRequestLine);
    };
    if !is_token(method) || target.is_empty() || target.contains(is_control) {
        return Err(HeadError::MalformedRequestLine);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(if version.starts_with("HTTP/") {
            HeadError::UnsupportedVersion
        } else {
            HeadError::MalformedRequestLine
        });
    }
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err(HeadError::ObsoleteFolding);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::MalformedHeader)?;
        let value = value.trim_matches([' ', '\t']);
        if !is_token(name) || value.contains(|c: char| is_control(c) && c != '\t') {
            return Err(HeadError::MalformedHeader);
        }
        headers.push((name, value));
    }
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
    })
}

/// What the request asks of the proxy.
pub fn classify(head: &RequestHead<'_>) -> Result<ProxyRequest, HeadError> {
    if head.method == "CONNECT" {
        let (host, port) = address::split_host_port(head.target).map_err(HeadError::BadTarget)?;
        let port = address::parse_port(port).map_err(HeadError::BadTarget)?;
        let target = Target::from_host(host, port).map_err(HeadError::BadTarget)?;
        return Ok(ProxyRequest::Connect { target });
    }
    if head.target.starts_with('/') || head.target == "*" {
        return Err(HeadError::NotAProxyRequest);
    }
    let Some((scheme, rest)) = head.target.split_once("://") else {
        return Err(HeadError::MalformedRequestLine);
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(HeadError::HttpsAbsoluteForm);
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(HeadError::UnsupportedScheme);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err(HeadError::UserInfoInUri);
    }
    let target = authority_target(authority)?;
    let path = path.split('#').next().unwrap_or_default();
    let path = match path.chars().next() {
        Some('/') => path.to_owned(),
        _ => format!("/{path}"),
    };
    Ok(ProxyRequest::Forward {
        target,
        authority: authority.to_owned(),
        path,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, the port defaulting to 80.
fn authority_target(authority: &str) -> Result<Target, HeadError> {
    let has_port = match authority.rfind(']') {
        Some(close) => authority
            .get(close + 1..)
            .is_some_and(|rest| rest.starts_with(':')),
        None => authority.contains(':'),
    };
    let (host, port) = if has_port {
        let (host, port) = address::split_host_port(authority).map_err(HeadError::BadTarget)?;
        (
            host,
            address::parse_port(port).map_err(HeadError::BadTarget)?,
        )
    } else {
        (authority, DEFAULT_HTTP_PORT)
    };
    if host.is_empty() {
        return Err(HeadError::MissingHost);
    }
    Target::from_host(host, port).map_err(HeadError::BadTarget)
}

/// The head sent to the origin: origin-form request line, `Host` from the URI (RFC 9112
/// §3.2.2: a proxy regenerates it), the client's fields minus hop-by-hop ones, and
/// `Connection: close` (one request per connection).
pub fn origin_head(head: &RequestHead<'_>, authority: &str, path: &str) -> Vec<u8> {
    let listed_by_connection: Vec<&str> = head
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .collect();
    let dropped = |name: &str| {
        name.eq_ignore_ascii_case("host")
            || HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
            || (listed_by_connection
                .iter()
                .any(|listed| name.eq_ignore_ascii_case(listed))
                && !BODY_FRAMING
                    .iter()
                    .any(|framing| name.eq_ignore_ascii_case(framing)))
    };
    let mut out = format!(
        "{} {path} {}\r\nHost: {authority}\r\n",
        head.method, head.version
    );
    for (name, value) in head.headers.iter().filter(|(name, _)| !dropped(name)) {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// The username and password of a `Basic` credentials value.
pub fn basic_credentials(value: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(token.trim())?;
    let colon = decoded.iter().position(|&byte| byte == b':')?;
    let (user, pass) = decoded.split_at(colon);
    Some((user.to_vec(), pass.get(1..)?.to_vec()))
}

/// Standard base64 (RFC 4648 §4), padding optional.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for byte in body.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(sextet);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push(((bits >> bit_count) & 0xFF) as u8);
        }
    }
    Some(out)
}

/// An RFC 9110 token (method, field name).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

fn is_control(c: char) -> bool {
    c.is_ascii_control()
}
