//! The verb byte (packet offset 27): low 5 bits name the verb, bit 7 marks an LZ4 payload.

/// Every verb of ZeroTier V1. Unknown values are kept as `Unknown` (authenticated unknown
/// verbs count as liveness and are otherwise ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Nop,
    Hello,
    Error,
    Ok,
    Whois,
    Rendezvous,
    Frame,
    ExtFrame,
    Echo,
    MulticastLike,
    NetworkCredentials,
    NetworkConfigRequest,
    NetworkConfig,
    MulticastGather,
    MulticastFrame,
    PushDirectPaths,
    Ack,
    QosMeasurement,
    UserMessage,
    RemoteTrace,
    PathNegotiationRequest,
    Unknown(u8),
}

/// Bit 7 of the verb byte: the payload after offset 28 is LZ4-compressed.
pub const VERB_FLAG_COMPRESSED: u8 = 0x80;
/// Mask of the verb number in the verb byte.
pub const VERB_MASK: u8 = 0x1f;

impl Verb {
    /// From the verb byte; flag bits are ignored.
    pub fn from_byte(b: u8) -> Verb {
        match b & VERB_MASK {
            0x00 => Verb::Nop,
            0x01 => Verb::Hello,
            0x02 => Verb::Error,
            0x03 => Verb::Ok,
            0x04 => Verb::Whois,
            0x05 => Verb::Rendezvous,
            0x06 => Verb::Frame,
            0x07 => Verb::ExtFrame,
            0x08 => Verb::Echo,
            0x09 => Verb::MulticastLike,
            0x0a => Verb::NetworkCredentials,
            0x0b => Verb::NetworkConfigRequest,
            0x0c => Verb::NetworkConfig,
            0x0d => Verb::MulticastGather,
            0x0e => Verb::MulticastFrame,
            0x10 => Verb::PushDirectPaths,
            0x12 => Verb::Ack,
            0x13 => Verb::QosMeasurement,
            0x14 => Verb::UserMessage,
            0x15 => Verb::RemoteTrace,
            0x16 => Verb::PathNegotiationRequest,
            other => Verb::Unknown(other),
        }
    }

    /// The verb number (without flags).
    pub fn to_byte(self) -> u8 {
        match self {
            Verb::Nop => 0x00,
            Verb::Hello => 0x01,
            Verb::Error => 0x02,
            Verb::Ok => 0x03,
            Verb::Whois => 0x04,
            Verb::Rendezvous => 0x05,
            Verb::Frame => 0x06,
            Verb::ExtFrame => 0x07,
            Verb::Echo => 0x08,
            Verb::MulticastLike => 0x09,
            Verb::NetworkCredentials => 0x0a,
            Verb::NetworkConfigRequest => 0x0b,
            Verb::NetworkConfig => 0x0c,
            Verb::MulticastGather => 0x0d,
            Verb::MulticastFrame => 0x0e,
            Verb::PushDirectPaths => 0x10,
            Verb::Ack => 0x12,
            Verb::QosMeasurement => 0x13,
            Verb::UserMessage => 0x14,
            Verb::RemoteTrace => 0x15,
            Verb::PathNegotiationRequest => 0x16,
            Verb::Unknown(b) => b & VERB_MASK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_number_round_trips() {
        for b in 0..=VERB_MASK {
            assert_eq!(Verb::from_byte(b).to_byte(), b);
            assert_eq!(
                Verb::from_byte(b | VERB_FLAG_COMPRESSED),
                Verb::from_byte(b)
            );
        }
    }
}
