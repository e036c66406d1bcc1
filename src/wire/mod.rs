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

// Packet level and Ethernet.
pub mod arp;
pub mod compression;
pub mod ethernet;
pub mod fragment;
pub mod mac;
pub mod managed_ip;
pub mod ndp;
pub mod reassembly;

// Verb payloads.
pub mod verbs;

// Credentials, rules and worlds.
pub mod com;
pub mod credentials;
pub mod rules;
pub mod world;

// Dictionaries and network configuration.
pub mod dictionary;
pub mod netconf;
pub mod netconf_chunk;

pub use address::{Address, NetworkId};
pub use error::{Error, Result};
pub use inet_address::InetAddress;
pub use packet::Cipher;
pub use verb::{VERB_FLAG_COMPRESSED, VERB_MASK, Verb};
