//! The bounded buffer a handshake is read into: messages are parsed from it as they
//! complete, and whatever the client sent after the last one (data it pipelined before our
//! reply) is handed on to the relay instead of being lost.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from the stream per call.
const READ_CHUNK: usize = 4096;

/// Why a handshake message could not be read.
#[derive(Debug)]
pub(crate) enum ReadError<E> {
    Io(std::io::Error),
    /// The client closed before the message was complete.
    Eof,
    /// The message did not fit in the buffer's capacity.
    TooLarge,
    /// The parser refused the bytes.
    Malformed(E),
}

/// Outcome of a parser on the pending bytes: `Ok(None)` asks for more bytes,
/// `Ok(Some((message, used)))` consumes `used` bytes.
pub(crate) type ParseOutcome<T, E> = Result<Option<(T, usize)>, E>;

pub(crate) struct HandshakeBuffer {
    bytes: Vec<u8>,
    capacity: usize,
}

impl HandshakeBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            bytes: Vec::new(),
            capacity,
        }
    }

    /// Reads until `parse` accepts a complete message, then consumes it.
    pub(crate) async fn read_message<R, T, E>(
        &mut self,
        reader: &mut R,
        mut parse: impl FnMut(&[u8]) -> ParseOutcome<T, E>,
    ) -> Result<T, ReadError<E>>
    where
        R: AsyncRead + Unpin,
    {
        loop {
            if let Some((message, used)) = parse(&self.bytes).map_err(ReadError::Malformed)? {
                self.bytes.drain(..used.min(self.bytes.len()));
                return Ok(message);
            }
            let room = self.capacity.saturating_sub(self.bytes.len());
            if room == 0 {
                return Err(ReadError::TooLarge);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let want = room.min(READ_CHUNK);
            let target = chunk.get_mut(..want).unwrap_or_default();
            let read = reader.read(target).await.map_err(ReadError::Io)?;
            if read == 0 {
                return Err(ReadError::Eof);
            }
            self.bytes
                .extend_from_slice(chunk.get(..read).unwrap_or_default());
        }
    }

    /// The bytes read beyond the last message consumed.
    pub(crate) fn into_leftover(self) -> Vec<u8> {
        self.bytes
    }
}
