//! The managed-state rules: what a network may put on the interface under each setting.

use super::*;
use crate::wire::netconf::Route;
use crate::wire::{Address, NetworkId};

fn config(ips: &[(&str, u16)], routes: &[(&str, u16, Option<&str>)]) -> NetworkConfig {
    let mut c = NetworkConfig::new(
        NetworkId(0x1122_3344_5500_0001),
        Address::from_u64(0x01_0203_0405),
        0,
    );
    c.mtu = 2800;
    c.static_ips = ips
        .iter()
        .map(|(ip, bits)| InetAddress::Ip(ip.parse().unwrap(), *bits))
        .collect();
    c.routes = routes
        .iter()
        .map(|(target, bits, via)| Route {
            target: InetAddress::Ip(target.parse().unwrap(), *bits),
            via: via.map_or(InetAddress::Nil, |v| InetAddress::Ip(v.parse().unwrap(), 0)),
            flags: 0,
            metric: 0,
        })
        .collect();
    c
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn managed_addresses_and_routes_follow_the_settings() {
    let c = config(
        &[
            ("10.147.17.5", 24),
            ("fd11:2233:4455::1", 88),
            ("8.8.4.4", 24),
        ],
        &[
            ("10.147.17.0", 24, None),
            ("10.9.0.0", 16, Some("10.147.17.1")),
            ("0.0.0.0", 0, Some("10.147.17.1")),
            ("1.2.3.0", 24, None),
            ("10.50.0.0", 16, Some("10.147.17.5")),
        ],
    );
    let state = desired_state(&c, &NetworkSettings::default());
    assert_eq!(state.mtu, 2800);
    assert_eq!(
        state.addresses,
        vec![(ip("10.147.17.5"), 24), (ip("fd11:2233:4455::1"), 88)]
    );
    // The subnet route is the kernel's; the default and global ones need permission; a route
    // via our own address is ours to serve.
    assert_eq!(
        state.routes,
        vec![ManagedRoute {
            destination: ip("10.9.0.0"),
            prefix: 16,
            gateway: Some(ip("10.147.17.1"))
        }]
    );
    assert!(state.has_ipv6());

    let all = NetworkSettings {
        allow_global: true,
        allow_default: true,
        ..NetworkSettings::default()
    };
    let state = desired_state(&c, &all);
    assert!(state.addresses.contains(&(ip("8.8.4.4"), 24)));
    assert_eq!(state.routes.len(), 3);

    let unmanaged = NetworkSettings {
        allow_managed: false,
        ..all
    };
    let state = desired_state(&c, &unmanaged);
    assert!(state.addresses.is_empty() && state.routes.is_empty());
    assert!(!state.has_ipv6());
}

#[test]
fn mtu_is_clamped_and_defaulted() {
    let mut c = config(&[], &[]);
    c.mtu = 0;
    assert_eq!(
        desired_state(&c, &NetworkSettings::default()).mtu,
        DEFAULT_MTU
    );
    c.mtu = 100;
    assert_eq!(desired_state(&c, &NetworkSettings::default()).mtu, 1280);
    c.mtu = 65_000;
    assert_eq!(desired_state(&c, &NetworkSettings::default()).mtu, 10_000);
}

#[test]
fn interface_names_are_stable_distinct_and_valid() {
    let a = interface_name(NetworkId(0x8056_c2e2_1c00_0001));
    let b = interface_name(NetworkId(0x8056_c2e2_1c00_0002));
    assert_eq!(a, interface_name(NetworkId(0x8056_c2e2_1c00_0001)));
    assert_ne!(a, b);
    for name in [&a, &b] {
        assert_eq!(name.len(), 10);
        assert!(name.starts_with("zt"));
        ztrs_platform::tun::validate_interface_name(name).unwrap();
    }
}
