//! The HTTP proxy: `CONNECT host:port` tunnels and absolute-form requests
//! (`GET http://host/path`, any method) forwarded in origin form, one request per
//! connection, optionally behind Basic `Proxy-Authorization`. Request parsing lives in
//! [`parse`]; this file owns the connection loop and the responses.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::buffer::{HandshakeBuffer, ReadError};
use super::{
    Dialer, FrontCounters, FrontLimits, Target, accept, add, bump, credentials_match, relay,
};
use parse::{HeadError, ProxyRequest, RequestHead};

pub mod parse;

const CONNECT_ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
/// Bounds of the read-and-discard after an error response (see [`respond`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, Default)]
pub struct HttpProxyConfig {
    /// Username and password required in `Proxy-Authorization: Basic`; `None` serves
    /// without authentication.
    pub auth: Option<(String, String)>,
    pub limits: FrontLimits,
}

/// Serves the HTTP proxy on `listener` until it fails fatally (returning that error) or this
/// future is dropped, which also ends every connection it serves.
pub async fn serve_http_proxy<D: Dialer>(
    listener: TcpListener,
    dialer: Arc<D>,
    config: HttpProxyConfig,
    counters: Arc<FrontCounters>,
) -> io::Result<()> {
    let config = Arc::new(config);
    accept::serve_connections(listener, &config.limits, &counters, |stream, _peer| {
        let dialer = Arc::clone(&dialer);
        let config = Arc::clone(&config);
        let counters = Arc::clone(&counters);
        async move { serve_connection(stream, &*dialer, &config, &counters).await }
    })
    .await
}

async fn serve_connection<D: Dialer>(
    mut client: TcpStream,
    dialer: &D,
    config: &HttpProxyConfig,
    counters: &FrontCounters,
) {
    let mut buffer = HandshakeBuffer::new(parse::MAX_HEAD_BYTES);
    let head = match timeout(
        config.limits.handshake_timeout,
        read_head(&mut client, &mut buffer),
    )
    .await
    {
        Ok(Ok(head)) => head,
        Ok(Err(ReadError::TooLarge)) => {
            bump(&counters.bad_requests);
            respond(&mut client, 431).await;
            return;
        }
        Ok(Err(_)) => return,
        Err(_elapsed) => {
            bump(&counters.handshake_timeouts);
            respond(&mut client, 408).await;
            return;
        }
    };
    let parsed = parse::parse_request_head(&head).map(|head| {
        let request = parse::classify(&head);
        (head, request)
    });
    let (head, request) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return refuse(&mut client, &error, counters).await,
    };
    if let Some(expected) = &config.auth
        && !is_authorized(&head, expected)
    {
        bump(&counters.auth_failures);
        respond(&mut client, 407).await;
        return;
    }
    let request = match request {
        Ok(request) => request,
        Err(error) => return refuse(&mut client, &error, counters).await,
    };
    let (target, forwarded_head) = match &request {
        ProxyRequest::Connect { target } => (target, None),
        ProxyRequest::Forward {
            target,
            authority,
            path,
        } => (target, Some(parse::origin_head(&head, authority, path))),
    };
    let Some(mut stream) = dial(&mut client, dialer, target, config, counters).await else {
        return;
    };
    let sent = match &forwarded_head {
        None => client.write_all(CONNECT_ESTABLISHED).await,
        Some(origin_head) => {
            add(&counters.bytes_up, origin_head.len());
            stream.write_all(origin_head).await
        }
    };
    if sent.is_err() {
        return;
    }
    if let Err(error) = relay::relay(client, stream, &buffer.into_leftover(), counters).await {
        tracing::debug!(%target, %error, "HTTP proxy relay ended with an error");
    }
}

/// Reads up to the end of the head, returning the head and leaving what follows (a body,
/// or tunnel bytes sent early) in the buffer.
async fn read_head(
    client: &mut TcpStream,
    buffer: &mut HandshakeBuffer,
) -> Result<Vec<u8>, ReadError<std::convert::Infallible>> {
    let mut scanned: usize = 0;
    buffer
        .read_message(client, |bytes| {
            // The terminator may straddle reads: resume 3 bytes before the last scan ended.
            let end = parse::find_head_end(bytes, scanned.saturating_sub(3));
            scanned = bytes.len();
            Ok(end.and_then(|end| Some((bytes.get(..end)?.to_vec(), end))))
        })
        .await
}

fn is_authorized(head: &RequestHead<'_>, expected: &(String, String)) -> bool {
    head.header("proxy-authorization")
        .and_then(parse::basic_credentials)
        .is_some_and(|(user, pass)| credentials_match(expected, &user, &pass))
}

async fn dial<D: Dialer>(
    client: &mut TcpStream,
    dialer: &D,
    target: &Target,
    config: &HttpProxyConfig,
    counters: &FrontCounters,
) -> Option<D::Stream> {
    match timeout(config.limits.connect_timeout, dialer.connect(target)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%target, %error, "HTTP proxy dial failed");
            bump(&counters.connect_failures);
            let status = if error.kind() == io::ErrorKind::TimedOut {
                504
            } else {
                502
            };
            respond(client, status).await;
            None
        }
        Err(_elapsed) => {
            bump(&counters.connect_timeouts);
            respond(client, 504).await;
            None
        }
    }
}

async fn refuse(client: &mut TcpStream, error: &HeadError, counters: &FrontCounters) {
    tracing::debug!(%error, "HTTP proxy refused a request");
    bump(&counters.bad_requests);
    respond(client, error.status()).await;
}

/// Sends a body-less response, then reads and discards what the client still sends for a
/// short while: closing with unread bytes would reset the connection, and the reset can
/// destroy the response before the client reads it.
async fn respond(client: &mut TcpStream, status: u16) {
    let reason = match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let challenge = if status == 407 {
        "Proxy-Authenticate: Basic realm=\"ztrs\"\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if client.write_all(response.as_bytes()).await.is_err() || client.shutdown().await.is_err() {
        return;
    }
    let mut drained = 0;
    let mut discard = [0u8; 4096];
    let _ = timeout(LINGER_TIME, async {
        while drained < LINGER_BYTES {
            match client.read(&mut discard).await {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    })
    .await;
}
