//! Certificate of Ownership (COO): the controller's statement that a member owns some MAC or
//! IP addresses ("things"), used to accept frames from managed IPs.
//!
//! ```text
//! u64 nwid | i64 ts | u64 flags | u32 id | u16 n (<= 16)
//! n x { u8 thing type (1 MAC, 2 IPv4, 3 IPv6) | 16-byte value, zero padded }
//! 5 issuedTo | 5 signedBy | u8 1 | u16 96 | 96 signature | u16 additional fields length + bytes
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Credential, CredentialType, emit_signature, read_signature, skip_additional_fields};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, Error, NetworkId, Result};

/// Most things one COO may list (`ZT_CERTIFICATEOFOWNERSHIP_MAX_THINGS`).
pub const MAX_THINGS: usize = 16;
/// Size of a thing's value slot on the wire.
pub const THING_VALUE_LEN: usize = 16;
/// Thing type: a 6-byte MAC address.
pub const THING_MAC: u8 = 1;
/// Thing type: a 4-byte IPv4 address.
pub const THING_IPV4: u8 = 2;
/// Thing type: a 16-byte IPv6 address.
pub const THING_IPV6: u8 = 3;

/// One owned thing, kept exactly as on the wire (type byte and 16-byte slot) so the
/// signature always covers the received bytes; typed views are [`Thing::ip`] and
/// [`Thing::mac`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Thing {
    pub thing_type: u8,
    pub value: [u8; THING_VALUE_LEN],
}

impl Thing {
    pub fn from_ip(ip: IpAddr) -> Thing {
        let mut value = [0u8; THING_VALUE_LEN];
        match ip {
            IpAddr::V4(v4) => {
                value[..4].copy_from_slice(&v4.octets());
                Thing {
                    thing_type: THING_IPV4,
                    value,
                }
            }
            IpAddr::V6(v6) => Thing {
                thing_type: THING_IPV6,
                value: v6.octets(),
            },
        }
    }

    pub fn from_mac(mac: [u8; 6]) -> Thing {
        let mut value = [0u8; THING_VALUE_LEN];
        value[..6].copy_from_slice(&mac);
        Thing {
            thing_type: THING_MAC,
            value,
        }
    }

    /// The IP, if this is an IPv4 or IPv6 thing.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.thing_type {
            THING_IPV4 => {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(&self.value[..4]);
                Some(IpAddr::V4(Ipv4Addr::from(v4)))
            }
            THING_IPV6 => Some(IpAddr::V6(Ipv6Addr::from(self.value))),
            _ => None,
        }
    }

    /// The MAC, if this is a MAC thing.
    pub fn mac(&self) -> Option<[u8; 6]> {
        if self.thing_type != THING_MAC {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&self.value[..6]);
        Some(mac)
    }

    /// The reference's ownership test: same type and the value starts with `bytes`.
    fn matches(&self, thing_type: u8, bytes: &[u8]) -> bool {
        self.thing_type == thing_type && self.value.starts_with(bytes)
    }
}

/// A certificate of ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateOfOwnership {
    pub network_id: NetworkId,
    pub timestamp: i64,
    pub flags: u64,
    pub id: u32,
    /// At most [`MAX_THINGS`]; [`CertificateOfOwnership::emit`] writes no more than that.
    pub things: Vec<Thing>,
    pub issued_to: Address,
    pub signed_by: Address,
    /// All zero while unsigned.
    pub signature: [u8; SIGNATURE_LEN],
}

impl CertificateOfOwnership {
    /// An unsigned COO without things.
    pub fn new(network_id: NetworkId, timestamp: i64, issued_to: Address, id: u32) -> Self {
        CertificateOfOwnership {
            network_id,
            timestamp,
            flags: 0,
            id,
            things: Vec::new(),
            issued_to,
            signed_by: Address::default(),
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    /// Adds a thing; `false` (and nothing added) once [`MAX_THINGS`] are listed.
    pub fn add_thing(&mut self, thing: Thing) -> bool {
        if self.things.len() >= MAX_THINGS {
            return false;
        }
        self.things.push(thing);
        true
    }

    /// Whether `ip` is listed (IPv4-mapped IPv6 is not unmapped, as in the reference).
    pub fn owns_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self
                .things
                .iter()
                .any(|t| t.matches(THING_IPV4, &v4.octets())),
            IpAddr::V6(v6) => self
                .things
                .iter()
                .any(|t| t.matches(THING_IPV6, &v6.octets())),
        }
    }

    /// Whether `mac` is listed.
    pub fn owns_mac(&self, mac: [u8; 6]) -> bool {
        self.things.iter().any(|t| t.matches(THING_MAC, &mac))
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let network_id = NetworkId(r.u64("COO network id")?);
        let timestamp = r.i64("COO timestamp")?;
        let flags = r.u64("COO flags")?;
        let id = r.u32("COO id")?;
        let count = usize::from(r.u16("COO thing count")?);
        if count > MAX_THINGS {
            return Err(Error::TooLarge("COO things (more than 16)"));
        }
        let mut things = Vec::with_capacity(count);
        for _ in 0..count {
            things.push(Thing {
                thing_type: r.u8("COO thing type")?,
                value: r.array("COO thing value")?,
            });
        }
        let coo = CertificateOfOwnership {
            network_id,
            timestamp,
            flags,
            id,
            things,
            issued_to: Address::from_bytes(&r.array("COO issued to")?),
            signed_by: Address::from_bytes(&r.array("COO signed by")?),
            signature: read_signature(r)?,
        };
        skip_additional_fields(r)?;
        Ok(coo)
    }

    /// Parses one COO at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let coo = Self::read(&mut r)?;
        Ok((coo, r.position()))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put_fields(out);
        emit_signature(&self.signature, out);
        out.put_u16(0);
    }

    fn put_fields(&self, out: &mut Vec<u8>) {
        let things = self.things.get(..MAX_THINGS).unwrap_or(&self.things);
        out.put_u64(self.network_id.0);
        out.put_i64(self.timestamp);
        out.put_u64(self.flags);
        out.put_u32(self.id);
        // At most 16 things are written, so the count fits.
        out.put_u16(things.len() as u16);
        for t in things {
            out.put_u8(t.thing_type);
            out.put_bytes(&t.value);
        }
        out.put_bytes(&self.issued_to.to_bytes());
        out.put_bytes(&self.signed_by.to_bytes());
    }

    /// The bytes the signature covers (7.7).
    pub fn signed_message(&self) -> Vec<u8> {
        super::signed_message(|out| self.put_fields(out))
    }

    /// Signs with `signer` (which becomes `signed_by`); `false` and unchanged without a secret.
    pub fn sign(&mut self, signer: &Identity) -> bool {
        if !signer.has_secret() {
            return false;
        }
        self.signed_by = signer.address();
        super::sign_into(signer, &self.signed_message(), &mut self.signature)
    }

    /// True iff `signer` signed this COO and is the controller of its network.
    pub fn verify(&self, signer: &Identity) -> bool {
        let message = self.signed_message();
        super::signed_by_controller(
            self.network_id,
            self.signed_by,
            signer,
            &message,
            &self.signature,
        )
    }
}

impl Credential for CertificateOfOwnership {
    const TYPE: CredentialType = CredentialType::CertificateOfOwnership;
    fn read_from(r: &mut Reader<'_>) -> Result<Self> {
        CertificateOfOwnership::read(r)
    }
    fn emit_to(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
    fn credential_network_id(&self) -> NetworkId {
        self.network_id
    }
    fn credential_timestamp(&self) -> i64 {
        self.timestamp
    }
    fn credential_id(&self) -> u32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);

    #[test]
    fn things_and_ownership() {
        let ip4: IpAddr = "10.147.17.5".parse().unwrap();
        let ip6: IpAddr = "fd00::1".parse().unwrap();
        let t4 = Thing::from_ip(ip4);
        assert_eq!(t4.thing_type, THING_IPV4);
        assert_eq!(&t4.value[..4], &[10, 147, 17, 5]);
        assert_eq!(&t4.value[4..], &[0u8; 12]);
        assert_eq!(t4.ip(), Some(ip4));
        assert_eq!(t4.mac(), None);
        let mac = Thing::from_mac([2, 3, 4, 5, 6, 7]);
        assert_eq!(mac.mac(), Some([2, 3, 4, 5, 6, 7]));
        let mut coo = CertificateOfOwnership::new(NWID, 1, Address::from_u64(5), 0);
        assert!(coo.add_thing(t4));
        assert!(coo.add_thing(Thing::from_ip(ip6)));
        assert!(coo.add_thing(mac));
        assert!(coo.owns_ip(ip4));
        assert!(coo.owns_ip(ip6));
        assert!(!coo.owns_ip("10.147.17.6".parse().unwrap()));
        assert!(coo.owns_mac([2, 3, 4, 5, 6, 7]));
        for _ in 3..MAX_THINGS {
            assert!(coo.add_thing(mac));
        }
        assert!(!coo.add_thing(mac));
    }

    #[test]
    fn sign_verify_and_caps() {
        let (a, b) = identities();
        let mut coo = CertificateOfOwnership::new(NWID, 1_700_000_000_000, b.address(), 0);
        coo.add_thing(Thing::from_ip("10.147.17.5".parse().unwrap()));
        assert!(coo.sign(&a));
        assert!(coo.verify(&a));
        assert!(!coo.verify(&b));
        let mut out = Vec::new();
        coo.emit(&mut out);
        assert_eq!(out.len(), 30 + 17 + 10 + 3 + 96 + 2);
        assert_eq!(
            CertificateOfOwnership::parse(&out).unwrap(),
            (coo.clone(), out.len())
        );
        for len in 0..out.len() {
            assert!(CertificateOfOwnership::parse(&out[..len]).is_err());
        }
        // A count above 16 is refused before anything is read or allocated.
        let mut too_many = out.clone();
        too_many[28..30].copy_from_slice(&17u16.to_be_bytes());
        assert!(matches!(
            CertificateOfOwnership::parse(&too_many),
            Err(Error::TooLarge(_))
        ));
        // Emit never writes more than 16 things.
        coo.things = vec![Thing::from_mac([1; 6]); 20];
        let mut out = Vec::new();
        coo.emit(&mut out);
        assert_eq!(
            CertificateOfOwnership::parse(&out).unwrap().0.things.len(),
            MAX_THINGS
        );
    }

    fn arb_coo() -> impl Strategy<Value = CertificateOfOwnership> {
        (
            (any::<u64>(), any::<i64>(), any::<u64>(), any::<u32>()),
            proptest::collection::vec(any::<(u8, [u8; 16])>(), 0..=MAX_THINGS),
            arb_address(),
            arb_address(),
            arb_signature(),
        )
            .prop_map(
                |((n, timestamp, flags, id), things, issued_to, signed_by, signature)| {
                    CertificateOfOwnership {
                        network_id: NetworkId(n),
                        timestamp,
                        flags,
                        id,
                        things: things
                            .into_iter()
                            .map(|(thing_type, value)| Thing { thing_type, value })
                            .collect(),
                        issued_to,
                        signed_by,
                        signature,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
            if let Ok((coo, _)) = CertificateOfOwnership::parse(&bytes) {
                let mut out = Vec::new();
                coo.emit(&mut out);
                prop_assert_eq!(CertificateOfOwnership::parse(&out).unwrap().0, coo);
            }
        }

        #[test]
        fn round_trip(coo in arb_coo()) {
            let mut out = Vec::new();
            coo.emit(&mut out);
            prop_assert_eq!(CertificateOfOwnership::parse(&out).unwrap(), (coo, out.len()));
        }
    }
}
