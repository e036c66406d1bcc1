//! `wire`: every ZeroTier V1 codec as a zero-copy view and/or a validated representation.
//!
//! Rules for this room (smoltcp `wire` style):
//! - parsing never panics and never allocates in proportion to attacker input beyond the
//!   documented caps; every length is checked before it is used;
//! - every representation has `parse` and `emit`, and `parse(emit(x)) == x`;
//! - no crypto and no protocol state here: callers verify signatures and MACs (`crate::crypto`).

mod address;
pub mod cursor;
mod error;

pub use address::{Address, NetworkId};
pub use error::{Error, Result};
