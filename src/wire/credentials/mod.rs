//! Network credentials other than the COM (section 7.7): tags, certificates of ownership,
//! capabilities and revocations, as carried in netconf `TAG`/`COO`/`CAP` and in
//! NETWORK_CREDENTIALS.
//!
//! They share two conventions, which live here:
//! - the signature block `u8 type (1 = C25519) ‖ u16 length (96) ‖ signature`; a block of
//!   another type is skipped and leaves the signature zero (so it never verifies), a type-1
//!   block of another length is malformed, as in the reference;
//! - the signed message `u64 0x7f7f7f7f7f7f7f7f ‖ fields without the signature block ‖ u16 0 ‖
//!   u64 0x7f7f7f7f7f7f7f7f`, and a trailing `u16 length ‖ bytes` of additional fields that
//!   readers skip and writers leave empty.
//!
//! Every count is bounded by the reference's cap before anything is allocated.

mod capability;
mod coo;
mod revocation;
mod tag;

pub use capability::{Capability, ChainVerification, CustodyEntry, MAX_CUSTODY_CHAIN_LENGTH};
pub use coo::{
    CertificateOfOwnership, MAX_THINGS, THING_IPV4, THING_IPV6, THING_MAC, THING_VALUE_LEN, Thing,
};
pub use revocation::{FLAG_FAST_PROPAGATE, Revocation};
pub use tag::Tag;

use super::com::CertificateOfMembership;
use super::cursor::{Reader, Writer};
use super::{Address, Error, NetworkId, Result};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;

/// Marker at both ends of a credential's signed message.
pub const SIGNED_MESSAGE_MARKER: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// Signature type 1: the 96-byte C25519 scheme of section 1.6.
pub const SIGNATURE_TYPE_C25519: u8 = 1;

/// Most capabilities, tags and certificates of ownership a netconf may carry.
pub const MAX_NETCONF_CAPABILITIES: usize = 128;
pub const MAX_NETCONF_TAGS: usize = 128;
pub const MAX_NETCONF_COOS: usize = 4;

/// The credential type byte (revocations name the type they revoke; also used by
/// NETWORK_CREDENTIALS bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialType {
    Null,
    CertificateOfMembership,
    Capability,
    Tag,
    CertificateOfOwnership,
    Revocation,
    /// A type this implementation does not know; kept because the byte is signed.
    Unknown(u8),
}

impl CredentialType {
    pub fn from_byte(b: u8) -> CredentialType {
        match b {
            0 => CredentialType::Null,
            1 => CredentialType::CertificateOfMembership,
            2 => CredentialType::Capability,
            3 => CredentialType::Tag,
            4 => CredentialType::CertificateOfOwnership,
            6 => CredentialType::Revocation,
            other => CredentialType::Unknown(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            CredentialType::Null => 0,
            CredentialType::CertificateOfMembership => 1,
            CredentialType::Capability => 2,
            CredentialType::Tag => 3,
            CredentialType::CertificateOfOwnership => 4,
            CredentialType::Revocation => 6,
            CredentialType::Unknown(b) => b,
        }
    }
}

/// What every credential codec offers, so containers (netconf, NETWORK_CREDENTIALS) can
/// handle them uniformly.
pub trait Credential: Sized {
    /// The type byte of this credential.
    const TYPE: CredentialType;
    /// Reads one credential, consuming exactly its bytes.
    fn read_from(r: &mut Reader<'_>) -> Result<Self>;
    /// Appends the serialized credential.
    fn emit_to(&self, out: &mut Vec<u8>);
    /// The network this credential belongs to.
    fn credential_network_id(&self) -> NetworkId;
    /// Issue time in ms (revocations: the threshold).
    fn credential_timestamp(&self) -> i64;
    /// The credential id (0 for COMs).
    fn credential_id(&self) -> u32;
}

/// Parses a concatenation of credentials (netconf `CAP`, `TAG`, `COO`) that must end exactly
/// at the end of `buf`; more than `max` of them is [`Error::TooLarge`].
pub fn parse_list<C: Credential>(buf: &[u8], max: usize) -> Result<Vec<C>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        if out.len() >= max {
            return Err(Error::TooLarge("credential list"));
        }
        out.push(C::read_from(&mut r)?);
    }
    Ok(out)
}

/// Appends every credential in order.
pub fn emit_list<C: Credential>(credentials: &[C], out: &mut Vec<u8>) {
    for c in credentials {
        c.emit_to(out);
    }
}

/// Reads a signature block. Type 1 must have length 96; any other type is skipped and yields
/// an all-zero signature, which never verifies.
pub(crate) fn read_signature(r: &mut Reader<'_>) -> Result<[u8; SIGNATURE_LEN]> {
    let sig_type = r.u8("credential signature type")?;
    let len = r.u16("credential signature length")?;
    if sig_type == SIGNATURE_TYPE_C25519 {
        if usize::from(len) != SIGNATURE_LEN {
            return Err(Error::Malformed("credential signature length (must be 96)"));
        }
        r.array("credential signature")
    } else {
        r.skip(usize::from(len), "credential signature (other type)")?;
        Ok([0u8; SIGNATURE_LEN])
    }
}

/// Writes a type-1 signature block.
pub(crate) fn emit_signature(signature: &[u8; SIGNATURE_LEN], out: &mut Vec<u8>) {
    out.put_u8(SIGNATURE_TYPE_C25519);
    out.put_u16(SIGNATURE_LEN as u16);
    out.put_bytes(signature);
}

/// Skips the trailing additional-fields block (`u16 length ‖ bytes`).
pub(crate) fn skip_additional_fields(r: &mut Reader<'_>) -> Result<()> {
    let len = r.u16("credential additional fields length")?;
    r.skip(usize::from(len), "credential additional fields")
}

/// Wraps `fields` (the credential without its signature block and additional fields) into
/// the signed message.
pub(crate) fn signed_message(fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.put_u64(SIGNED_MESSAGE_MARKER);
    fields(&mut out);
    out.put_u16(0);
    out.put_u64(SIGNED_MESSAGE_MARKER);
    out
}

/// Signs `message` into `signature`; `false` and nothing changed without a secret. Callers
/// set `signed_by` first, since the message covers it.
pub(crate) fn sign_into(
    signer: &Identity,
    message: &[u8],
    signature: &mut [u8; SIGNATURE_LEN],
) -> bool {
    match signer.sign(message) {
        Some(sig) => {
            *signature = sig;
            true
        }
        None => false,
    }
}

/// The verification rule they share: `signer` signed it and is the network's controller.
pub(crate) fn signed_by_controller(
    network_id: NetworkId,
    signed_by: Address,
    signer: &Identity,
    message: &[u8],
    signature: &[u8],
) -> bool {
    signed_by == signer.address()
        && network_id.controller() == signer.address()
        && signer.verify(message, signature)
}

impl Credential for CertificateOfMembership {
    const TYPE: CredentialType = CredentialType::CertificateOfMembership;
    fn read_from(r: &mut Reader<'_>) -> Result<Self> {
        CertificateOfMembership::read(r)
    }
    fn emit_to(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
    fn credential_network_id(&self) -> NetworkId {
        self.network_id()
    }
    fn credential_timestamp(&self) -> i64 {
        self.timestamp()
    }
    fn credential_id(&self) -> u32 {
        0
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use proptest::prelude::*;

    use crate::crypto::Identity;
    use crate::crypto::c25519::SIGNATURE_LEN;
    use crate::wire::Address;

    /// Test controller A and member B from the reference vectors (throw-away keys).
    pub fn identities() -> (Identity, Identity) {
        let a: Identity = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729:a2687c7d2d487480769f12bff7271929086794cd5a16cab28441f0c72d598c230e141283e4d97a390dff97343b1bb9b90d4e18bd082934dee1bdab9a157bc749".parse().unwrap();
        let b: Identity = "608938c440:0:54903ae4c5e9ba615472670814b8da4fec929a0371ffb46597bcb80ddb46f83ab86f516b474a3a2f1404741b63050f3f31d08dfacd499812ed250876287a46cb:0ef0860f9998c02a904cdbcdf633e093020504ed1d6317d0ed55d9aeb96aad4b295fb28bfb431b4ba06a2a5e585f5c26bf0d10d02db1f1ead2c0647a2bf8cc42".parse().unwrap();
        (a, b)
    }

    pub fn arb_address() -> impl Strategy<Value = Address> {
        (0u64..(1 << 40)).prop_map(Address::from_u64)
    }

    pub fn arb_nonzero_address() -> impl Strategy<Value = Address> {
        (1u64..(1 << 40)).prop_map(Address::from_u64)
    }

    pub fn arb_signature() -> impl Strategy<Value = [u8; SIGNATURE_LEN]> {
        (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b, c)| {
            let mut s = [0u8; SIGNATURE_LEN];
            s[..32].copy_from_slice(&a);
            s[32..64].copy_from_slice(&b);
            s[64..].copy_from_slice(&c);
            s
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_blocks() {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[0] = 9;
        let mut out = Vec::new();
        emit_signature(&sig, &mut out);
        assert_eq!(&out[..3], &[1, 0, 96]);
        assert_eq!(read_signature(&mut Reader::new(&out)), Ok(sig));
        // Another type is skipped and leaves a zero signature.
        let other = [7u8, 0, 2, 0xaa, 0xbb];
        let mut r = Reader::new(&other);
        assert_eq!(read_signature(&mut r), Ok([0u8; SIGNATURE_LEN]));
        assert!(r.is_empty());
        // Type 1 with another length is malformed.
        assert!(matches!(
            read_signature(&mut Reader::new(&[1, 0, 95])),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn credential_types() {
        for b in 0..=255u8 {
            assert_eq!(CredentialType::from_byte(b).to_byte(), b);
        }
        assert_eq!(CredentialType::from_byte(6), CredentialType::Revocation);
        assert_eq!(CredentialType::from_byte(5), CredentialType::Unknown(5));
    }

    #[test]
    fn lists_are_capped() {
        let (a, b) = test_support::identities();
        let mut tag = Tag::new(
            crate::wire::NetworkId(0x7c2dfee12c000001),
            1,
            b.address(),
            1,
            2,
        );
        assert!(tag.sign(&a));
        let mut buf = Vec::new();
        emit_list(&[tag.clone(), tag.clone(), tag.clone()], &mut buf);
        assert_eq!(parse_list::<Tag>(&buf, 3).unwrap().len(), 3);
        assert!(matches!(
            parse_list::<Tag>(&buf, 2),
            Err(Error::TooLarge(_))
        ));
        buf.push(0);
        assert!(parse_list::<Tag>(&buf, 8).is_err());
        assert_eq!(parse_list::<Tag>(&[], 8).unwrap(), Vec::<Tag>::new());
    }
}
