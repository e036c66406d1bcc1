//! WHOIS (0x04) and its reply OK(WHOIS).
//!
//! ```text
//! WHOIS:     address(5) x N                 (N >= 1)
//! OK(WHOIS): identity(71, public form) x M
//! ```
//!
//! Caps: a request is answered for at most [`MAX_WHOIS_ADDRESSES`] addresses (the number of
//! identities that fit in one reply); later ones and a trailing partial address are ignored,
//! as the reference ignores bytes that do not make a whole address. A reply keeps at most
//! [`MAX_IDENTITIES_PER_PACKET`] identities; a malformed identity skips only itself (H2.8).

use crate::crypto::{BINARY_PUBLIC_LEN, Identity};
use crate::wire::cursor::Reader;
use crate::wire::{Address, Error, Result};

use super::common::{AddressList, parse_public_identity};
use super::{MAX_IDENTITIES_PER_PACKET, MAX_WHOIS_ADDRESSES};

/// A WHOIS request: the addresses whose identities the sender wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Whois<'a> {
    pub addresses: AddressList<'a>,
}

impl<'a> Whois<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let whole = (payload.len() / Address::LEN).min(MAX_WHOIS_ADDRESSES);
        if whole == 0 {
            return Err(Error::Truncated("whois address"));
        }
        let mut r = Reader::new(payload);
        Ok(Whois {
            addresses: AddressList::read(&mut r, whole, "whois addresses")?,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.addresses.as_bytes());
    }

    /// Appends a request for `addresses` (at most [`MAX_WHOIS_ADDRESSES`] are written).
    pub fn emit_request(addresses: impl IntoIterator<Item = Address>, out: &mut Vec<u8>) {
        AddressList::encode(addresses.into_iter().take(MAX_WHOIS_ADDRESSES), out);
    }
}

/// The body of OK(WHOIS): the identities that parsed, and how many 71-byte slots did not.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WhoisReply {
    /// Syntactically valid public identities, in wire order. The node still has to check
    /// each one's proof of work (`Identity::locally_validate`) before trusting it.
    pub identities: Vec<Identity>,
    /// Slots skipped: malformed identities, a trailing partial one, and any beyond the cap.
    pub skipped: usize,
}

impl WhoisReply {
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut reply = WhoisReply::default();
        // Identities are fixed-size on the wire, so one bad slot cannot desynchronize the
        // rest: it is counted and the next slot is tried.
        for (i, slot) in body.chunks(BINARY_PUBLIC_LEN).enumerate() {
            if i >= MAX_IDENTITIES_PER_PACKET {
                reply.skipped += 1;
                continue;
            }
            match parse_public_identity(slot) {
                Ok(identity) if slot.len() == BINARY_PUBLIC_LEN => reply.identities.push(identity),
                _ => reply.skipped += 1,
            }
        }
        Ok(reply)
    }

    /// Appends the identities (public form; `skipped` is not represented on the wire).
    pub fn emit(&self, out: &mut Vec<u8>) {
        for identity in self.identities.iter().take(MAX_IDENTITIES_PER_PACKET) {
            identity.emit_binary_public(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whois_ignores_partial_and_caps() {
        assert!(Whois::parse(&[]).is_err());
        assert!(Whois::parse(&[1, 2, 3, 4]).is_err());
        let w = Whois::parse(&[0, 0, 0, 0, 9, 1, 2]).unwrap();
        assert_eq!(
            w.addresses.iter().collect::<Vec<_>>(),
            [Address::from_u64(9)]
        );
        let big = vec![1u8; 5 * (MAX_WHOIS_ADDRESSES + 10)];
        assert_eq!(
            Whois::parse(&big).unwrap().addresses.len(),
            MAX_WHOIS_ADDRESSES
        );
        let mut out = Vec::new();
        Whois::emit_request([Address::from_u64(9)], &mut out);
        assert_eq!(Whois::parse(&out).unwrap(), w);
    }

    #[test]
    fn whois_reply_skips_only_bad_slots() {
        let good = Identity::from_parts(Address::from_u64(0x0102030405), [3; 64], None);
        let mut body = Vec::new();
        good.emit_binary_public(&mut body);
        good.emit_binary_public(&mut body);
        body[71 + 5] = 1; // second identity: unknown key type
        good.emit_binary_public(&mut body);
        body.extend_from_slice(&[0; 10]); // trailing partial slot
        let reply = WhoisReply::parse(&body).unwrap();
        assert_eq!(reply.identities, [good.clone(), good]);
        assert_eq!(reply.skipped, 2);
    }
}
