//! Network configuration verbs: NETWORK_CONFIG_REQUEST (0x0b) and NETWORK_CONFIG (0x0c).
//!
//! ```text
//! NETWORK_CONFIG_REQUEST: u64 nwid | [u16 len | metadata dictionary] | [u64 rev | u64 ts]
//! NETWORK_CONFIG:         one config chunk (5.10)
//! ```

use crate::wire::cursor::{Reader, Writer};
use crate::wire::netconf_chunk::ConfigChunk;
use crate::wire::{Error, NetworkId, Result};

use super::MAX_METADATA_LEN;
use super::common::read_network_id;

/// The revision and timestamp of the config the requester already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigVersion {
    pub revision: u64,
    pub timestamp: u64,
}

/// A NETWORK_CONFIG_REQUEST sent to a network's controller.
///
/// The metadata length is checked against [`MAX_METADATA_LEN`] (the reference's metadata
/// dictionary capacity) before anything else; longer metadata is refused with
/// [`Error::TooLarge`]. Old requesters stop after the nwid or after the metadata: the
/// metadata is then empty and `have` is `None` (also when fewer than 16 bytes follow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkConfigRequest<'a> {
    pub network_id: NetworkId,
    /// The metadata dictionary (7.1 format, no trailing NUL), decoded by
    /// `crate::wire::dictionary`.
    pub metadata: &'a [u8],
    pub have: Option<ConfigVersion>,
}

impl<'a> NetworkConfigRequest<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let network_id = read_network_id(&mut r, "config request network id")?;
        let metadata = if r.remaining() >= 2 {
            let len = usize::from(r.u16("config request metadata length")?);
            if len > MAX_METADATA_LEN {
                return Err(Error::TooLarge("config request metadata"));
            }
            r.bytes(len, "config request metadata")?
        } else {
            &[]
        };
        let have = if r.remaining() >= 16 {
            Some(ConfigVersion {
                revision: r.u64("config request revision")?,
                timestamp: r.u64("config request timestamp")?,
            })
        } else {
            None
        };
        Ok(NetworkConfigRequest {
            network_id,
            metadata,
            have,
        })
    }

    /// Appends the request. Metadata beyond [`MAX_METADATA_LEN`] is cut so the output always
    /// parses.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        let metadata = self
            .metadata
            .get(..MAX_METADATA_LEN)
            .unwrap_or(self.metadata);
        super::common::put_u16_prefixed(out, metadata);
        if let Some(have) = self.have {
            out.put_u64(have.revision);
            out.put_u64(have.timestamp);
        }
    }
}

/// A NETWORK_CONFIG push from the controller: one config chunk, as in
/// OK(NETWORK_CONFIG_REQUEST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig<'a> {
    pub chunk: ConfigChunk<'a>,
}

impl<'a> NetworkConfig<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        Ok(NetworkConfig {
            chunk: ConfigChunk::read(&mut r)?,
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        self.chunk.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_config_carries_one_chunk() {
        let chunk = ConfigChunk {
            network_id: NetworkId(5),
            data: b"v=7\nnwid=5",
            signed: None,
        };
        let mut out = Vec::new();
        NetworkConfig { chunk }.emit(&mut out);
        assert_eq!(NetworkConfig::parse(&out).unwrap().chunk, chunk);
        assert!(NetworkConfig::parse(&out[..9]).is_err());
    }

    #[test]
    fn config_request_optional_fields_and_cap() {
        let nwid = 0x8056c2e21c000001u64.to_be_bytes();
        let r = NetworkConfigRequest::parse(&nwid).unwrap();
        assert_eq!((r.metadata, r.have), (&[][..], None));
        let req = NetworkConfigRequest {
            network_id: NetworkId(7),
            metadata: b"v=7",
            have: Some(ConfigVersion {
                revision: 3,
                timestamp: 4,
            }),
        };
        let mut out = Vec::new();
        req.emit(&mut out);
        assert_eq!(NetworkConfigRequest::parse(&out).unwrap(), req);
        let mut big = nwid.to_vec();
        big.extend_from_slice(&((MAX_METADATA_LEN + 1) as u16).to_be_bytes());
        big.resize(big.len() + MAX_METADATA_LEN + 1, b'a');
        assert_eq!(
            NetworkConfigRequest::parse(&big),
            Err(Error::TooLarge("config request metadata"))
        );
    }
}
