//! NETWORK_CREDENTIALS (0x0a): the credentials a member pushes to peers (and revocations
//! a controller pushes to members).
//!
//! ```text
//! COM* | 0x00 | u16 n + n capabilities | u16 n + n tags | u16 n + n revocations
//!      | u16 n + n certificates of ownership
//! ```

use crate::wire::com::CertificateOfMembership;
use crate::wire::credentials::{Capability, CertificateOfOwnership, Credential, Revocation, Tag};
use crate::wire::cursor::{Reader, Writer};
use crate::wire::{Error, Result};

use super::{
    MAX_CREDENTIAL_CAPABILITIES, MAX_CREDENTIAL_COMS, MAX_CREDENTIAL_COOS,
    MAX_CREDENTIAL_REVOCATIONS, MAX_CREDENTIAL_TAGS,
};

/// A NETWORK_CREDENTIALS push.
///
/// Old senders stop after the COM terminator (or after any later group); the missing groups
/// are empty. Every count is checked against its cap before anything is allocated, and a
/// count above the cap refuses the whole packet with [`Error::TooLarge`]: the caps are the
/// limits the reference puts on a member's credentials, so only a broken or hostile sender
/// exceeds them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NetworkCredentials {
    pub coms: Vec<CertificateOfMembership>,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<Tag>,
    pub revocations: Vec<Revocation>,
    pub coos: Vec<CertificateOfOwnership>,
}

impl NetworkCredentials {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let mut creds = NetworkCredentials::default();
        // COMs start with their version byte (1); a zero byte ends the list.
        while let Some(&first) = r.rest().first() {
            if first == 0 {
                r.skip(1, "network credentials COM terminator")?;
                break;
            }
            if creds.coms.len() >= MAX_CREDENTIAL_COMS {
                return Err(Error::TooLarge("network credentials COMs"));
            }
            creds.coms.push(CertificateOfMembership::read(&mut r)?);
        }
        if r.is_empty() {
            return Ok(creds);
        }
        creds.capabilities = read_counted(
            &mut r,
            MAX_CREDENTIAL_CAPABILITIES,
            "network credentials capabilities",
        )?;
        if r.is_empty() {
            return Ok(creds);
        }
        creds.tags = read_counted(&mut r, MAX_CREDENTIAL_TAGS, "network credentials tags")?;
        if r.is_empty() {
            return Ok(creds);
        }
        creds.revocations = read_counted(
            &mut r,
            MAX_CREDENTIAL_REVOCATIONS,
            "network credentials revocations",
        )?;
        if r.is_empty() {
            return Ok(creds);
        }
        creds.coos = read_counted(&mut r, MAX_CREDENTIAL_COOS, "network credentials COOs")?;
        Ok(creds)
    }

    /// Appends the full form (all four counts, even when zero). Lists longer than their cap
    /// are cut at the cap so the output always parses.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for com in self.coms.iter().take(MAX_CREDENTIAL_COMS) {
            com.emit(out);
        }
        out.put_u8(0);
        emit_counted(&self.capabilities, MAX_CREDENTIAL_CAPABILITIES, out);
        emit_counted(&self.tags, MAX_CREDENTIAL_TAGS, out);
        emit_counted(&self.revocations, MAX_CREDENTIAL_REVOCATIONS, out);
        emit_counted(&self.coos, MAX_CREDENTIAL_COOS, out);
    }
}

/// Reads `u16 count` and that many credentials, refusing a count above `max` first.
fn read_counted<C: Credential>(
    r: &mut Reader<'_>,
    max: usize,
    field: &'static str,
) -> Result<Vec<C>> {
    let count = usize::from(r.u16(field)?);
    if count > max {
        return Err(Error::TooLarge(field));
    }
    let mut list = Vec::with_capacity(count);
    for _ in 0..count {
        list.push(C::read_from(r)?);
    }
    Ok(list)
}

fn emit_counted<C: Credential>(list: &[C], max: usize, out: &mut Vec<u8>) {
    let kept = list.get(..max).unwrap_or(list);
    // Every cap is far below u16::MAX.
    out.put_u16(kept.len() as u16);
    for c in kept {
        c.emit_to(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::com::Qualifier;
    use crate::wire::{Address, NetworkId};

    fn com() -> CertificateOfMembership {
        CertificateOfMembership::from_qualifiers(vec![Qualifier {
            id: 1,
            value: 7,
            max_delta: 0,
        }])
        .unwrap()
    }

    #[test]
    fn old_senders_stop_early() {
        assert_eq!(NetworkCredentials::parse(&[]).unwrap(), Default::default());
        let mut out = Vec::new();
        com().emit(&mut out);
        // No terminator at all, then just the terminator.
        assert_eq!(NetworkCredentials::parse(&out).unwrap().coms, [com()]);
        out.push(0);
        let creds = NetworkCredentials::parse(&out).unwrap();
        assert_eq!((creds.coms.len(), creds.tags.len()), (1, 0));
        // Stop after the capability count.
        out.extend_from_slice(&[0, 0]);
        assert!(
            NetworkCredentials::parse(&out)
                .unwrap()
                .capabilities
                .is_empty()
        );
        // A lone byte where a count should be is truncated.
        out.push(0);
        assert!(NetworkCredentials::parse(&out).is_err());
    }

    #[test]
    fn full_round_trip() {
        let creds = NetworkCredentials {
            coms: vec![com(), com()],
            capabilities: vec![Capability::new(NetworkId(7), 1, 2, 1, Vec::new())],
            tags: vec![Tag::new(NetworkId(7), 1, Address::from_u64(5), 3, 4)],
            revocations: vec![Revocation::new(
                1,
                NetworkId(7),
                0,
                99,
                0,
                Address::from_u64(5),
                crate::wire::credentials::CredentialType::CertificateOfMembership,
            )],
            coos: vec![CertificateOfOwnership::new(
                NetworkId(7),
                1,
                Address::from_u64(5),
                9,
            )],
        };
        let mut out = Vec::new();
        creds.emit(&mut out);
        assert_eq!(NetworkCredentials::parse(&out).unwrap(), creds);
    }

    #[test]
    fn counts_above_caps_are_refused_before_reading() {
        let mut out = vec![0];
        out.extend_from_slice(&((MAX_CREDENTIAL_CAPABILITIES + 1) as u16).to_be_bytes());
        assert_eq!(
            NetworkCredentials::parse(&out),
            Err(Error::TooLarge("network credentials capabilities"))
        );
        let mut out = vec![0, 0, 0, 0, 0, 0, 0];
        out.extend_from_slice(&((MAX_CREDENTIAL_COOS + 1) as u16).to_be_bytes());
        assert_eq!(
            NetworkCredentials::parse(&out),
            Err(Error::TooLarge("network credentials COOs"))
        );
        let mut many = Vec::new();
        for _ in 0..=MAX_CREDENTIAL_COMS {
            com().emit(&mut many);
        }
        assert_eq!(
            NetworkCredentials::parse(&many),
            Err(Error::TooLarge("network credentials COMs"))
        );
        // A non-zero first byte that is not a COM fails the whole packet.
        assert!(NetworkCredentials::parse(&[2, 0, 0]).is_err());
    }
}
