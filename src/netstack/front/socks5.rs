//! The SOCKS5 server (RFC 1928, with RFC 1929 username/password): method negotiation,
//! authentication and the request on each connection, then CONNECT relayed through the
//! [`Dialer`], UDP ASSOCIATE handed to [`udp`], BIND refused. The wire formats live in
//! [`wire`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::buffer::{HandshakeBuffer, ReadError};
use super::{
    Dialer, FrontCounters, FrontLimits, Target, UNSPECIFIED_ADDR, accept, bump, credentials_match,
    relay,
};
use wire::{Command, Reply, Request, WireError};

mod udp;
pub mod wire;

/// Largest handshake the buffer holds: more than any single SOCKS5 message (a username /
/// password request is at most 513 bytes), so a well-formed client never hits it.
const MAX_HANDSHAKE_BYTES: usize = 1024;

#[derive(Clone, Debug, Default)]
pub struct Socks5Config {
    /// Username and password required of clients; `None` serves without authentication.
    pub auth: Option<(String, String)>,
    pub limits: FrontLimits,
}

/// Serves SOCKS5 on `listener` until it fails fatally (returning that error) or this future
/// is dropped, which also ends every connection it serves.
pub async fn serve_socks5<D: Dialer>(
    listener: TcpListener,
    dialer: Arc<D>,
    config: Socks5Config,
    counters: Arc<FrontCounters>,
) -> io::Result<()> {
    let config = Arc::new(config);
    accept::serve_connections(listener, &config.limits, &counters, |stream, peer| {
        let dialer = Arc::clone(&dialer);
        let config = Arc::clone(&config);
        let counters = Arc::clone(&counters);
        async move { serve_connection(stream, peer, &*dialer, &config, &counters).await }
    })
    .await
}

/// How a handshake ended without a request to carry out.
enum Refusal {
    /// The client went away or the socket failed: nothing to answer.
    Gone,
    /// Already answered and counted.
    Answered,
    /// Malformed: answer with this reply if the protocol has one, count, close.
    Malformed(Option<Reply>),
}

async fn serve_connection<D: Dialer>(
    mut client: TcpStream,
    peer: SocketAddr,
    dialer: &D,
    config: &Socks5Config,
    counters: &FrontCounters,
) {
    let mut buffer = HandshakeBuffer::new(MAX_HANDSHAKE_BYTES);
    let handshake = negotiate(&mut client, &mut buffer, config, counters);
    let request = match timeout(config.limits.handshake_timeout, handshake).await {
        Ok(Ok(request)) => request,
        Ok(Err(Refusal::Gone | Refusal::Answered)) => return,
        Ok(Err(Refusal::Malformed(reply))) => {
            bump(&counters.bad_requests);
            if let Some(reply) = reply {
                let _ = client
                    .write_all(&wire::encode_reply(reply, UNSPECIFIED_ADDR))
                    .await;
            }
            return;
        }
        Err(_elapsed) => {
            bump(&counters.handshake_timeouts);
            return;
        }
    };
    let leftover = buffer.into_leftover();
    match request.command {
        Command::Connect => {
            connect(client, request.target, &leftover, dialer, config, counters).await;
        }
        Command::UdpAssociate => {
            udp::associate(client, peer, &request.target, dialer, counters).await;
        }
        Command::Bind | Command::Unknown(_) => {
            let reply = wire::encode_reply(Reply::CommandNotSupported, UNSPECIFIED_ADDR);
            let _ = client.write_all(&reply).await;
        }
    }
}

/// Greeting, method selection, authentication and request.
async fn negotiate(
    client: &mut TcpStream,
    buffer: &mut HandshakeBuffer,
    config: &Socks5Config,
    counters: &FrontCounters,
) -> Result<Request, Refusal> {
    let greeting = buffer
        .read_message(client, wire::parse_greeting)
        .await
        .map_err(|error| refusal_for(error, false))?;
    let method = match (&config.auth, greeting) {
        (Some(_), greeting) if greeting.offers_user_pass => wire::METHOD_USER_PASS,
        (None, greeting) if greeting.offers_no_auth => wire::METHOD_NO_AUTH,
        _ => wire::METHOD_NONE_ACCEPTABLE,
    };
    // Counted before answering, so that whoever reads the answer sees the count.
    if method == wire::METHOD_NONE_ACCEPTABLE {
        bump(&counters.auth_failures);
    }
    client
        .write_all(&[wire::VERSION, method])
        .await
        .map_err(|_| Refusal::Gone)?;
    if method == wire::METHOD_NONE_ACCEPTABLE {
        return Err(Refusal::Answered);
    }
    if let Some(expected) = &config.auth {
        let offered = buffer
            .read_message(client, wire::parse_user_pass)
            .await
            .map_err(|error| refusal_for(error, false))?;
        let accepted = credentials_match(expected, &offered.username, &offered.password);
        if !accepted {
            bump(&counters.auth_failures);
        }
        let status = if accepted { 0x00 } else { 0x01 };
        client
            .write_all(&[wire::USER_PASS_VERSION, status])
            .await
            .map_err(|_| Refusal::Gone)?;
        if !accepted {
            return Err(Refusal::Answered);
        }
    }
    buffer
        .read_message(client, wire::parse_request)
        .await
        .map_err(|error| refusal_for(error, true))
}

/// Maps a read failure to a refusal; `is_request` says whether the message was the request,
/// the only one whose answer carries an error code.
fn refusal_for(error: ReadError<WireError>, is_request: bool) -> Refusal {
    let reply = match error {
        ReadError::Io(error) => {
            tracing::debug!(%error, "SOCKS5 client failed during the handshake");
            return Refusal::Gone;
        }
        ReadError::Eof => return Refusal::Gone,
        ReadError::TooLarge => Reply::GeneralFailure,
        ReadError::Malformed(wire_error) => wire_error.reply(),
    };
    Refusal::Malformed(is_request.then_some(reply))
}

/// CONNECT: dial, reply, relay.
async fn connect<D: Dialer>(
    mut client: TcpStream,
    target: Target,
    leftover: &[u8],
    dialer: &D,
    config: &Socks5Config,
    counters: &FrontCounters,
) {
    let stream = match timeout(config.limits.connect_timeout, dialer.connect(&target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            bump(&counters.connect_failures);
            tracing::debug!(%target, %error, "SOCKS5 CONNECT failed");
            let reply = wire::encode_reply(Reply::for_dial_error(&error), UNSPECIFIED_ADDR);
            let _ = client.write_all(&reply).await;
            return;
        }
        Err(_elapsed) => {
            bump(&counters.connect_timeouts);
            let reply = wire::encode_reply(Reply::TtlExpired, UNSPECIFIED_ADDR);
            let _ = client.write_all(&reply).await;
            return;
        }
    };
    let bound = dialer.local_addr(&stream).unwrap_or(UNSPECIFIED_ADDR);
    let reply = wire::encode_reply(Reply::Succeeded, bound);
    if client.write_all(&reply).await.is_err() {
        return;
    }
    if let Err(error) = relay::relay(client, stream, leftover, counters).await {
        tracing::debug!(%target, %error, "SOCKS5 relay ended with an error");
    }
}
