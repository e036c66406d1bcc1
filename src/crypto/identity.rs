//! ZeroTier V1 identities: a 40-bit address bound by proof-of-work to a combined C25519 public
//! key, with an optional secret. String form `addr:0:public[:secret]`, binary form
//! `addr(5) type(1) public(64) secret_len(1) [secret(64)]`.

use core::fmt;
use core::str::FromStr;

use sha2::{Digest, Sha384, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hex;
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, Error, Result};

use super::c25519::{self, PUBLIC_LEN, SECRET_LEN, SIGNATURE_LEN, SecretKey};
use super::pow::{address_from_digest, identity_digest};

/// Length of a public identity in binary form.
pub const BINARY_PUBLIC_LEN: usize = 71;

/// The 48-byte symmetric key two identities agree on: `SHA-512(X25519(a, B))[..48]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SharedKey(pub(crate) [u8; 48]);

impl SharedKey {
    pub fn from_bytes(bytes: [u8; 48]) -> Self {
        SharedKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

/// A node identity. Equality compares address and public key only.
#[derive(Clone)]
pub struct Identity {
    address: Address,
    public: [u8; PUBLIC_LEN],
    secret: Option<SecretKey>,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address && self.public == other.public
    }
}
impl Eq for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identity({}, secret: {})",
            self.address,
            self.secret.is_some()
        )
    }
}

impl Identity {
    /// Builds an identity from parts without checking the proof of work
    /// (see [`Identity::locally_validate`]).
    pub fn from_parts(
        address: Address,
        public: [u8; PUBLIC_LEN],
        secret: Option<SecretKey>,
    ) -> Self {
        Identity {
            address,
            public,
            secret,
        }
    }

    /// Generates a new identity. `progress` is called with the number of candidate keys tried
    /// so far (each costs one 2 MiB memory-hard hash).
    pub fn generate_with_progress(mut progress: impl FnMut(u32)) -> Identity {
        let mut scratch = Vec::new();
        let mut secret = [0u8; SECRET_LEN];
        c25519::random_bytes(&mut secret);
        let mut tries = 0u32;
        loop {
            // Vary the X25519 half only; the Ed25519 half stays fixed, as in the reference.
            let mut counter = [0u8; 8];
            counter.copy_from_slice(&secret[8..16]);
            secret[8..16]
                .copy_from_slice(&u64::from_le_bytes(counter).wrapping_add(1).to_le_bytes());
            let candidate = SecretKey::from_bytes(secret);
            let public = candidate.public_key();
            tries += 1;
            progress(tries);
            let digest = identity_digest(&public, &mut scratch);
            if let Some(address) = address_from_digest(&digest) {
                secret.zeroize();
                return Identity {
                    address,
                    public,
                    secret: Some(candidate),
                };
            }
        }
    }

    /// Generates a new identity without progress reporting.
    pub fn generate() -> Identity {
        Self::generate_with_progress(|_| {})
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn public_key(&self) -> &[u8; PUBLIC_LEN] {
        &self.public
    }

    pub fn secret_key(&self) -> Option<&SecretKey> {
        self.secret.as_ref()
    }

    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// The same identity without its secret.
    pub fn to_public(&self) -> Identity {
        Identity {
            address: self.address,
            public: self.public,
            secret: None,
        }
    }

    /// Runs the full proof-of-work check: the address must be the one derived from the public
    /// key (and not reserved), and the secret, if present, must match the public key.
    /// Costs one 2 MiB memory-hard hash: rate-limit callers on untrusted input.
    pub fn locally_validate(&self) -> bool {
        if let Some(secret) = &self.secret
            && secret.public_key() != self.public
        {
            return false;
        }
        let digest = identity_digest(&self.public, &mut Vec::new());
        address_from_digest(&digest) == Some(self.address)
    }

    /// Signs `msg` (96-byte format); `None` without a secret.
    pub fn sign(&self, msg: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
        self.secret.as_ref().map(|s| s.sign(msg))
    }

    /// Verifies a 96-byte signature made by this identity.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        c25519::verify(&self.public, msg, signature)
    }

    /// Agrees on the 48-byte symmetric key with `other`; `None` without our secret.
    pub fn agree(&self, other: &Identity) -> Option<SharedKey> {
        let secret = self.secret.as_ref()?;
        let mut raw = secret.x25519(&other.public);
        let digest = Sha512::digest(raw);
        raw.zeroize();
        let mut key = [0u8; 48];
        key.copy_from_slice(&digest[..48]);
        Some(SharedKey(key))
    }

    /// `SHA-384(address ‖ public key)`, the value certificates of membership pin.
    pub fn public_key_hash(&self) -> [u8; 48] {
        let mut h = Sha384::new();
        h.update(self.address.to_bytes());
        h.update(self.public);
        let mut out = [0u8; 48];
        out.copy_from_slice(&h.finalize());
        out
    }

    /// Parses the binary form at the start of `buf`; returns the identity and bytes consumed.
    /// Checks syntax only, not the proof of work.
    pub fn parse_binary(buf: &[u8]) -> Result<(Identity, usize)> {
        let mut r = Reader::new(buf);
        let identity = Self::read_binary(&mut r)?;
        Ok((identity, r.position()))
    }

    /// Reads the binary form from a cursor (used by codecs that embed identities).
    pub fn read_binary(r: &mut Reader<'_>) -> Result<Identity> {
        let address = Address::from_bytes(&r.array("identity address")?);
        if address.is_reserved() {
            return Err(Error::Malformed("identity address (reserved)"));
        }
        if r.u8("identity type")? != 0 {
            return Err(Error::Unsupported("identity type other than 0 (C25519)"));
        }
        let public = r.array::<PUBLIC_LEN>("identity public key")?;
        let secret = match r.u8("identity secret length")? {
            0 => None,
            64 => Some(SecretKey::from_bytes(r.array("identity secret key")?)),
            _ => return Err(Error::Malformed("identity secret length")),
        };
        Ok(Identity {
            address,
            public,
            secret,
        })
    }

    /// Appends the public binary form (71 bytes; the secret is never put on the wire).
    pub fn emit_binary_public(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.address.to_bytes());
        out.put_u8(0);
        out.put_bytes(&self.public);
        out.put_u8(0);
    }

    /// Appends the binary form including the secret, if any.
    pub fn emit_binary_with_secret(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.address.to_bytes());
        out.put_u8(0);
        out.put_bytes(&self.public);
        match &self.secret {
            Some(s) => {
                out.put_u8(64);
                out.put_bytes(s.as_bytes());
            }
            None => out.put_u8(0),
        }
    }

    /// `addr:0:public` (no secret).
    pub fn to_public_string(&self) -> String {
        format!("{}:0:{}", self.address, hex::encode(&self.public))
    }

    /// `addr:0:public:secret` if the secret is known, else the public string.
    pub fn to_secret_string(&self) -> String {
        match &self.secret {
            Some(s) => format!("{}:{}", self.to_public_string(), hex::encode(s.as_bytes())),
            None => self.to_public_string(),
        }
    }
}

impl fmt::Display for Identity {
    /// The public string form; secrets are never printed by `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_public_string())
    }
}

impl FromStr for Identity {
    type Err = Error;

    /// Parses `addr:0:public[:secret]`. Checks syntax and that a secret matches its public
    /// key; the proof of work is checked by [`Identity::locally_validate`].
    fn from_str(s: &str) -> Result<Identity> {
        let s = s.trim();
        let fields: Vec<&str> = s.splitn(5, ':').collect();
        if fields.len() < 3 || fields.len() > 4 {
            return Err(Error::Malformed(
                "identity string (expected addr:0:public[:secret])",
            ));
        }
        let address: Address = fields[0].parse()?;
        if address.is_reserved() {
            return Err(Error::Malformed("identity address (reserved)"));
        }
        if fields[1] != "0" {
            return Err(Error::Unsupported("identity type other than 0 (C25519)"));
        }
        let public = hex::decode_array::<PUBLIC_LEN>(fields[2])
            .ok_or(Error::Malformed("identity public key (128 hex digits)"))?;
        let secret = match fields.get(3) {
            None => None,
            Some(text) => {
                let mut bytes = hex::decode_array::<SECRET_LEN>(text)
                    .ok_or(Error::Malformed("identity secret key (128 hex digits)"))?;
                let secret = SecretKey::from_bytes(bytes);
                bytes.zeroize();
                if secret.public_key() != public {
                    return Err(Error::Malformed(
                        "identity secret key (does not match the public key)",
                    ));
                }
                Some(secret)
            }
        };
        Ok(Identity {
            address,
            public,
            secret,
        })
    }
}
