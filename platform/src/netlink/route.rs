//! Routes through an interface in the main table: list, idempotent add, and removal that
//! tolerates absence.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

use super::{MAX_DUMP_ENTRIES, Netlink, errno, failure, too_many};

/// One route through an interface: `destination/prefix`, optionally via a gateway, with an
/// optional metric (the kernel's default is none for IPv4 and 1024 for IPv6, which is what a
/// listing then shows). Host bits of `destination` beyond `prefix` are cleared before the
/// route is sent to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination network (the default route is the unspecified address with prefix 0).
    pub destination: IpAddr,
    /// Destination prefix length.
    pub prefix: u8,
    /// Next hop, which must be reachable on the interface; `None` for an on-link route.
    pub gateway: Option<IpAddr>,
    /// Route metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
}

impl Route {
    /// An on-link route to `destination/prefix` without a metric.
    pub fn on_link(destination: IpAddr, prefix: u8) -> Route {
        Route {
            destination,
            prefix,
            gateway: None,
            metric: None,
        }
    }
}

/// Which routes a listing keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Every route.
    Any,
    /// Routes added with protocol `static` (what [`Netlink::add_route`] installs).
    Static,
}

impl Netlink {
    /// Every route of the main table whose output interface is `index`, both families. This
    /// includes the kernel's own routes (the subnets of the interface's addresses,
    /// `fe80::/64`); see [`Netlink::static_routes`] for only the ones added by
    /// [`Netlink::add_route`].
    pub async fn routes(&self, index: u32) -> io::Result<Vec<Route>> {
        self.list_routes(index, Origin::Any).await
    }

    /// The routes of [`Netlink::routes`] that carry protocol `static`, i.e. the ones installed
    /// by [`Netlink::add_route`] (or by `ip route add`), not the kernel's subnet routes.
    pub async fn static_routes(&self, index: u32) -> io::Result<Vec<Route>> {
        self.list_routes(index, Origin::Static).await
    }

    /// Adds `route` through interface `index` in the main table with protocol `static`; an
    /// existing route with the same destination (and metric) is replaced. IPv4 routes need the
    /// interface up (the kernel answers `ENETDOWN` otherwise).
    pub async fn add_route(&self, index: u32, route: &Route) -> io::Result<()> {
        let message = route_message(index, route)?;
        let request = self.handle.route().add(message).replace().execute();
        request
            .await
            .map_err(|err| failure(format!("adding route {route:?} on interface {index}"), err))
    }

    /// Removes `route` from interface `index`; a route that is not there is success. A `None`
    /// metric matches any metric for IPv6 and the first match for IPv4 (as `ip route del`).
    pub async fn remove_route(&self, index: u32, route: &Route) -> io::Result<()> {
        let mut message = route_message(index, route)?;
        // As `ip route del`: match any scope, protocol and type, so that a route is found
        // whatever attributes it was added with.
        message.header.scope = RouteScope::NoWhere;
        message.header.protocol = RouteProtocol::Unspec;
        message.header.kind = RouteType::Unspec;
        match self.handle.route().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(err) if errno(&err) == Some(libc::ESRCH) => Ok(()),
            Err(err) => Err(failure(
                format!("removing route {route:?} from interface {index}"),
                err,
            )),
        }
    }

    /// Dumps both families and keeps the main-table routes out of `index` of `origin`.
    async fn list_routes(&self, index: u32, origin: Origin) -> io::Result<Vec<Route>> {
        let mut found = Vec::new();
        let requests = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in requests {
            let mut dump = self.handle.route().get(request).execute();
            while let Some(message) = dump
                .try_next()
                .await
                .map_err(|err| failure(format!("listing routes of interface {index}"), err))?
            {
                if !belongs(&message, index, origin) {
                    continue;
                }
                if let Some(route) = route_of(&message) {
                    if found.len() == MAX_DUMP_ENTRIES {
                        return Err(too_many("routes", index));
                    }
                    found.push(route);
                }
            }
        }
        Ok(found)
    }
}

/// Whether a dumped route is in the main table, leaves through `index` and has `origin`.
fn belongs(message: &RouteMessage, index: u32, origin: Origin) -> bool {
    let mut table = u32::from(message.header.table);
    let mut output = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Oif(oif) => output = Some(*oif),
            _ => {}
        }
    }
    let origin_matches = origin == Origin::Any || message.header.protocol == RouteProtocol::Static;
    table == u32::from(RouteHeader::RT_TABLE_MAIN) && output == Some(index) && origin_matches
}

/// The [`Route`] a dumped message describes (`None` for non-IP families).
fn route_of(message: &RouteMessage) -> Option<Route> {
    let mut destination = None;
    let mut gateway = None;
    let mut metric = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = ip_of(address),
            RouteAttribute::Gateway(address) => gateway = ip_of(address),
            RouteAttribute::Priority(priority) => metric = Some(*priority),
            _ => {}
        }
    }
    let prefix = message.header.destination_prefix_length;
    let destination = match destination {
        Some(destination) => destination,
        // The default route carries no destination attribute.
        None => match message.header.address_family {
            rtnetlink::packet_route::AddressFamily::Inet => Ipv4Addr::UNSPECIFIED.into(),
            rtnetlink::packet_route::AddressFamily::Inet6 => Ipv6Addr::UNSPECIFIED.into(),
            _ => return None,
        },
    };
    Some(Route {
        destination,
        prefix,
        gateway,
        metric,
    })
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some((*v4).into()),
        RouteAddress::Inet6(v6) => Some((*v6).into()),
        _ => None,
    }
}

/// The netlink message for `route` through `index` (main table, protocol static; scope link
/// for on-link routes and universe for gatewayed ones, as `ip route add` does).
fn route_message(index: u32, route: &Route) -> io::Result<RouteMessage> {
    let invalid = |problem: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("route {route:?}: {problem}"),
        )
    };
    let scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    let mut message = match route.destination {
        IpAddr::V4(destination) => {
            let network =
                masked_v4(destination, route.prefix).ok_or_else(|| invalid("prefix > 32"))?;
            let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(network, route.prefix)
                .output_interface(index)
                .scope(scope);
            match route.gateway {
                None => {}
                Some(IpAddr::V4(gateway)) => builder = builder.gateway(gateway),
                Some(IpAddr::V6(_)) => return Err(invalid("IPv6 gateway for an IPv4 route")),
            }
            builder.build()
        }
        IpAddr::V6(destination) => {
            let network =
                masked_v6(destination, route.prefix).ok_or_else(|| invalid("prefix > 128"))?;
            let mut builder = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(network, route.prefix)
                .output_interface(index)
                .scope(scope);
            match route.gateway {
                None => {}
                Some(IpAddr::V6(gateway)) => builder = builder.gateway(gateway),
                Some(IpAddr::V4(_)) => return Err(invalid("IPv4 gateway for an IPv6 route")),
            }
            builder.build()
        }
    };
    if let Some(metric) = route.metric {
        message.attributes.push(RouteAttribute::Priority(metric));
    }
    Ok(message)
}

/// `ip` with the bits beyond `prefix` cleared; `None` when `prefix > 32`.
fn masked_v4(ip: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    if prefix > 32 {
        return None;
    }
    // A shift by the full width (prefix 0) means an all-zero mask.
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(ip) & mask))
}

/// `ip` with the bits beyond `prefix` cleared; `None` when `prefix > 128`.
fn masked_v6(ip: Ipv6Addr, prefix: u8) -> Option<Ipv6Addr> {
    if prefix > 128 {
        return None;
    }
    // A shift by the full width (prefix 0) means an all-zero mask.
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Some(Ipv6Addr::from(u128::from(ip) & mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_host_bits() {
        let ip = Ipv4Addr::new(10, 67, 1, 2);
        assert_eq!(masked_v4(ip, 16), Some(Ipv4Addr::new(10, 67, 0, 0)));
        assert_eq!(masked_v4(ip, 32), Some(ip));
        assert_eq!(masked_v4(ip, 0), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(masked_v4(ip, 33), None);
        let ip6: Ipv6Addr = "fd67::1:2".parse().unwrap();
        assert_eq!(masked_v6(ip6, 48), Some("fd67::".parse().unwrap()));
        assert_eq!(masked_v6(ip6, 128), Some(ip6));
        assert_eq!(masked_v6(ip6, 0), Some(Ipv6Addr::UNSPECIFIED));
        assert_eq!(masked_v6(ip6, 129), None);
    }

    #[test]
    fn rejects_mixed_families() {
        let route = Route {
            destination: Ipv4Addr::new(10, 0, 0, 0).into(),
            prefix: 8,
            gateway: Some(Ipv6Addr::LOCALHOST.into()),
            metric: None,
        };
        let err = route_message(1, &route).expect_err("mixed families");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn dumped_route_round_trips() {
        let route = Route {
            destination: "fd67::".parse().unwrap(),
            prefix: 48,
            gateway: Some("fd66::fe".parse().unwrap()),
            metric: Some(300),
        };
        let message = route_message(7, &route).unwrap();
        assert!(belongs(&message, 7, Origin::Static));
        assert!(!belongs(&message, 8, Origin::Any));
        assert_eq!(route_of(&message), Some(route));
    }
}
