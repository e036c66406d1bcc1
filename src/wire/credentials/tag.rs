//! Tag: a controller-signed `(id, value)` pair attached to a member, matched by the
//! `MATCH_TAGS_*` / `MATCH_TAG_*` rules.
//!
//! ```text
//! u64 nwid | i64 ts | u32 id | u32 value | 5 issuedTo | 5 signedBy
//! u8 1 | u16 96 | 96 signature | u16 additional fields length (0) + bytes
//! ```

use super::{Credential, CredentialType, emit_signature, read_signature, skip_additional_fields};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, NetworkId, Result};

/// A tag credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub network_id: NetworkId,
    pub timestamp: i64,
    pub id: u32,
    pub value: u32,
    pub issued_to: Address,
    pub signed_by: Address,
    /// All zero while unsigned.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Tag {
    /// An unsigned tag.
    pub fn new(
        network_id: NetworkId,
        timestamp: i64,
        issued_to: Address,
        id: u32,
        value: u32,
    ) -> Tag {
        Tag {
            network_id,
            timestamp,
            id,
            value,
            issued_to,
            signed_by: Address::default(),
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Tag> {
        let tag = Tag {
            network_id: NetworkId(r.u64("tag network id")?),
            timestamp: r.i64("tag timestamp")?,
            id: r.u32("tag id")?,
            value: r.u32("tag value")?,
            issued_to: Address::from_bytes(&r.array("tag issued to")?),
            signed_by: Address::from_bytes(&r.array("tag signed by")?),
            signature: read_signature(r)?,
        };
        skip_additional_fields(r)?;
        Ok(tag)
    }

    /// Parses one tag at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Tag, usize)> {
        let mut r = Reader::new(buf);
        let tag = Self::read(&mut r)?;
        Ok((tag, r.position()))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put_fields(out);
        emit_signature(&self.signature, out);
        out.put_u16(0);
    }

    fn put_fields(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        out.put_i64(self.timestamp);
        out.put_u32(self.id);
        out.put_u32(self.value);
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

    /// True iff `signer` signed this tag and is the controller of its network.
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

impl Credential for Tag {
    const TYPE: CredentialType = CredentialType::Tag;
    fn read_from(r: &mut Reader<'_>) -> Result<Self> {
        Tag::read(r)
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
    fn sign_verify_and_layout() {
        let (a, b) = identities();
        let mut tag = Tag::new(NWID, 1_700_000_000_000, b.address(), 7, 42);
        assert!(!tag.verify(&a));
        assert!(!tag.sign(&a.to_public()));
        assert!(tag.sign(&a));
        assert!(tag.verify(&a));
        assert!(!tag.verify(&b));
        let mut out = Vec::new();
        tag.emit(&mut out);
        assert_eq!(out.len(), 8 + 8 + 4 + 4 + 5 + 5 + 3 + 96 + 2);
        let msg = tag.signed_message();
        assert_eq!(&msg[..8], &[0x7f; 8]);
        assert_eq!(
            &msg[msg.len() - 10..],
            &[0, 0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f]
        );
        assert_eq!(Tag::parse(&out).unwrap(), (tag.clone(), out.len()));
        for len in 0..out.len() {
            assert!(Tag::parse(&out[..len]).is_err());
        }
        // Tampering breaks the signature.
        let mut forged = tag.clone();
        forged.value = 43;
        assert!(!forged.verify(&a));
        // Additional fields are skipped.
        let mut extended = out.clone();
        let n = extended.len();
        extended[n - 1] = 2;
        extended.extend_from_slice(&[1, 2]);
        assert_eq!(Tag::parse(&extended).unwrap(), (tag, extended.len()));
    }

    fn arb_tag() -> impl Strategy<Value = Tag> {
        (
            any::<u64>(),
            any::<i64>(),
            any::<u32>(),
            any::<u32>(),
            arb_address(),
            arb_address(),
            arb_signature(),
        )
            .prop_map(
                |(n, timestamp, id, value, issued_to, signed_by, signature)| Tag {
                    network_id: NetworkId(n),
                    timestamp,
                    id,
                    value,
                    issued_to,
                    signed_by,
                    signature,
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((tag, _)) = Tag::parse(&bytes) {
                let mut out = Vec::new();
                tag.emit(&mut out);
                prop_assert_eq!(Tag::parse(&out).unwrap().0, tag);
            }
        }

        #[test]
        fn round_trip(tag in arb_tag()) {
            let mut out = Vec::new();
            tag.emit(&mut out);
            prop_assert_eq!(Tag::parse(&out).unwrap(), (tag, out.len()));
        }
    }
}
