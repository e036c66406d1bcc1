//! ERROR (0x02): `u8 in-re verb | u64 in-re packet id | u8 code | code-specific payload`.
//!
//! | code | name                            | payload                                  |
//! |------|---------------------------------|------------------------------------------|
//! | 0x03 | OBJ_NOT_FOUND                   | `u64 nwid` (for NETWORK_CONFIG_REQUEST)  |
//! | 0x05 | UNSUPPORTED_OPERATION           | `u64 nwid` (for NETWORK_CONFIG_REQUEST)  |
//! | 0x06 | NEED_MEMBERSHIP_CERTIFICATE     | `u64 nwid`                               |
//! | 0x07 | NETWORK_ACCESS_DENIED           | `u64 nwid`                               |
//! | 0x08 | UNWANTED_MULTICAST              | `u64 nwid | MAC | u32 ADI`               |
//! | 0x09 | NETWORK_AUTHENTICATION_REQUIRED | `u64 nwid | [u16 len | dictionary]`      |
//!
//! Codes 0x00-0x02 and 0x04 carry nothing. Bytes after a code's payload are ignored, as the
//! reference ignores them; an unknown code keeps its payload opaque.

use crate::wire::cursor::{Reader, Writer};
use crate::wire::mac::MulticastGroup;
use crate::wire::{NetworkId, Result, Verb};

use super::common::{put_u16_prefixed, read_network_id};

/// An ERROR payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorReply<'a> {
    /// The verb of the packet this answers.
    pub in_re_verb: Verb,
    /// The id of the packet this answers (not gated like OK: each handler checks the sender).
    pub in_re_packet_id: u64,
    pub body: ErrorBody<'a>,
}

/// The error code and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorBody<'a> {
    /// 0x00, never sent.
    NoError,
    /// 0x01.
    InvalidRequest,
    /// 0x02.
    BadProtocolVersion,
    /// 0x03; the nwid is present when answering NETWORK_CONFIG_REQUEST.
    ObjectNotFound(Option<NetworkId>),
    /// 0x04, reply to HELLO: the address is taken by another identity.
    IdentityCollision,
    /// 0x05; the nwid is present when answering NETWORK_CONFIG_REQUEST ("not a controller").
    UnsupportedOperation(Option<NetworkId>),
    /// 0x06: "push me your credentials for this network".
    NeedMembershipCertificate(NetworkId),
    /// 0x07: not authorized on this network.
    NetworkAccessDenied(NetworkId),
    /// 0x08: "unsubscribe me from this group".
    UnwantedMulticast {
        network_id: NetworkId,
        group: MulticastGroup,
    },
    /// 0x09: SSO required; `info` is an optional dictionary.
    NetworkAuthenticationRequired {
        network_id: NetworkId,
        info: Option<&'a [u8]>,
    },
    /// Any other code, payload kept opaque.
    Unknown { code: u8, payload: &'a [u8] },
}

impl<'a> ErrorBody<'a> {
    pub const NONE: u8 = 0x00;
    pub const INVALID_REQUEST: u8 = 0x01;
    pub const BAD_PROTOCOL_VERSION: u8 = 0x02;
    pub const OBJ_NOT_FOUND: u8 = 0x03;
    pub const IDENTITY_COLLISION: u8 = 0x04;
    pub const UNSUPPORTED_OPERATION: u8 = 0x05;
    pub const NEED_MEMBERSHIP_CERTIFICATE: u8 = 0x06;
    pub const NETWORK_ACCESS_DENIED: u8 = 0x07;
    pub const UNWANTED_MULTICAST: u8 = 0x08;
    pub const NETWORK_AUTHENTICATION_REQUIRED: u8 = 0x09;

    /// The error code byte.
    pub fn code(&self) -> u8 {
        match self {
            ErrorBody::NoError => Self::NONE,
            ErrorBody::InvalidRequest => Self::INVALID_REQUEST,
            ErrorBody::BadProtocolVersion => Self::BAD_PROTOCOL_VERSION,
            ErrorBody::ObjectNotFound(_) => Self::OBJ_NOT_FOUND,
            ErrorBody::IdentityCollision => Self::IDENTITY_COLLISION,
            ErrorBody::UnsupportedOperation(_) => Self::UNSUPPORTED_OPERATION,
            ErrorBody::NeedMembershipCertificate(_) => Self::NEED_MEMBERSHIP_CERTIFICATE,
            ErrorBody::NetworkAccessDenied(_) => Self::NETWORK_ACCESS_DENIED,
            ErrorBody::UnwantedMulticast { .. } => Self::UNWANTED_MULTICAST,
            ErrorBody::NetworkAuthenticationRequired { .. } => {
                Self::NETWORK_AUTHENTICATION_REQUIRED
            }
            ErrorBody::Unknown { code, .. } => *code,
        }
    }

    /// The network the error is about, if it names one.
    pub fn network_id(&self) -> Option<NetworkId> {
        match *self {
            ErrorBody::ObjectNotFound(n) | ErrorBody::UnsupportedOperation(n) => n,
            ErrorBody::NeedMembershipCertificate(n) | ErrorBody::NetworkAccessDenied(n) => Some(n),
            ErrorBody::UnwantedMulticast { network_id, .. }
            | ErrorBody::NetworkAuthenticationRequired { network_id, .. } => Some(network_id),
            _ => None,
        }
    }

    fn read(code: u8, r: &mut Reader<'a>) -> Result<Self> {
        Ok(match code {
            Self::NONE => ErrorBody::NoError,
            Self::INVALID_REQUEST => ErrorBody::InvalidRequest,
            Self::BAD_PROTOCOL_VERSION => ErrorBody::BadProtocolVersion,
            Self::OBJ_NOT_FOUND => ErrorBody::ObjectNotFound(read_optional_nwid(r)?),
            Self::IDENTITY_COLLISION => ErrorBody::IdentityCollision,
            Self::UNSUPPORTED_OPERATION => ErrorBody::UnsupportedOperation(read_optional_nwid(r)?),
            Self::NEED_MEMBERSHIP_CERTIFICATE => {
                ErrorBody::NeedMembershipCertificate(read_network_id(r, "error network id")?)
            }
            Self::NETWORK_ACCESS_DENIED => {
                ErrorBody::NetworkAccessDenied(read_network_id(r, "error network id")?)
            }
            Self::UNWANTED_MULTICAST => ErrorBody::UnwantedMulticast {
                network_id: read_network_id(r, "error network id")?,
                group: MulticastGroup::read(r)?,
            },
            Self::NETWORK_AUTHENTICATION_REQUIRED => {
                let network_id = read_network_id(r, "error network id")?;
                let info = if r.remaining() >= 2 {
                    let len = r.u16("error authentication info length")?;
                    Some(r.bytes(usize::from(len), "error authentication info")?)
                } else {
                    None
                };
                ErrorBody::NetworkAuthenticationRequired { network_id, info }
            }
            code => ErrorBody::Unknown {
                code,
                payload: r.take_rest(),
            },
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.code());
        match *self {
            ErrorBody::NoError
            | ErrorBody::InvalidRequest
            | ErrorBody::BadProtocolVersion
            | ErrorBody::IdentityCollision => {}
            ErrorBody::ObjectNotFound(n) | ErrorBody::UnsupportedOperation(n) => {
                if let Some(n) = n {
                    out.put_u64(n.0);
                }
            }
            ErrorBody::NeedMembershipCertificate(n) | ErrorBody::NetworkAccessDenied(n) => {
                out.put_u64(n.0);
            }
            ErrorBody::UnwantedMulticast { network_id, group } => {
                out.put_u64(network_id.0);
                group.emit(out);
            }
            ErrorBody::NetworkAuthenticationRequired { network_id, info } => {
                out.put_u64(network_id.0);
                if let Some(info) = info {
                    put_u16_prefixed(out, info);
                }
            }
            ErrorBody::Unknown { payload, .. } => out.put_bytes(payload),
        }
    }
}

/// An nwid that is present only for some in-re verbs: absent when nothing follows.
fn read_optional_nwid(r: &mut Reader<'_>) -> Result<Option<NetworkId>> {
    if r.is_empty() {
        Ok(None)
    } else {
        read_network_id(r, "error network id").map(Some)
    }
}

impl<'a> ErrorReply<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let in_re_verb = Verb::from_byte(r.u8("error in-re verb")?);
        let in_re_packet_id = r.u64("error in-re packet id")?;
        let code = r.u8("error code")?;
        Ok(ErrorReply {
            in_re_verb,
            in_re_packet_id,
            body: ErrorBody::read(code, &mut r)?,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.in_re_verb.to_byte());
        out.put_u64(self.in_re_packet_id);
        self.body.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::mac::Mac;

    fn round_trip(body: ErrorBody<'_>) {
        let e = ErrorReply {
            in_re_verb: Verb::NetworkConfigRequest,
            in_re_packet_id: 0x0102030405060708,
            body,
        };
        let mut out = Vec::new();
        e.emit(&mut out);
        assert_eq!(out[9], body.code());
        assert_eq!(ErrorReply::parse(&out).unwrap(), e);
    }

    #[test]
    fn every_code_round_trips() {
        let n = NetworkId(0x8056c2e21c000001);
        for body in [
            ErrorBody::NoError,
            ErrorBody::InvalidRequest,
            ErrorBody::BadProtocolVersion,
            ErrorBody::ObjectNotFound(None),
            ErrorBody::ObjectNotFound(Some(n)),
            ErrorBody::IdentityCollision,
            ErrorBody::UnsupportedOperation(Some(n)),
            ErrorBody::NeedMembershipCertificate(n),
            ErrorBody::NetworkAccessDenied(n),
            ErrorBody::UnwantedMulticast {
                network_id: n,
                group: MulticastGroup::new(Mac([1, 0, 0x5e, 0, 0, 1]), 7),
            },
            ErrorBody::NetworkAuthenticationRequired {
                network_id: n,
                info: None,
            },
            ErrorBody::NetworkAuthenticationRequired {
                network_id: n,
                info: Some(b"aurl=x"),
            },
            ErrorBody::Unknown {
                code: 0x42,
                payload: &[1, 2],
            },
        ] {
            round_trip(body);
        }
    }

    #[test]
    fn required_payloads_and_trailing_bytes() {
        // NEED_MEMBERSHIP_CERTIFICATE without its nwid.
        assert!(ErrorReply::parse(&[6, 0, 0, 0, 0, 0, 0, 0, 1, 6, 0, 0]).is_err());
        // A partial optional nwid is truncated, not absent.
        assert!(ErrorReply::parse(&[0x0b, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0]).is_err());
        // Trailing bytes after a payload-less code are ignored.
        let e = ErrorReply::parse(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 4, 9, 9]).unwrap();
        assert_eq!(e.body, ErrorBody::IdentityCollision);
        assert_eq!(e.in_re_verb, Verb::Hello);
    }
}
