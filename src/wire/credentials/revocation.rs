//! Revocation: the controller's order to reject a member's credentials of one type issued at
//! or before a threshold time (sent when a member is deauthorized).
//!
//! ```text
//! u32 0 | u32 id | u64 nwid | u32 0 | u32 credential id | i64 threshold | u64 flags
//! 5 target | 5 signedBy | u8 credential type | u8 1 | u16 96 | 96 signature
//! u16 additional fields length + bytes
//! ```
//!
//! The two reserved u32 words are ignored when read and written as zero, like the reference
//! (which also signs them as zero).

use super::{Credential, CredentialType, emit_signature, read_signature, skip_additional_fields};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, NetworkId, Result};

/// Flag: peers should pass the revocation on quickly ("rumor mill").
pub const FLAG_FAST_PROPAGATE: u64 = 0x1;

/// A revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Arbitrary (the reference uses a random value).
    pub id: u32,
    pub network_id: NetworkId,
    /// The revoked credential's id; 0 for COMs, which have none.
    pub credential_id: u32,
    /// Credentials of `target` with a timestamp at or below this (ms) are revoked.
    pub threshold: i64,
    pub flags: u64,
    pub target: Address,
    pub signed_by: Address,
    pub credential_type: CredentialType,
    /// All zero while unsigned.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Revocation {
    /// An unsigned revocation.
    pub fn new(
        id: u32,
        network_id: NetworkId,
        credential_id: u32,
        threshold: i64,
        flags: u64,
        target: Address,
        credential_type: CredentialType,
    ) -> Revocation {
        Revocation {
            id,
            network_id,
            credential_id,
            threshold,
            flags,
            target,
            signed_by: Address::default(),
            credential_type,
            signature: [0u8; SIGNATURE_LEN],
        }
    }

    pub fn fast_propagate(&self) -> bool {
        self.flags & FLAG_FAST_PROPAGATE != 0
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Revocation> {
        r.skip(4, "revocation reserved")?;
        let id = r.u32("revocation id")?;
        let network_id = NetworkId(r.u64("revocation network id")?);
        r.skip(4, "revocation reserved")?;
        let rev = Revocation {
            id,
            network_id,
            credential_id: r.u32("revocation credential id")?,
            threshold: r.i64("revocation threshold")?,
            flags: r.u64("revocation flags")?,
            target: Address::from_bytes(&r.array("revocation target")?),
            signed_by: Address::from_bytes(&r.array("revocation signed by")?),
            credential_type: CredentialType::from_byte(r.u8("revocation credential type")?),
            signature: read_signature(r)?,
        };
        skip_additional_fields(r)?;
        Ok(rev)
    }

    /// Parses one revocation at the start of `buf`; returns it and the bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(Revocation, usize)> {
        let mut r = Reader::new(buf);
        let rev = Self::read(&mut r)?;
        Ok((rev, r.position()))
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put_fields(out);
        emit_signature(&self.signature, out);
        out.put_u16(0);
    }

    fn put_fields(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.id);
        out.put_u64(self.network_id.0);
        out.put_u32(0);
        out.put_u32(self.credential_id);
        out.put_i64(self.threshold);
        out.put_u64(self.flags);
        out.put_bytes(&self.target.to_bytes());
        out.put_bytes(&self.signed_by.to_bytes());
        out.put_u8(self.credential_type.to_byte());
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

    /// True iff `signer` signed this revocation and is the controller of its network.
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

impl Credential for Revocation {
    const TYPE: CredentialType = CredentialType::Revocation;
    fn read_from(r: &mut Reader<'_>) -> Result<Self> {
        Revocation::read(r)
    }
    fn emit_to(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
    fn credential_network_id(&self) -> NetworkId {
        self.network_id
    }
    fn credential_timestamp(&self) -> i64 {
        self.threshold
    }
    #[expect(
        clippy::misnamed_getters,
        reason = "the trait asks for this revocation's own id; `credential_id` names the revoked one"
    )]
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
        let mut rev = Revocation::new(
            9,
            NWID,
            0,
            1_700_000_000_000,
            FLAG_FAST_PROPAGATE,
            b.address(),
            CredentialType::CertificateOfMembership,
        );
        assert!(rev.fast_propagate());
        assert!(rev.sign(&a));
        assert!(rev.verify(&a));
        assert!(!rev.verify(&b));
        let mut out = Vec::new();
        rev.emit(&mut out);
        assert_eq!(
            out.len(),
            4 + 4 + 8 + 4 + 4 + 8 + 8 + 5 + 5 + 1 + 3 + 96 + 2
        );
        assert_eq!(out[50], 1, "credential type byte");
        assert_eq!(Revocation::parse(&out).unwrap(), (rev.clone(), out.len()));
        for len in 0..out.len() {
            assert!(Revocation::parse(&out[..len]).is_err());
        }
        // Reserved words are ignored on read (and re-signed as zero, like the reference).
        let mut reserved = out.clone();
        reserved[0] = 0xee;
        assert_eq!(Revocation::parse(&reserved).unwrap().0, rev);
        let mut forged = rev.clone();
        forged.threshold += 1;
        assert!(!forged.verify(&a));
    }

    fn arb_revocation() -> impl Strategy<Value = Revocation> {
        (
            (
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<i64>(),
                any::<u64>(),
            ),
            arb_address(),
            arb_address(),
            any::<u8>(),
            arb_signature(),
        )
            .prop_map(
                |((id, n, credential_id, threshold, flags), target, signed_by, t, signature)| {
                    Revocation {
                        id,
                        network_id: NetworkId(n),
                        credential_id,
                        threshold,
                        flags,
                        target,
                        signed_by,
                        credential_type: CredentialType::from_byte(t),
                        signature,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((rev, _)) = Revocation::parse(&bytes) {
                let mut out = Vec::new();
                rev.emit(&mut out);
                prop_assert_eq!(Revocation::parse(&out).unwrap().0, rev);
            }
        }

        #[test]
        fn round_trip(rev in arb_revocation()) {
            let mut out = Vec::new();
            rev.emit(&mut out);
            prop_assert_eq!(Revocation::parse(&out).unwrap(), (rev, out.len()));
        }
    }
}
