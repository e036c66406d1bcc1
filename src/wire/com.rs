//! Certificate of Membership (COM): the controller-signed proof that a node belongs to a
//! private network (section 7.6).
//!
//! ```text
//! u8 1 (version) | u16 q (<= 8) | q x { u64 id | u64 value | u64 maxDelta } (ids non-decreasing)
//! 5 signer address (0 = unsigned) | 96 signature (only if signer != 0)
//! ```
//!
//! The signature covers the `q x 24` qualifier bytes exactly as serialized. Parsing is strict
//! (H2.8): the version, the qualifier cap and order, and every length are checked, and
//! [`CertificateOfMembership::parse_exact`] also refuses trailing bytes.

use super::cursor::{Reader, Writer};
use super::{Address, Error, NetworkId, Result};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;

/// Most qualifiers a COM may carry (`ZT_NETWORK_COM_MAX_QUALIFIERS`).
pub const MAX_QUALIFIERS: usize = 8;
/// The only COM serialization version V1 nodes exchange.
pub const VERSION: u8 = 1;
/// Largest serialized COM: header, 8 qualifiers, signer and signature.
pub const MAX_LEN: usize = 3 + MAX_QUALIFIERS * 24 + 5 + SIGNATURE_LEN;

/// Qualifier id: issue timestamp (ms); its max delta is the network's `ctmd`.
pub const QUALIFIER_TIMESTAMP: u64 = 0;
/// Qualifier id: network id, max delta 0.
pub const QUALIFIER_NETWORK_ID: u64 = 1;
/// Qualifier id: issued-to address, informational (max delta `u64::MAX`).
pub const QUALIFIER_ISSUED_TO: u64 = 2;
/// First of the four qualifier ids (3-6) carrying `SHA-384(address ‖ public key)[0..32]`.
pub const QUALIFIER_PUBLIC_KEY_HASH_FIRST: u64 = 3;
/// Max delta of informational qualifiers: any difference agrees.
pub const INFORMATIONAL: u64 = u64::MAX;

/// One `(id, value, maxDelta)` tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Qualifier {
    pub id: u64,
    pub value: u64,
    pub max_delta: u64,
}

/// A parsed or freshly issued COM. Invariants: at most [`MAX_QUALIFIERS`] qualifiers, ids
/// non-decreasing, signature present iff the signer address is non-zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateOfMembership {
    qualifiers: Vec<Qualifier>,
    signature: Option<(Address, [u8; SIGNATURE_LEN])>,
}

impl CertificateOfMembership {
    /// Builds an unsigned COM from qualifiers, sorting them by id.
    pub fn from_qualifiers(mut qualifiers: Vec<Qualifier>) -> Result<Self> {
        if qualifiers.len() > MAX_QUALIFIERS {
            return Err(Error::TooLarge("COM qualifiers (more than 8)"));
        }
        qualifiers.sort_by_key(|q| q.id);
        Ok(CertificateOfMembership {
            qualifiers,
            signature: None,
        })
    }

    /// The unsigned COM the reference controller issues: timestamp (max delta `max_delta`),
    /// network id (exact), issued-to address and the first 32 bytes of the member's public
    /// key hash as qualifiers 3-6 (informational, but checked by agreement).
    pub fn issue(
        timestamp: i64,
        max_delta: u64,
        network_id: NetworkId,
        issued_to: &Identity,
    ) -> Self {
        let hash = issued_to.public_key_hash();
        let mut qualifiers = vec![
            Qualifier {
                id: QUALIFIER_TIMESTAMP,
                value: timestamp as u64,
                max_delta,
            },
            Qualifier {
                id: QUALIFIER_NETWORK_ID,
                value: network_id.0,
                max_delta: 0,
            },
            Qualifier {
                id: QUALIFIER_ISSUED_TO,
                value: issued_to.address().to_u64(),
                max_delta: INFORMATIONAL,
            },
        ];
        for (i, word) in (QUALIFIER_PUBLIC_KEY_HASH_FIRST..).zip(hash_words(&hash)) {
            qualifiers.push(Qualifier {
                id: i,
                value: word,
                max_delta: INFORMATIONAL,
            });
        }
        CertificateOfMembership {
            qualifiers,
            signature: None,
        }
    }

    /// Reads one COM from the cursor, consuming exactly its bytes.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let version = r.u8("COM version")?;
        if version != VERSION {
            return Err(Error::Unsupported("COM version other than 1"));
        }
        let count = usize::from(r.u16("COM qualifier count")?);
        if count > MAX_QUALIFIERS {
            return Err(Error::TooLarge("COM qualifiers (more than 8)"));
        }
        let mut qualifiers = Vec::with_capacity(count);
        let mut last_id = 0u64;
        for _ in 0..count {
            let q = Qualifier {
                id: r.u64("COM qualifier id")?,
                value: r.u64("COM qualifier value")?,
                max_delta: r.u64("COM qualifier max delta")?,
            };
            if q.id < last_id {
                return Err(Error::Malformed("COM qualifier ids (not sorted)"));
            }
            last_id = q.id;
            qualifiers.push(q);
        }
        let signer = Address::from_bytes(&r.array("COM signer")?);
        let signature = if signer.to_u64() == 0 {
            None
        } else {
            Some((signer, r.array("COM signature")?))
        };
        Ok(CertificateOfMembership {
            qualifiers,
            signature,
        })
    }

    /// Parses one COM at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(buf);
        let com = Self::read(&mut r)?;
        Ok((com, r.position()))
    }

    /// Parses a buffer that must hold exactly one COM (netconf `C`); trailing bytes are an
    /// error, so a COM with extra qualifiers beyond its count never slips through.
    pub fn parse_exact(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let com = Self::read(&mut r)?;
        r.finish("COM (trailing bytes)")?;
        Ok(com)
    }

    /// Appends the serialized COM.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        // The constructor and parser keep at most 8 qualifiers.
        out.put_u16(u16::try_from(self.qualifiers.len()).unwrap_or(u16::MAX));
        self.put_qualifiers(out);
        match &self.signature {
            Some((signer, sig)) => {
                out.put_bytes(&signer.to_bytes());
                out.put_bytes(sig);
            }
            None => out.put_bytes(&[0u8; 5]),
        }
    }

    /// The serialized COM as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_LEN);
        self.emit(&mut out);
        out
    }

    /// What the signature covers: the qualifier tuples as serialized, nothing else.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.qualifiers.len() * 24);
        self.put_qualifiers(&mut out);
        out
    }

    fn put_qualifiers(&self, out: &mut Vec<u8>) {
        for q in &self.qualifiers {
            out.put_u64(q.id);
            out.put_u64(q.value);
            out.put_u64(q.max_delta);
        }
    }

    /// Signs with `signer` (which must hold its secret); `false` and unchanged otherwise.
    pub fn sign(&mut self, signer: &Identity) -> bool {
        match signer.sign(&self.signed_message()) {
            Some(sig) => {
                self.signature = Some((signer.address(), sig));
                true
            }
            None => false,
        }
    }

    /// True iff this COM was signed by `signer`, `signer` is the controller of the COM's
    /// network (7.6 step 1) and the signature verifies.
    pub fn verify(&self, signer: &Identity) -> bool {
        match &self.signature {
            Some((by, sig)) => {
                *by == signer.address()
                    && self.network_id().controller() == signer.address()
                    && signer.verify(&self.signed_message(), sig)
            }
            None => false,
        }
    }

    /// Agreement of this (their) COM with `ours` (7.6 step 3), exactly as the reference:
    /// every qualifier in ours must be present in theirs with `|ours - theirs| <= our max
    /// delta` (unsigned difference, no overflow), and if ours carries ids 3-6, theirs must
    /// carry ids 3-6 equal to the public key hash of `their_identity`. Empty COMs never agree.
    pub fn agrees_with(&self, ours: &Self, their_identity: &Identity) -> bool {
        if ours.qualifiers.is_empty() || self.qualifiers.is_empty() {
            return false;
        }
        let mut check_identity = false;
        for q in &ours.qualifiers {
            if (QUALIFIER_PUBLIC_KEY_HASH_FIRST..QUALIFIER_PUBLIC_KEY_HASH_FIRST + 4)
                .contains(&q.id)
            {
                check_identity = true;
            }
            let Some(theirs) = self.value_of(q.id) else {
                return false;
            };
            // Unsigned difference taken in whichever direction cannot wrap, as the reference.
            if q.value.abs_diff(theirs) > q.max_delta {
                return false;
            }
        }
        if check_identity {
            let hash = their_identity.public_key_hash();
            for (id, word) in (QUALIFIER_PUBLIC_KEY_HASH_FIRST..).zip(hash_words(&hash)) {
                if self.value_of(id) != Some(word) {
                    return false;
                }
            }
        }
        true
    }

    /// The value of qualifier `id`. With duplicate ids the last one wins, as in the
    /// reference's map-based lookup.
    pub fn value_of(&self, id: u64) -> Option<u64> {
        self.qualifiers
            .iter()
            .rev()
            .find(|q| q.id == id)
            .map(|q| q.value)
    }

    fn first(&self, id: u64) -> Option<&Qualifier> {
        self.qualifiers.iter().find(|q| q.id == id)
    }

    /// Every qualifier, sorted by id.
    pub fn qualifiers(&self) -> &[Qualifier] {
        &self.qualifiers
    }

    /// Issue time in ms (qualifier 0), or 0 if absent.
    pub fn timestamp(&self) -> i64 {
        self.first(QUALIFIER_TIMESTAMP)
            .map_or(0, |q| q.value as i64)
    }

    /// The timestamp's max delta (the network's `ctmd`), or 0 if absent.
    pub fn timestamp_max_delta(&self) -> u64 {
        self.first(QUALIFIER_TIMESTAMP).map_or(0, |q| q.max_delta)
    }

    /// Network id (qualifier 1), or 0 if absent.
    pub fn network_id(&self) -> NetworkId {
        NetworkId(self.first(QUALIFIER_NETWORK_ID).map_or(0, |q| q.value))
    }

    /// Issued-to address (qualifier 2), or the zero address if absent.
    pub fn issued_to(&self) -> Address {
        Address::from_u64(self.first(QUALIFIER_ISSUED_TO).map_or(0, |q| q.value))
    }

    /// The signer, if signed.
    pub fn signed_by(&self) -> Option<Address> {
        self.signature.as_ref().map(|(a, _)| *a)
    }

    /// The 96-byte signature, if signed.
    pub fn signature(&self) -> Option<&[u8; SIGNATURE_LEN]> {
        self.signature.as_ref().map(|(_, s)| s)
    }
}

/// The first 32 bytes of a public key hash as four big-endian words (qualifiers 3-6).
fn hash_words(hash: &[u8; 48]) -> impl Iterator<Item = u64> + '_ {
    hash.chunks_exact(8).take(4).map(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_be_bytes(w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn identities() -> (Identity, Identity) {
        // Throw-away test identities from the reference vectors (A = controller, B = member).
        let a: Identity = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729:a2687c7d2d487480769f12bff7271929086794cd5a16cab28441f0c72d598c230e141283e4d97a390dff97343b1bb9b90d4e18bd082934dee1bdab9a157bc749".parse().unwrap();
        let b: Identity = "608938c440:0:54903ae4c5e9ba615472670814b8da4fec929a0371ffb46597bcb80ddb46f83ab86f516b474a3a2f1404741b63050f3f31d08dfacd499812ed250876287a46cb:0ef0860f9998c02a904cdbcdf633e093020504ed1d6317d0ed55d9aeb96aad4b295fb28bfb431b4ba06a2a5e585f5c26bf0d10d02db1f1ead2c0647a2bf8cc42".parse().unwrap();
        (a, b)
    }

    const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);

    #[test]
    fn issue_sign_verify_round_trip() {
        let (a, b) = identities();
        let mut com = CertificateOfMembership::issue(1_700_000_000_000, 1_800_000, NWID, &b);
        assert_eq!(com.qualifiers().len(), 7);
        assert_eq!(com.signed_by(), None);
        assert!(!com.verify(&a));
        assert!(com.sign(&a));
        assert!(com.verify(&a));
        assert!(!com.verify(&b), "only the controller's signature counts");
        assert!(!com.sign(&b.to_public()), "signing needs a secret");
        let bytes = com.to_bytes();
        assert_eq!(bytes.len(), 3 + 7 * 24 + 5 + 96);
        assert_eq!(CertificateOfMembership::parse_exact(&bytes).unwrap(), com);
        assert_eq!(com.timestamp(), 1_700_000_000_000);
        assert_eq!(com.timestamp_max_delta(), 1_800_000);
        assert_eq!(com.network_id(), NWID);
        assert_eq!(com.issued_to(), b.address());
    }

    #[test]
    fn strict_parsing() {
        let (a, b) = identities();
        let mut com = CertificateOfMembership::issue(5, 10, NWID, &b);
        com.sign(&a);
        let bytes = com.to_bytes();
        for len in 0..bytes.len() {
            assert!(
                CertificateOfMembership::parse(&bytes[..len]).is_err(),
                "{len}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(CertificateOfMembership::parse_exact(&trailing).is_err());
        assert_eq!(
            CertificateOfMembership::parse(&trailing).unwrap().1,
            bytes.len()
        );
        let mut version2 = bytes.clone();
        version2[0] = 2;
        assert!(matches!(
            CertificateOfMembership::parse(&version2),
            Err(Error::Unsupported(_))
        ));
        let mut nine = bytes.clone();
        nine[2] = 9;
        assert!(matches!(
            CertificateOfMembership::parse(&nine),
            Err(Error::TooLarge(_))
        ));
        // Swap qualifiers 0 and 1: ids go 1, 0.
        let mut unsorted = bytes.clone();
        let (q0, q1) = (3..27, 27..51);
        let first = unsorted[q0.clone()].to_vec();
        let second = unsorted[q1.clone()].to_vec();
        unsorted[q0].copy_from_slice(&second);
        unsorted[q1].copy_from_slice(&first);
        assert!(matches!(
            CertificateOfMembership::parse(&unsorted),
            Err(Error::Malformed(_))
        ));
        // Unsigned: signer 0 and no signature.
        let unsigned = CertificateOfMembership::issue(5, 10, NWID, &b).to_bytes();
        assert_eq!(unsigned.len(), 3 + 7 * 24 + 5);
        assert!(
            CertificateOfMembership::parse_exact(&unsigned)
                .unwrap()
                .signature()
                .is_none()
        );
    }

    #[test]
    fn agreement() {
        let (a, b) = identities();
        let ours = CertificateOfMembership::issue(1_000_000, 1000, NWID, &a);
        let theirs = CertificateOfMembership::issue(1_000_500, 1000, NWID, &b);
        assert!(theirs.agrees_with(&ours, &b));
        assert!(!theirs.agrees_with(&ours, &a), "hash must be the holder's");
        let late = CertificateOfMembership::issue(1_001_001, 1000, NWID, &b);
        assert!(!late.agrees_with(&ours, &b));
        let edge = CertificateOfMembership::issue(999_000, 1000, NWID, &b);
        assert!(edge.agrees_with(&ours, &b));
        let other_net = CertificateOfMembership::issue(1_000_000, 1000, NetworkId(NWID.0 + 1), &b);
        assert!(!other_net.agrees_with(&ours, &b));
        // Their missing qualifier of ours: disagreement.
        let short =
            CertificateOfMembership::from_qualifiers(ours.qualifiers()[..3].to_vec()).unwrap();
        assert!(!short.agrees_with(&ours, &b));
        // Ours without hash qualifiers does not require theirs to have them.
        assert!(short.agrees_with(&short, &b));
        let empty = CertificateOfMembership::from_qualifiers(Vec::new()).unwrap();
        assert!(!empty.agrees_with(&ours, &b));
        assert!(!ours.agrees_with(&empty, &b));
    }

    #[test]
    fn agreement_difference_never_overflows() {
        let (_, b) = identities();
        let q = |value, max_delta| Qualifier {
            id: 9,
            value,
            max_delta,
        };
        let ours = CertificateOfMembership::from_qualifiers(vec![q(0, u64::MAX - 1)]).unwrap();
        let theirs = CertificateOfMembership::from_qualifiers(vec![q(u64::MAX, 0)]).unwrap();
        assert!(!theirs.agrees_with(&ours, &b));
        let ours = CertificateOfMembership::from_qualifiers(vec![q(u64::MAX, u64::MAX)]).unwrap();
        let theirs = CertificateOfMembership::from_qualifiers(vec![q(0, 0)]).unwrap();
        assert!(theirs.agrees_with(&ours, &b));
    }

    fn arb_com() -> impl Strategy<Value = CertificateOfMembership> {
        (
            proptest::collection::vec(any::<(u64, u64, u64)>(), 0..=MAX_QUALIFIERS),
            proptest::option::of((1u64..(1 << 40), any::<[u8; 32]>(), any::<[u8; 32]>())),
        )
            .prop_map(|(qs, sig)| {
                let mut com = CertificateOfMembership::from_qualifiers(
                    qs.into_iter()
                        .map(|(id, value, max_delta)| Qualifier {
                            id,
                            value,
                            max_delta,
                        })
                        .collect(),
                )
                .unwrap();
                com.signature = sig.map(|(a, x, y)| {
                    let mut s = [0u8; SIGNATURE_LEN];
                    s[..32].copy_from_slice(&x);
                    s[32..64].copy_from_slice(&y);
                    (Address::from_u64(a), s)
                });
                com
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok((com, used)) = CertificateOfMembership::parse(&bytes) {
                prop_assert_eq!(com.to_bytes(), &bytes[..used]);
            }
        }

        #[test]
        fn round_trip(com in arb_com()) {
            prop_assert_eq!(CertificateOfMembership::parse_exact(&com.to_bytes()).unwrap(), com);
        }
    }
}
