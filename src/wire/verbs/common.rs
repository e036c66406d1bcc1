//! Small building blocks shared by the verb codecs: network ids, node addresses, public
//! identities, typed endpoints and zero-copy lists of 5-byte addresses.

use crate::crypto::{BINARY_PUBLIC_LEN, Identity};
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Address, Error, InetAddress, NetworkId, Result};

/// Reads a big-endian 64-bit network id.
pub(crate) fn read_network_id(r: &mut Reader<'_>, field: &'static str) -> Result<NetworkId> {
    r.u64(field).map(NetworkId)
}

/// Reads a 5-byte node address (reserved values are the caller's business).
pub(crate) fn read_address(r: &mut Reader<'_>, field: &'static str) -> Result<Address> {
    Ok(Address::from_bytes(&r.array::<{ Address::LEN }>(field)?))
}

/// Reads one identity in its 71-byte public binary form. A secret on the wire is refused:
/// no implementation sends one, and accepting it would make the wire length variable.
pub(crate) fn read_public_identity(r: &mut Reader<'_>) -> Result<Identity> {
    parse_public_identity(r.bytes(BINARY_PUBLIC_LEN, "identity")?)
}

/// Parses exactly one public identity from a 71-byte slice.
pub(crate) fn parse_public_identity(bytes: &[u8]) -> Result<Identity> {
    let (identity, used) = Identity::parse_binary(bytes)
        .map_err(|_| Error::Malformed("identity (71-byte public form)"))?;
    if used != bytes.len() || identity.has_secret() {
        return Err(Error::Malformed("identity (71-byte public form)"));
    }
    Ok(identity)
}

/// Reads an InetAddress that must be `Nil` or an IP. The reserved types 1-3 are never written
/// by any implementation; refusing them keeps every emitted length equal to the parsed one.
pub(crate) fn read_endpoint(r: &mut Reader<'_>, field: &'static str) -> Result<InetAddress> {
    match InetAddress::read(r)? {
        InetAddress::Other(_) => Err(Error::Malformed(field)),
        other => Ok(other),
    }
}

/// A zero-copy list of 5-byte node addresses (WHOIS requests, multicast gather results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AddressList<'a> {
    bytes: &'a [u8],
}

impl<'a> AddressList<'a> {
    /// Wraps `bytes`, which must hold a whole number of addresses.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        if !bytes.len().is_multiple_of(Address::LEN) {
            return Err(Error::Malformed(
                "address list (length not a multiple of 5)",
            ));
        }
        Ok(AddressList { bytes })
    }

    /// Reads `count` addresses from the cursor.
    pub(crate) fn read(r: &mut Reader<'a>, count: usize, field: &'static str) -> Result<Self> {
        let len = count
            .checked_mul(Address::LEN)
            .ok_or(Error::TooLarge(field))?;
        Ok(AddressList {
            bytes: r.bytes(len, field)?,
        })
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.bytes.len() / Address::LEN
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The raw wire bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The addresses in wire order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Address> + 'a {
        self.bytes
            .chunks_exact(Address::LEN)
            .map(|c| Address::from_slice(c).unwrap_or_default())
    }

    /// Appends addresses in wire form; returns how many were written.
    pub fn encode(addresses: impl IntoIterator<Item = Address>, out: &mut Vec<u8>) -> usize {
        let mut n = 0;
        for a in addresses {
            out.put_bytes(&a.to_bytes());
            n += 1;
        }
        n
    }
}

/// Appends a u16 length followed by `bytes`, cutting `bytes` at `u16::MAX` so the prefix
/// always matches what follows.
pub(crate) fn put_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(usize::from(u16::MAX));
    out.put_u16(len as u16);
    out.put_bytes(bytes.get(..len).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_list_checks_length() {
        assert!(AddressList::new(&[1, 2, 3, 4]).is_err());
        let list = AddressList::new(&[0, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]).unwrap();
        let v: Vec<_> = list.iter().collect();
        assert_eq!(v, [Address::from_u64(1), Address::from_u64(0xaabbccddee)]);
        let mut out = Vec::new();
        assert_eq!(AddressList::encode(v, &mut out), 2);
        assert_eq!(out, list.as_bytes());
    }

    #[test]
    fn identity_with_secret_or_bad_type_is_refused() {
        let mut bytes = [0u8; 71];
        bytes[4] = 1;
        assert!(parse_public_identity(&bytes).is_ok());
        bytes[5] = 1;
        assert!(parse_public_identity(&bytes).is_err());
        bytes[5] = 0;
        bytes[70] = 64;
        assert!(parse_public_identity(&bytes).is_err());
    }
}
