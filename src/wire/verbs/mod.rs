//! Verb payload codecs (protocol reference section 5): one validated representation per verb,
//! parsed from the payload (packet bytes from offset 28, after dearmor and decompression) and
//! emitted back to it. Bulk data (frame payloads, echo and user message bodies, netconf chunk
//! bytes, world updates) is borrowed as `&'a [u8]`, never copied.
//!
//! [`parse_payload`] dispatches on the verb and yields a [`Payload`]; the node and the `verbs`
//! fuzz target use it. Authentication, rate limits and "who may send this" checks belong to
//! the node; this module only decides whether the bytes are well-formed.
//!
//! # Policies
//!
//! - **Leniency follows the reference.** Optional trailing fields may be missing (old
//!   versions), and bytes after the last field a verb defines are ignored. Unknown flag bits,
//!   error codes, OK in-re verbs and verb numbers are kept opaque rather than refused.
//! - **Strictness where the reference would throw.** A count or length that runs past the end
//!   is [`Error::Truncated`](crate::wire::Error::Truncated); a flag announcing a COM that does not parse fails the whole
//!   payload (COM parsing is strict, H2.8). Reserved InetAddress types (1-3) are refused in
//!   HELLO and OK(HELLO): nobody sends them, and refusing them keeps the `cryptField` offset
//!   exact.
//! - **Caps, checked before anything is allocated (H2.9):**
//!   - HELLO moon list: the declared count must fit in the tail (else `Truncated`, as the
//!     reference drops such a HELLO); only the first [`MAX_HELLO_MOONS`] are kept
//!     (**truncated**), so a long list never costs the peer its HELLO.
//!   - WHOIS: only the first [`MAX_WHOIS_ADDRESSES`] addresses are read (**truncated**: that
//!     is what fits in one reply). OK(WHOIS): identities are fixed-size (71 bytes), so a
//!     malformed one is skipped and counted without losing the others (H2.8); slots beyond
//!     [`MAX_IDENTITIES_PER_PACKET`] are counted as skipped.
//!   - PUSH_DIRECT_PATHS: only the first [`MAX_PUSHED_PATHS`] records are read
//!     (**truncated**; the receiver uses at most 8 per scope and family anyway).
//!   - NETWORK_CREDENTIALS: a COM list longer than [`MAX_CREDENTIAL_COMS`] or a count above
//!     [`MAX_CREDENTIAL_CAPABILITIES`], [`MAX_CREDENTIAL_TAGS`],
//!     [`MAX_CREDENTIAL_REVOCATIONS`] or [`MAX_CREDENTIAL_COOS`] is **rejected**
//!     ([`Error::TooLarge`](crate::wire::Error::TooLarge)): these are the reference's per-member limits, which only a
//!     broken or hostile sender exceeds.
//!   - NETWORK_CONFIG_REQUEST metadata longer than [`MAX_METADATA_LEN`] is **rejected**.
//!   - MULTICAST_LIKE, gather results and the bonding verbs are zero-copy views: nothing is
//!     allocated whatever their length.
//! - **Round trip.** `parse(emit(x)) == x` for every representation that satisfies its
//!   documented invariants, and emit never panics. Flag fields hold only the non-structural
//!   bits; presence bits are derived from the optional fields. Documented exceptions:
//!   [`OkBody::NetworkConfig`] reads back as [`OkBody::Echo`] (the reference's in-re verb
//!   quirk), [`WhoisReply::skipped`] is not on the wire, and lists longer than a cap are cut
//!   at the cap by emit.

mod common;
mod credentials;
mod error_reply;
mod frame;
mod hello;
mod multicast;
mod network;
mod ok;
mod paths;
mod simple;
mod whois;

pub use common::AddressList;
pub use credentials::NetworkCredentials;
pub use error_reply::{ErrorBody, ErrorReply};
pub use frame::{ExtFrame, Frame};
pub use hello::{Hello, HelloMoons, MoonStamp, OkHello, SoftwareVersion, WorldStamp};
pub use multicast::{
    GatherResults, MulticastFrame, MulticastGather, MulticastLike, OkMulticastFrame,
    OkMulticastGather,
};
pub use network::{ConfigVersion, NetworkConfig, NetworkConfigRequest};
pub use ok::{NetworkConfigAck, OkBody, OkReply};
pub use paths::{PathAddress, PathRecord, PushDirectPaths, Rendezvous};
pub use simple::{Ack, Echo, PathNegotiationRequest, QosMeasurement, RemoteTrace, UserMessage};
pub use whois::{Whois, WhoisReply};

use super::packet::MAX_PACKET_LEN;
use super::{Result, Verb};

/// Moon entries kept from a HELLO tail.
pub const MAX_HELLO_MOONS: usize = 32;
/// Identities that fit in one OK(WHOIS): `(10024 - 37) / 71` = 140.
pub const MAX_IDENTITIES_PER_PACKET: usize =
    (MAX_PACKET_LEN - 37) / crate::crypto::BINARY_PUBLIC_LEN;
/// Addresses of one WHOIS that are read (as many as one reply can answer).
pub const MAX_WHOIS_ADDRESSES: usize = MAX_IDENTITIES_PER_PACKET;
/// PUSH_DIRECT_PATHS records read.
pub const MAX_PUSHED_PATHS: usize = 128;
/// Metadata dictionary capacity of NETWORK_CONFIG_REQUEST
/// (`ZT_NETWORKCONFIG_METADATA_DICT_CAPACITY`).
pub const MAX_METADATA_LEN: usize = 1024;
/// COMs in one NETWORK_CREDENTIALS (a member pushes one per network).
pub const MAX_CREDENTIAL_COMS: usize = 8;
/// Capabilities in one NETWORK_CREDENTIALS (the per-network cap).
pub const MAX_CREDENTIAL_CAPABILITIES: usize = crate::wire::credentials::MAX_NETCONF_CAPABILITIES;
/// Tags in one NETWORK_CREDENTIALS (the per-network cap).
pub const MAX_CREDENTIAL_TAGS: usize = crate::wire::credentials::MAX_NETCONF_TAGS;
/// Revocations in one NETWORK_CREDENTIALS.
pub const MAX_CREDENTIAL_REVOCATIONS: usize = 128;
/// Certificates of ownership in one NETWORK_CREDENTIALS (the per-member cap).
pub const MAX_CREDENTIAL_COOS: usize = crate::wire::credentials::MAX_NETCONF_COOS;

/// Any verb payload, parsed by [`parse_payload`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// NOP carries nothing; any bytes are ignored.
    Nop,
    Hello(Hello<'a>),
    Error(ErrorReply<'a>),
    Ok(OkReply<'a>),
    Whois(Whois<'a>),
    Rendezvous(Rendezvous),
    Frame(Frame<'a>),
    ExtFrame(ExtFrame<'a>),
    Echo(Echo<'a>),
    MulticastLike(MulticastLike<'a>),
    NetworkCredentials(NetworkCredentials),
    NetworkConfigRequest(NetworkConfigRequest<'a>),
    NetworkConfig(NetworkConfig<'a>),
    MulticastGather(MulticastGather),
    MulticastFrame(MulticastFrame<'a>),
    PushDirectPaths(PushDirectPaths<'a>),
    Ack(Ack),
    QosMeasurement(QosMeasurement<'a>),
    UserMessage(UserMessage<'a>),
    RemoteTrace(RemoteTrace<'a>),
    PathNegotiationRequest(PathNegotiationRequest),
    /// An unassigned verb number (0-31): authenticated, counts as liveness, otherwise
    /// ignored. `verb` must not be an assigned number.
    Unknown {
        verb: u8,
        payload: &'a [u8],
    },
}

/// Parses the payload of a packet with verb `verb` (flag bits of the verb byte ignored).
pub fn parse_payload(verb: Verb, payload: &[u8]) -> Result<Payload<'_>> {
    Ok(match verb {
        Verb::Nop => Payload::Nop,
        Verb::Hello => Payload::Hello(Hello::parse(payload)?),
        Verb::Error => Payload::Error(ErrorReply::parse(payload)?),
        Verb::Ok => Payload::Ok(OkReply::parse(payload)?),
        Verb::Whois => Payload::Whois(Whois::parse(payload)?),
        Verb::Rendezvous => Payload::Rendezvous(Rendezvous::parse(payload)?),
        Verb::Frame => Payload::Frame(Frame::parse(payload)?),
        Verb::ExtFrame => Payload::ExtFrame(ExtFrame::parse(payload)?),
        Verb::Echo => Payload::Echo(Echo::parse(payload)?),
        Verb::MulticastLike => Payload::MulticastLike(MulticastLike::parse(payload)?),
        Verb::NetworkCredentials => {
            Payload::NetworkCredentials(NetworkCredentials::parse(payload)?)
        }
        Verb::NetworkConfigRequest => {
            Payload::NetworkConfigRequest(NetworkConfigRequest::parse(payload)?)
        }
        Verb::NetworkConfig => Payload::NetworkConfig(NetworkConfig::parse(payload)?),
        Verb::MulticastGather => Payload::MulticastGather(MulticastGather::parse(payload)?),
        Verb::MulticastFrame => Payload::MulticastFrame(MulticastFrame::parse(payload)?),
        Verb::PushDirectPaths => Payload::PushDirectPaths(PushDirectPaths::parse(payload)?),
        Verb::Ack => Payload::Ack(Ack::parse(payload)?),
        Verb::QosMeasurement => Payload::QosMeasurement(QosMeasurement::parse(payload)?),
        Verb::UserMessage => Payload::UserMessage(UserMessage::parse(payload)?),
        Verb::RemoteTrace => Payload::RemoteTrace(RemoteTrace::parse(payload)?),
        Verb::PathNegotiationRequest => {
            Payload::PathNegotiationRequest(PathNegotiationRequest::parse(payload)?)
        }
        Verb::Unknown(verb) => Payload::Unknown {
            verb: verb & super::VERB_MASK,
            payload,
        },
    })
}

impl Payload<'_> {
    /// The verb this payload belongs to.
    pub fn verb(&self) -> Verb {
        match self {
            Payload::Nop => Verb::Nop,
            Payload::Hello(_) => Verb::Hello,
            Payload::Error(_) => Verb::Error,
            Payload::Ok(_) => Verb::Ok,
            Payload::Whois(_) => Verb::Whois,
            Payload::Rendezvous(_) => Verb::Rendezvous,
            Payload::Frame(_) => Verb::Frame,
            Payload::ExtFrame(_) => Verb::ExtFrame,
            Payload::Echo(_) => Verb::Echo,
            Payload::MulticastLike(_) => Verb::MulticastLike,
            Payload::NetworkCredentials(_) => Verb::NetworkCredentials,
            Payload::NetworkConfigRequest(_) => Verb::NetworkConfigRequest,
            Payload::NetworkConfig(_) => Verb::NetworkConfig,
            Payload::MulticastGather(_) => Verb::MulticastGather,
            Payload::MulticastFrame(_) => Verb::MulticastFrame,
            Payload::PushDirectPaths(_) => Verb::PushDirectPaths,
            Payload::Ack(_) => Verb::Ack,
            Payload::QosMeasurement(_) => Verb::QosMeasurement,
            Payload::UserMessage(_) => Verb::UserMessage,
            Payload::RemoteTrace(_) => Verb::RemoteTrace,
            Payload::PathNegotiationRequest(_) => Verb::PathNegotiationRequest,
            Payload::Unknown { verb, .. } => Verb::from_byte(*verb),
        }
    }

    /// Appends the payload (the bytes that follow the verb byte).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Nop => {}
            Payload::Hello(p) => p.emit(out),
            Payload::Error(p) => p.emit(out),
            Payload::Ok(p) => p.emit(out),
            Payload::Whois(p) => p.emit(out),
            Payload::Rendezvous(p) => p.emit(out),
            Payload::Frame(p) => p.emit(out),
            Payload::ExtFrame(p) => p.emit(out),
            Payload::Echo(p) => p.emit(out),
            Payload::MulticastLike(p) => p.emit(out),
            Payload::NetworkCredentials(p) => p.emit(out),
            Payload::NetworkConfigRequest(p) => p.emit(out),
            Payload::NetworkConfig(p) => p.emit(out),
            Payload::MulticastGather(p) => p.emit(out),
            Payload::MulticastFrame(p) => p.emit(out),
            Payload::PushDirectPaths(p) => p.emit(out),
            Payload::Ack(p) => p.emit(out),
            Payload::QosMeasurement(p) => p.emit(out),
            Payload::UserMessage(p) => p.emit(out),
            Payload::RemoteTrace(p) => p.emit(out),
            Payload::PathNegotiationRequest(p) => p.emit(out),
            Payload::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_number_dispatches_without_panic() {
        for verb in 0..=crate::wire::VERB_MASK {
            for len in [0usize, 1, 7, 18, 40, 90, 200] {
                let payload = vec![0x01; len];
                if let Ok(p) = parse_payload(Verb::from_byte(verb), &payload) {
                    assert_eq!(p.verb(), Verb::from_byte(verb));
                    let mut out = Vec::new();
                    p.emit(&mut out);
                    let again = parse_payload(p.verb(), &out).expect("emitted payload parses");
                    let mut out2 = Vec::new();
                    again.emit(&mut out2);
                    assert_eq!(out, out2);
                }
            }
        }
    }
}
