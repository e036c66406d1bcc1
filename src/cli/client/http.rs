//! A minimal blocking HTTP/1.1 client for the local control API: one request per
//! connection (`Connection: close`), the token in `X-ZT1-Auth`, and a response read with
//! hard bounds (header size, body size, time) so a confused or hostile listener on the port
//! cannot make the CLI hang or grow without limit.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// The reference CLI's limits: 16 MiB of response body and 60 s per request.
const MAX_BODY: u64 = 16 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds for the status line and headers (the API sends a handful of short ones).
const MAX_HEADER_LINE: u64 = 8 * 1024;
const MAX_HEADERS: usize = 64;

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    pub token: String,
}

/// An HTTP answer: the status code and the body as text (lossy UTF-8: the API sends JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

/// The request methods the CLI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl Endpoint {
    /// Sends one request and reads the whole answer. `Err` means no HTTP answer at all
    /// (connection refused, timeout, malformed response): the reference's status 0.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        json_body: Option<&str>,
    ) -> io::Result<Response> {
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ')
            || self.token.contains(['\r', '\n'])
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path or token contains spaces or control characters",
            ));
        }
        let address = SocketAddr::new(self.ip, self.port);
        let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {address}\r\nX-ZT1-Auth: {}\r\nConnection: close\r\n",
            method.as_str(),
            self.token
        );
        if let Some(body) = json_body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        if let Some(body) = json_body {
            stream.write_all(body.as_bytes())?;
        }
        stream.flush()?;
        read_response(BufReader::new(stream))
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed HTTP response: {what}"),
    )
}

/// Reads one line (CRLF or LF) of at most `MAX_HEADER_LINE` bytes, without the line end.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(malformed("header line too long or connection closed"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| malformed("header is not UTF-8"))
}

/// Parses a response: status line, headers, then a body framed by `Content-Length`,
/// chunked encoding, or the end of the connection.
pub(crate) fn read_response(mut reader: impl BufRead) -> io::Result<Response> {
    let status_line = read_line(&mut reader)?;
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => {
            code.parse::<u16>().map_err(|_| malformed("status code"))?
        }
        _ => return Err(malformed("status line")),
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut headers = 0usize;
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(malformed("too many headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed("header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse().map_err(|_| malformed("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else if let Some(length) = content_length {
        if length > MAX_BODY {
            return Err(malformed("body larger than 16 MiB"));
        }
        let mut body = Vec::new();
        reader.take(length).read_to_end(&mut body)?;
        if body.len() as u64 != length {
            return Err(malformed("body shorter than its content-length"));
        }
        body
    } else {
        read_capped(&mut reader, MAX_BODY)?
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Reads to the end of the stream, failing past `cap` bytes.
fn read_capped(reader: &mut impl Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut body)?;
    if body.len() as u64 > cap {
        return Err(malformed("body larger than 16 MiB"));
    }
    Ok(body)
}

/// Decodes a chunked body (trailers are read and ignored), bounded like any other body.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(reader)?;
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| malformed("chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut trailers = 0usize;
            while !read_line(reader)?.is_empty() {
                trailers += 1;
                if trailers > MAX_HEADERS {
                    return Err(malformed("too many trailers"));
                }
            }
            return Ok(body);
        }
        if (body.len() as u64).saturating_add(size) > MAX_BODY {
            return Err(malformed("body larger than 16 MiB"));
        }
        let before = body.len();
        reader.take(size).read_to_end(&mut body)?;
        if (body.len() - before) as u64 != size {
            return Err(malformed("truncated chunk"));
        }
        if !read_line(reader)?.is_empty() {
            return Err(malformed("chunk without its line end"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> io::Result<Response> {
        read_response(raw.as_bytes())
    }

    #[test]
    fn content_length_body() {
        let r = parse("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n{}\r\nextra").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "{}\r\n");
    }

    #[test]
    fn chunked_body() {
        let r = parse(
            "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            r,
            Response {
                status: 404,
                body: "abcde".into()
            }
        );
    }

    #[test]
    fn body_until_close() {
        let r = parse("HTTP/1.0 401 Unauthorized\n\n{\"error\":\"x\"}").unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.body, "{\"error\":\"x\"}");
    }

    #[test]
    fn malformed_answers_are_errors() {
        for raw in [
            "",
            "garbage\r\n\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(parse(raw).is_err(), "{raw:?}");
        }
        let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(10_000));
        assert!(parse(&long).is_err());
    }

    #[test]
    fn requests_refuse_header_injection() {
        let endpoint = Endpoint {
            ip: IpAddr::from([127, 0, 0, 1]),
            port: 9,
            token: "a\r\nb".into(),
        };
        let err = endpoint.request(Method::Get, "/status", None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
