//! Interface addresses: list, idempotent add, and removal that tolerates absence.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::AddressMessageBuilder;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};

use super::{MAX_DUMP_ENTRIES, Netlink, errno, failure, too_many};

impl Netlink {
    /// Every address on interface `index`, both families, with its prefix length, in kernel
    /// order. Nothing is left out (link-local addresses included); the caller filters.
    pub async fn addresses(&self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut found = Vec::new();
        while let Some(message) = dump
            .try_next()
            .await
            .map_err(|err| failure(format!("listing addresses of interface {index}"), err))?
        {
            if let Some(entry) = address_of(&message) {
                if found.len() == MAX_DUMP_ENTRIES {
                    return Err(too_many("addresses", index));
                }
                found.push(entry);
            }
        }
        Ok(found)
    }

    /// Adds `ip/prefix` to interface `index`; already present is success (`NLM_F_REPLACE`).
    /// The kernel adds the matching subnet route itself. IPv6 addresses are added without
    /// duplicate address detection (`IFA_F_NODAD`), so they are usable (bindable) at once
    /// instead of tentative for a moment; the network's controller assigns them uniquely.
    /// The kernel still installs an IPv6 address's local route from its work queue, a moment
    /// after this returns (or after the link comes up); packets for the address that arrive
    /// before that are dropped.
    pub async fn add_address(&self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        check_prefix(ip, prefix)?;
        let mut request = self.handle.address().add(index, ip, prefix).replace();
        if ip.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(|err| {
            failure(
                format!("adding address {ip}/{prefix} to interface {index}"),
                err,
            )
        })
    }

    /// Removes `ip/prefix` from interface `index`; an address that is not there is success.
    pub async fn remove_address(&self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        check_prefix(ip, prefix)?;
        let message = match ip {
            IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(v4, prefix)
                .build(),
            IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(v6, prefix)
                .build(),
        };
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(err) if errno(&err) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(err) => Err(failure(
                format!("removing address {ip}/{prefix} from interface {index}"),
                err,
            )),
        }
    }
}

/// The (address, prefix) of one address message. For IPv4 `IFA_LOCAL` is the interface's own
/// address (`IFA_ADDRESS` is the peer on point-to-point links); IPv6 only sends `IFA_ADDRESS`.
fn address_of(message: &AddressMessage) -> Option<(IpAddr, u8)> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = local.or(Some(*ip)),
            AddressAttribute::Address(ip) => address = address.or(Some(*ip)),
            _ => {}
        }
    }
    local.or(address).map(|ip| (ip, message.header.prefix_len))
}

/// Rejects a prefix longer than the address family allows.
fn check_prefix(ip: IpAddr, prefix: u8) -> io::Result<()> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("prefix /{prefix} is too long for {ip}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_limits_follow_the_family() {
        let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        assert!(check_prefix(v4, 32).is_ok());
        assert!(check_prefix(v4, 33).is_err());
        assert!(check_prefix(v6, 128).is_ok());
        assert!(check_prefix(v6, 129).is_err());
    }

    #[test]
    fn local_wins_over_peer_address() {
        let mut message = AddressMessage::default();
        message.header.prefix_len = 24;
        let peer: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
        let own: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
        message.attributes.push(AddressAttribute::Address(peer));
        message.attributes.push(AddressAttribute::Local(own));
        assert_eq!(address_of(&message), Some((own, 24)));
    }
}
