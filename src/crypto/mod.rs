//! `crypto`: ZeroTier V1 identities, key agreement, signatures and packet armor.
//!
//! Owns every secret in the process; secrets are zeroized on drop. It may use `wire` for
//! addresses and the packet header layout, and nothing above it.

pub mod c25519;
mod identity;
pub use identity::BINARY_PUBLIC_LEN;
mod pow;

pub use identity::{Identity, SharedKey};
pub use pow::{address_from_digest, identity_digest};
