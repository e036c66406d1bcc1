//! The combined Curve25519 key pair of ZeroTier V1: 64-byte public = X25519 ‖ Ed25519, 64-byte
//! secret = X25519 scalar ‖ Ed25519 seed, and the 96-byte signature scheme
//! `Ed25519(SHA-512(msg)[..32]) ‖ SHA-512(msg)[..32]`.
//!
//! Identities use it, and so do worlds (planets/moons), whose signing keys are bare pairs.

use ed25519_dalek::{Signature as EdSignature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a combined public key.
pub const PUBLIC_LEN: usize = 64;
/// Length of a combined secret key.
pub const SECRET_LEN: usize = 64;
/// Length of a signature in ZeroTier's 96-byte format.
pub const SIGNATURE_LEN: usize = 96;

/// A combined secret key; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(pub(crate) [u8; SECRET_LEN]);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// The raw 64 bytes, for writing `identity.secret` and JSON signing keys.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Derives the combined public key (X25519 base-point multiplication and the RFC 8032
    /// Ed25519 public key of the seed).
    pub fn public_key(&self) -> [u8; PUBLIC_LEN] {
        let mut out = [0u8; PUBLIC_LEN];
        out[..32].copy_from_slice(&x25519_public(&self.0));
        out[32..].copy_from_slice(&self.signing_key().verifying_key().to_bytes());
        out
    }

    fn signing_key(&self) -> SigningKey {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&self.0[32..]);
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        key
    }

    /// Signs `msg` in the 96-byte format.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let digest = Sha512::digest(msg);
        let sig = self.signing_key().sign(&digest[..32]);
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64..].copy_from_slice(&digest[..32]);
        out
    }

    /// Raw X25519 with a peer's public key (first 32 bytes of its combined public key).
    pub(crate) fn x25519(&self, their_public: &[u8; PUBLIC_LEN]) -> [u8; 32] {
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&self.0[..32]);
        let secret = StaticSecret::from(scalar);
        scalar.zeroize();
        let mut theirs = [0u8; 32];
        theirs.copy_from_slice(&their_public[..32]);
        secret.diffie_hellman(&XPublic::from(theirs)).to_bytes()
    }
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// X25519 public key of a 32-byte secret scalar (the first half of a combined secret).
pub(crate) fn x25519_public(secret: &[u8; SECRET_LEN]) -> [u8; 32] {
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&secret[..32]);
    let s = StaticSecret::from(scalar);
    scalar.zeroize();
    XPublic::from(&s).to_bytes()
}

/// Verifies a 96-byte signature of `msg` against a combined public key. Any other length,
/// a digest mismatch or a bad Ed25519 signature is `false`.
pub fn verify(public: &[u8; PUBLIC_LEN], msg: &[u8], sig: &[u8]) -> bool {
    if sig.len() != SIGNATURE_LEN {
        return false;
    }
    let digest = Sha512::digest(msg);
    if sig[64..96] != digest[..32] {
        return false;
    }
    let mut ed_public = [0u8; 32];
    ed_public.copy_from_slice(&public[32..]);
    let Ok(key) = VerifyingKey::from_bytes(&ed_public) else {
        return false;
    };
    let Ok(sig_bytes) = <[u8; 64]>::try_from(&sig[..64]) else {
        return false;
    };
    key.verify(&digest[..32], &EdSignature::from_bytes(&sig_bytes))
        .is_ok()
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// Only if the OS has no usable random source, in which case no key can be made safely.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system random source failed");
}

/// Generates a fresh combined key pair (world signing keys, `initmoon`).
pub fn generate_keypair() -> ([u8; PUBLIC_LEN], SecretKey) {
    let mut secret = [0u8; SECRET_LEN];
    random_bytes(&mut secret);
    let secret = SecretKey(secret);
    (secret.public_key(), secret)
}
