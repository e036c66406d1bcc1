//! The bidirectional copy between a front end's client and its target, with half-close:
//! when one side reaches EOF the other side's write half is shut down and the opposite
//! direction keeps flowing, so a client that closes its sending side still gets its reply.
//!
//! `tokio::io::copy_bidirectional` has the same half-close semantics (it shuts the other
//! writer down on EOF and ends when both directions have), but reports byte counts only
//! when it returns; this copy adds to the counters as bytes move, so the control API sees
//! long-lived connections and the bytes of connections that end in an error.

use std::io;
use std::sync::atomic::AtomicU64;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{FrontCounters, add};

/// Buffer per direction (a bounded amount of memory per connection).
const RELAY_BUFFER: usize = 16 * 1024;

/// Relays until both directions have finished or either fails. `client_prefix` holds bytes
/// the client sent before the relay began (pipelined after its handshake); they are written
/// to the target first.
pub async fn relay<C, T>(
    client: C,
    target: T,
    client_prefix: &[u8],
    counters: &FrontCounters,
) -> io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut target_read, mut target_write) = tokio::io::split(target);
    if !client_prefix.is_empty() {
        target_write.write_all(client_prefix).await?;
        target_write.flush().await?;
        add(&counters.bytes_up, client_prefix.len());
    }
    let up = copy_until_eof(&mut client_read, &mut target_write, &counters.bytes_up);
    let down = copy_until_eof(&mut target_read, &mut client_write, &counters.bytes_down);
    tokio::try_join!(up, down).map(|_| ())
}

/// Copies one direction until EOF, then shuts the writer down (the half-close).
async fn copy_until_eof<R, W>(reader: &mut R, writer: &mut W, counter: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; RELAY_BUFFER];
    loop {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            return match writer.shutdown().await {
                // The other side is already fully gone: nothing is left to tell it, and
                // the opposite direction reports the closure on its own.
                Err(error) if error.kind() != io::ErrorKind::NotConnected => Err(error),
                _ => Ok(()),
            };
        }
        let chunk = buffer.get(..read).unwrap_or_default();
        writer.write_all(chunk).await?;
        writer.flush().await?;
        add(counter, read);
    }
}
