//! `wire`: every ZeroTier V1 codec as a zero-copy view and/or a validated representation.
//!
//! Rules for this room (smoltcp `wire` style):
//! - parsing never panics and never allocates in proportion to attacker input beyond the
//!   documented caps; every length is checked before it is used;
//! - every representation has `parse` and `emit`, and `parse(emit(x)) == x`;
//! - no protocol state here beyond the bounded reassemblers the codecs need; callers verify
//!   signatures and MACs with `crate::crypto`.

mod address;
pub mod cursor;
mod error;
pub mod inet_address;
pub mod packet;
mod verb;

pub use address::{Address, NetworkId};
pub use error::{Error, Result};
pub use inet_address::InetAddress;
pub use packet::Cipher;
pub use verb::{VERB_FLAG_COMPRESSED, VERB_MASK, Verb};
