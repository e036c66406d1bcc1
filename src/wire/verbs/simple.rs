//! The small verbs: ECHO (0x08), USER_MESSAGE (0x14), and the multipath/diagnostic verbs the
//! node ignores (ACK 0x12, QOS_MEASUREMENT 0x13, REMOTE_TRACE 0x15,
//! PATH_NEGOTIATION_REQUEST 0x16), parsed only far enough to be well-formed.
//!
//! ```text
//! ECHO:                     anything (echoed verbatim in OK(ECHO))
//! USER_MESSAGE:             u64 type id | payload
//! ACK:                      u32 bytes received
//! QOS_MEASUREMENT:          (u64 packet id | u16 holding time ms) x N
//! REMOTE_TRACE:             NUL-terminated dictionaries
//! PATH_NEGOTIATION_REQUEST: i16 utility
//! ```

use crate::wire::Result;
use crate::wire::cursor::{Reader, Writer};

/// An ECHO request (and the body of OK(ECHO)): opaque bytes, often empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Echo<'a> {
    pub payload: &'a [u8],
}

impl<'a> Echo<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        Ok(Echo { payload })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.payload);
    }
}

/// An application message between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserMessage<'a> {
    /// Type ids up to 65535 are reserved.
    pub type_id: u64,
    pub payload: &'a [u8],
}

impl<'a> UserMessage<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        Ok(UserMessage {
            type_id: r.u64("user message type id")?,
            payload: r.take_rest(),
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.type_id);
        out.put_bytes(self.payload);
    }
}

/// ACK (multipath bonding; ignored on receipt). Trailing bytes are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ack {
    pub bytes_received: u32,
}

impl Ack {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        Ok(Ack {
            bytes_received: Reader::new(payload).u32("ack bytes received")?,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.bytes_received);
    }
}

/// QOS_MEASUREMENT (multipath bonding; ignored on receipt), kept as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QosMeasurement<'a> {
    pub records: &'a [u8],
}

impl<'a> QosMeasurement<'a> {
    /// Size of one `(packet id, holding time)` record.
    pub const RECORD_LEN: usize = 10;

    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        Ok(QosMeasurement { records: payload })
    }

    /// The complete `(packet id, holding time ms)` records; a trailing partial one is ignored.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u16)> + 'a {
        self.records.chunks_exact(Self::RECORD_LEN).map(|c| {
            let mut r = Reader::new(c);
            (
                r.u64("qos packet id").unwrap_or_default(),
                r.u16("qos holding time").unwrap_or_default(),
            )
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.records);
    }
}

/// REMOTE_TRACE (diagnostics; ignored), kept as raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RemoteTrace<'a> {
    pub data: &'a [u8],
}

impl<'a> RemoteTrace<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        Ok(RemoteTrace { data: payload })
    }

    /// The non-empty NUL-separated dictionaries.
    pub fn dictionaries(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.data.split(|&b| b == 0).filter(|d| !d.is_empty())
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.data);
    }
}

/// PATH_NEGOTIATION_REQUEST (multipath bonding; ignored). Trailing bytes are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathNegotiationRequest {
    pub utility: i16,
}

impl PathNegotiationRequest {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        Ok(PathNegotiationRequest {
            utility: Reader::new(payload).u16("path negotiation utility")? as i16,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u16(self.utility as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_verbs() {
        assert!(UserMessage::parse(&[0; 7]).is_err());
        let m = UserMessage::parse(&[0, 0, 0, 0, 0, 1, 0, 0, 42]).unwrap();
        assert_eq!((m.type_id, m.payload), (0x10000, &[42][..]));
        assert!(Ack::parse(&[1, 2, 3]).is_err());
        assert_eq!(Ack::parse(&[0, 0, 1, 0]).unwrap().bytes_received, 256);
        assert_eq!(
            PathNegotiationRequest::parse(&[0xff, 0xfe])
                .unwrap()
                .utility,
            -2
        );
        let q = QosMeasurement::parse(&[0, 0, 0, 0, 0, 0, 0, 7, 0, 9, 1]).unwrap();
        assert_eq!(q.iter().collect::<Vec<_>>(), [(7, 9)]);
        let t = RemoteTrace::parse(b"a=1\0\0b=2").unwrap();
        assert_eq!(t.dictionaries().collect::<Vec<_>>(), [&b"a=1"[..], b"b=2"]);
    }
}
