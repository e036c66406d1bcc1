//! `crypto`: ZeroTier V1 identities, key agreement, signatures and packet armor.
//!
//! Owns every secret in the process; secrets are zeroized on drop. It may use `wire` for
//! addresses and the packet header layout, and nothing above it.

mod aes_gmac_siv;
pub mod armor;
pub mod c25519;
mod identity;
mod kbkdf;
mod pow;
mod salsa_poly1305;

pub use armor::{ArmorError, SymmetricKey, armor, crypt_field, dearmor};
pub use identity::BINARY_PUBLIC_LEN;
pub use identity::{Identity, SharedKey};
pub use kbkdf::{KBKDF_OUTPUT_LEN, LABEL_AES_GMAC_SIV_K0, LABEL_AES_GMAC_SIV_K1, kbkdf};
pub use pow::{address_from_digest, identity_digest};
