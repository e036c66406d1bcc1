//! 40-bit ZeroTier node addresses and 64-bit network ids.

use core::fmt;
use core::str::FromStr;

use super::{Error, Result};

/// A 40-bit node address, shown as 10 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(u64);

impl Address {
    /// Size on the wire.
    pub const LEN: usize = 5;

    /// From the low 40 bits of `v`; higher bits are discarded.
    pub const fn from_u64(v: u64) -> Self {
        Address(v & 0xff_ffff_ffff)
    }

    pub const fn to_u64(self) -> u64 {
        self.0
    }

    pub fn from_bytes(b: &[u8; 5]) -> Self {
        let mut v = 0u64;
        for &x in b {
            v = (v << 8) | u64::from(x);
        }
        Address(v)
    }

    /// Reads the first 5 bytes of `b`.
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let arr: &[u8; 5] = b
            .get(..5)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Truncated("address"))?;
        Ok(Self::from_bytes(arr))
    }

    pub fn to_bytes(self) -> [u8; 5] {
        let b = self.0.to_be_bytes();
        [b[3], b[4], b[5], b[6], b[7]]
    }

    /// Zero and any address starting with 0xff (the fragment indicator) are reserved.
    pub fn is_reserved(self) -> bool {
        self.0 == 0 || (self.0 >> 32) == 0xff
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:010x}", self.0)
    }
}

impl FromStr for Address {
    type Err = Error;
    /// Exactly 10 hex digits.
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Malformed("address (10 hex digits)"));
        }
        u64::from_str_radix(s, 16)
            .map(Address)
            .map_err(|_| Error::Malformed("address (10 hex digits)"))
    }
}

/// A 64-bit network id; its top 40 bits are the controller's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NetworkId(pub u64);

impl NetworkId {
    /// The address of the controller that issues this network's configs.
    pub fn controller(self) -> Address {
        Address::from_u64(self.0 >> 24)
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for NetworkId {
    type Err = Error;
    /// Exactly 16 hex digits.
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Malformed("network id (16 hex digits)"));
        }
        u64::from_str_radix(s, 16)
            .map(NetworkId)
            .map_err(|_| Error::Malformed("network id (16 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        let a: Address = "7c2dfee12c".parse().unwrap();
        assert_eq!(a.to_bytes(), [0x7c, 0x2d, 0xfe, 0xe1, 0x2c]);
        assert_eq!(Address::from_bytes(&a.to_bytes()), a);
        assert_eq!(a.to_string(), "7c2dfee12c");
        assert!(Address::from_u64(0).is_reserved());
        assert!(Address::from_u64(0xff_0000_0001).is_reserved());
        assert!("7c2dfee12".parse::<Address>().is_err());
        assert!("+c2dfee12c".parse::<Address>().is_err());
        let n: NetworkId = "8056c2e21c000001".parse().unwrap();
        assert_eq!(n.controller().to_string(), "8056c2e21c");
    }
}
