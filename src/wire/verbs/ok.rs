//! OK (0x03): `u8 in-re verb | u64 in-re packet id | body`, the body chosen by the in-re verb.
//!
//! | in-re verb              | body                                              |
//! |-------------------------|---------------------------------------------------|
//! | HELLO                   | [`OkHello`]                                       |
//! | WHOIS                   | [`WhoisReply`] (identities)                       |
//! | ECHO                    | the echoed payload                                |
//! | NETWORK_CONFIG_REQUEST  | one config chunk                                  |
//! | NETWORK_CONFIG          | [`NetworkConfigAck`] (`u64 nwid | u64 update id`) |
//! | MULTICAST_GATHER        | [`OkMulticastGather`]                             |
//! | MULTICAST_FRAME         | [`OkMulticastFrame`]                              |
//! | EXT_FRAME               | `u64 nwid`                                        |
//!
//! Quirk (reference 1.14.1): the OK acknowledging a NETWORK_CONFIG carries in-re verb 0x08
//! (ECHO), so on the wire it is indistinguishable from OK(ECHO) with a 16-byte payload.
//! [`OkBody::NetworkConfig`] is emitted that way; parsing yields [`OkBody::Echo`] and
//! [`NetworkConfigAck::from_echo`] recovers the ack. A correct in-re verb (0x0c) is accepted
//! too. The node ignores the ack either way.

use crate::wire::cursor::{Reader, Writer};
use crate::wire::netconf_chunk::ConfigChunk;
use crate::wire::{NetworkId, Result, Verb};

use super::common::read_network_id;
use super::hello::OkHello;
use super::multicast::{OkMulticastFrame, OkMulticastGather};
use super::simple::Echo;
use super::whois::WhoisReply;

/// An OK payload. The caller must drop it unless `in_re_packet_id` is one it recently sent
/// (2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OkReply<'a> {
    pub in_re_packet_id: u64,
    pub body: OkBody<'a>,
}

/// What an OK answers, with its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OkBody<'a> {
    Hello(OkHello<'a>),
    Whois(WhoisReply),
    Echo(Echo<'a>),
    NetworkConfigRequest(ConfigChunk<'a>),
    /// Emitted with in-re verb ECHO (the quirk above).
    NetworkConfig(NetworkConfigAck),
    MulticastGather(OkMulticastGather<'a>),
    MulticastFrame(OkMulticastFrame<'a>),
    /// Ack of an EXT_FRAME that asked for one.
    ExtFrame(NetworkId),
    /// OK for any other verb: body kept opaque. `in_re_verb` is none of the above.
    Other {
        in_re_verb: Verb,
        body: &'a [u8],
    },
}

impl OkBody<'_> {
    /// The in-re verb written on the wire.
    pub fn in_re_verb(&self) -> Verb {
        match self {
            OkBody::Hello(_) => Verb::Hello,
            OkBody::Whois(_) => Verb::Whois,
            OkBody::Echo(_) | OkBody::NetworkConfig(_) => Verb::Echo,
            OkBody::NetworkConfigRequest(_) => Verb::NetworkConfigRequest,
            OkBody::MulticastGather(_) => Verb::MulticastGather,
            OkBody::MulticastFrame(_) => Verb::MulticastFrame,
            OkBody::ExtFrame(_) => Verb::ExtFrame,
            OkBody::Other { in_re_verb, .. } => *in_re_verb,
        }
    }
}

/// The member's acknowledgement of a complete NETWORK_CONFIG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetworkConfigAck {
    pub network_id: NetworkId,
    pub config_update_id: u64,
}

impl NetworkConfigAck {
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        Ok(NetworkConfigAck {
            network_id: read_network_id(&mut r, "config ack network id")?,
            config_update_id: r.u64("config ack update id")?,
        })
    }

    /// Reads the ack out of an OK(ECHO) body, which is how the reference sends it.
    pub fn from_echo(echo: &Echo<'_>) -> Option<Self> {
        if echo.payload.len() == 16 {
            Self::parse(echo.payload).ok()
        } else {
            None
        }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        out.put_u64(self.config_update_id);
    }
}

impl<'a> OkReply<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let in_re_verb = Verb::from_byte(r.u8("ok in-re verb")?);
        let in_re_packet_id = r.u64("ok in-re packet id")?;
        let body = r.rest();
        let body = match in_re_verb {
            Verb::Hello => OkBody::Hello(OkHello::parse(body)?),
            Verb::Whois => OkBody::Whois(WhoisReply::parse(body)?),
            Verb::Echo => OkBody::Echo(Echo::parse(body)?),
            Verb::NetworkConfigRequest => OkBody::NetworkConfigRequest(ConfigChunk::read(&mut r)?),
            Verb::NetworkConfig => OkBody::NetworkConfig(NetworkConfigAck::parse(body)?),
            Verb::MulticastGather => OkBody::MulticastGather(OkMulticastGather::parse(body)?),
            Verb::MulticastFrame => OkBody::MulticastFrame(OkMulticastFrame::parse(body)?),
            Verb::ExtFrame => {
                OkBody::ExtFrame(read_network_id(&mut r, "ok(ext frame) network id")?)
            }
            in_re_verb => OkBody::Other { in_re_verb, body },
        };
        Ok(OkReply {
            in_re_packet_id,
            body,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.body.in_re_verb().to_byte());
        out.put_u64(self.in_re_packet_id);
        match &self.body {
            OkBody::Hello(b) => b.emit(out),
            OkBody::Whois(b) => b.emit(out),
            OkBody::Echo(b) => b.emit(out),
            OkBody::NetworkConfigRequest(b) => b.emit(out),
            OkBody::NetworkConfig(b) => b.emit(out),
            OkBody::MulticastGather(b) => b.emit(out),
            OkBody::MulticastFrame(b) => b.emit(out),
            OkBody::ExtFrame(n) => out.put_u64(n.0),
            OkBody::Other { body, .. } => out.put_bytes(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: OkBody<'_>) -> Vec<u8> {
        let ok = OkReply {
            in_re_packet_id: 0xfeed,
            body,
        };
        let mut out = Vec::new();
        ok.emit(&mut out);
        assert_eq!(OkReply::parse(&out).unwrap(), ok);
        out
    }

    #[test]
    fn bodies_by_in_re_verb() {
        let out = round_trip(OkBody::ExtFrame(NetworkId(3)));
        assert_eq!(out[0], Verb::ExtFrame.to_byte());
        let out = round_trip(OkBody::Other {
            in_re_verb: Verb::Frame,
            body: &[1, 2, 3],
        });
        assert_eq!(out[0], Verb::Frame.to_byte());
        round_trip(OkBody::Echo(Echo { payload: b"ping" }));
        round_trip(OkBody::NetworkConfigRequest(ConfigChunk {
            network_id: NetworkId(1),
            data: b"v=7",
            signed: None,
        }));
        // Header only, or an EXT_FRAME ack without its nwid.
        assert!(OkReply::parse(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(OkReply::parse(&[7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]).is_err());
    }

    #[test]
    fn config_ack_quirk() {
        let ack = NetworkConfigAck {
            network_id: NetworkId(1),
            config_update_id: 2,
        };
        let mut out = Vec::new();
        OkReply {
            in_re_packet_id: 9,
            body: OkBody::NetworkConfig(ack),
        }
        .emit(&mut out);
        assert_eq!(out[0], Verb::Echo.to_byte());
        let OkBody::Echo(echo) = OkReply::parse(&out).unwrap().body else {
            panic!("expected OK(ECHO)");
        };
        assert_eq!(NetworkConfigAck::from_echo(&echo), Some(ack));
        assert_eq!(
            NetworkConfigAck::from_echo(&Echo { payload: &[0; 15] }),
            None
        );
    }
}
