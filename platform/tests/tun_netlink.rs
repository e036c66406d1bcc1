//! TUN devices, netlink configuration, `/proc` helpers and `netns::enter` against the real
//! kernel. Each test creates its own network namespace (`ztrs-plat-<pid>-<n>`, deleted by a
//! guard even when the test fails), enters it from a dedicated thread running a
//! current-thread tokio runtime, and only sends traffic inside it. Needs root (or
//! CAP_NET_ADMIN + CAP_SYS_ADMIN) and `ip` from iproute2; without them the tests fail loudly.

#![cfg(target_os = "linux")]

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use ztrs_platform::netlink::{self, Netlink, Route};
use ztrs_platform::netns;
use ztrs_platform::tun::TunDevice;

const TUN: &str = "ztplat0";
const WAIT: Duration = Duration::from_secs(10);
const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 2);
const LOCAL6: Ipv6Addr = Ipv6Addr::new(0xfd66, 0, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd66, 0, 0, 0, 0, 0, 0, 2);
/// Packets the kernel emits on its own (router solicitations, MLD/IGMP reports) that a test
/// skips before giving up on the one it waits for.
const MAX_SKIPPED_PACKETS: usize = 64;

/// A network namespace that exists for the guard's lifetime.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create() -> Namespace {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ztrs-plat-{}-{serial}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "`ip netns add {name}` failed: these tests need root and iproute2"
        );
        Namespace { name }
    }

    /// Runs `body` on a thread inside the namespace with a current-thread runtime, bounded
    /// by a timeout; panics (after the thread is gone) if the body failed.
    fn run<F, Fut>(&self, body: F)
    where
        F: FnOnce(String) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let name = self.name.clone();
        let thread = std::thread::spawn(move || {
            netns::enter(&name).expect("enter namespace");
            let body = body(name);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                timeout(Duration::from_secs(60), body)
                    .await
                    .expect("test body timed out");
            });
        });
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Output of `ip -n <namespace> <args>`: an independent view of the kernel state.
fn ip(namespace: &str, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["-n", namespace])
        .args(args)
        .output()
        .expect("run ip");
    assert!(output.status.success(), "ip {args:?} failed");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Creates `ztplat0` with MTU 2800, 10.66.0.1/24 and fd66::1/64, up.
async fn configured_tun(netlink: &Netlink) -> TunDevice {
    let tun = TunDevice::create(TUN).expect("create TUN");
    let index = tun.index();
    netlink.set_mtu(index, 2800).await.unwrap();
    netlink.add_address(index, LOCAL4.into(), 24).await.unwrap();
    netlink.add_address(index, LOCAL6.into(), 64).await.unwrap();
    netlink.set_up(index, true).await.unwrap();
    tun
}

/// Reads packets until `wanted` accepts one (returning it), skipping at most
/// [`MAX_SKIPPED_PACKETS`] others; every wait is bounded by [`WAIT`].
async fn receive_matching(
    tun: &TunDevice,
    buf: &mut [u8],
    wanted: impl Fn(Result<&[u8], &io::Error>) -> bool,
) -> Vec<u8> {
    for _ in 0..MAX_SKIPPED_PACKETS {
        loop {
            timeout(WAIT, tun.readable())
                .await
                .expect("TUN readable")
                .unwrap();
            match tun.try_recv(buf) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(length) if wanted(Ok(&buf[..length])) => return buf[..length].to_vec(),
                Err(err) if wanted(Err(&err)) => return Vec::new(),
                _ => break,
            }
        }
    }
    panic!("no matching packet among {MAX_SKIPPED_PACKETS} read from the TUN");
}

fn is_udp4_to(packet: &[u8], destination: Ipv4Addr) -> bool {
    packet.len() >= 28
        && packet[0] >> 4 == 4
        && packet[9] == 17
        && packet[16..20] == destination.octets()
}

/// Internet checksum over `chunks` concatenated (each of even length except the last).
fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn udp_header(source_port: u16, destination_port: u16, payload: &[u8]) -> Vec<u8> {
    let length = (8 + payload.len()) as u16;
    let mut udp = Vec::new();
    for field in [source_port, destination_port, length, 0] {
        udp.extend_from_slice(&field.to_be_bytes());
    }
    udp.extend_from_slice(payload);
    udp
}

fn finish_udp_checksum(udp: &mut [u8], pseudo_header: &[u8]) {
    let sum = match checksum(&[pseudo_header, udp]) {
        0 => 0xffff,
        sum => sum,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
}

fn ipv4_udp(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(source), IpAddr::V4(destination)) = (from.ip(), to.ip()) else {
        panic!("IPv4 addresses expected");
    };
    let mut udp = udp_header(from.port(), to.port(), payload);
    let mut pseudo = [source.octets(), destination.octets()].concat();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    finish_udp_checksum(&mut udp, &pseudo);
    let total = (20 + udp.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    let header_sum = checksum(&[&packet]);
    packet[10..12].copy_from_slice(&header_sum.to_be_bytes());
    packet.extend_from_slice(&udp);
    packet
}

fn ipv6_udp(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V6(source), IpAddr::V6(destination)) = (from.ip(), to.ip()) else {
        panic!("IPv6 addresses expected");
    };
    let mut udp = udp_header(from.port(), to.port(), payload);
    let mut pseudo = [source.octets(), destination.octets()].concat();
    pseudo.extend_from_slice(&(udp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    finish_udp_checksum(&mut udp, &pseudo);
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[17, 64]);
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet.extend_from_slice(&udp);
    packet
}

/// Waits until the kernel has installed the local route of `address`. For IPv6 that happens
/// in the kernel's address work queue shortly after the address is added (even without
/// duplicate address detection); packets for the address are dropped until then.
async fn wait_for_local_route(namespace: &str, address: IpAddr) {
    let wanted = format!("local {address} ");
    let family = if address.is_ipv6() { "-6" } else { "-4" };
    let poll = async {
        while !ip(namespace, &[family, "route", "show", "table", "local"]).contains(&wanted) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(WAIT, poll).await.expect("local route installed");
}

/// Injects `packet` into the TUN and checks that `socket` receives `payload` from `from`.
async fn inject_and_expect(
    tun: &TunDevice,
    socket: &UdpSocket,
    packet: &[u8],
    from: SocketAddr,
    payload: &[u8],
) {
    timeout(WAIT, tun.writable())
        .await
        .expect("TUN writable")
        .unwrap();
    assert_eq!(tun.try_send(packet).unwrap(), packet.len());
    let mut buf = [0u8; 256];
    let (length, sender) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("injected datagram arrives")
        .unwrap();
    assert_eq!((&buf[..length], sender), (payload, from));
}

fn interface_flags(ip_link_output: &str) -> Vec<String> {
    let start = ip_link_output.find('<').expect("flags") + 1;
    let end = ip_link_output.find('>').expect("flags");
    ip_link_output[start..end]
        .split(',')
        .map(str::to_owned)
        .collect()
}

#[test]
fn link_settings_addresses_and_routes_round_trip() {
    let namespace = Namespace::create();
    namespace.run(|namespace| async move {
        let netlink = Netlink::connect().unwrap();
        let tun = TunDevice::create(TUN).unwrap();
        let index = tun.index();
        assert_eq!(tun.name(), TUN);
        assert_eq!(netlink.link_index(TUN).await.unwrap(), Some(index));
        netlink.set_mtu(index, 2800).await.unwrap();
        netlink.set_tx_queue_len(index, 777).await.unwrap();
        for _ in 0..2 {
            netlink.add_address(index, LOCAL4.into(), 24).await.unwrap();
            netlink.add_address(index, LOCAL6.into(), 64).await.unwrap();
        }
        netlink.set_up(index, true).await.unwrap();
        let link = ip(&namespace, &["link", "show", TUN]);
        assert!(
            link.contains("mtu 2800") && link.contains("qlen 777"),
            "{link}"
        );
        assert!(interface_flags(&link).contains(&"UP".to_owned()), "{link}");
        let addresses = netlink.addresses(index).await.unwrap();
        assert!(addresses.contains(&(LOCAL4.into(), 24)), "{addresses:?}");
        assert!(addresses.contains(&(LOCAL6.into(), 64)), "{addresses:?}");
        let shown = ip(&namespace, &["addr", "show", "dev", TUN]);
        assert!(
            shown.contains("10.66.0.1/24") && shown.contains("fd66::1/64"),
            "{shown}"
        );

        let wanted = [
            Route::on_link("10.67.0.0".parse().unwrap(), 16),
            Route::on_link("fd67::".parse().unwrap(), 48),
            Route {
                destination: "10.68.0.0".parse().unwrap(),
                prefix: 16,
                gateway: Some("10.66.0.254".parse().unwrap()),
                metric: Some(50),
            },
            Route {
                destination: "fd68::".parse().unwrap(),
                prefix: 48,
                gateway: Some("fd66::fe".parse().unwrap()),
                metric: Some(70),
            },
        ];
        for _ in 0..2 {
            for route in &wanted {
                netlink.add_route(index, route).await.unwrap();
            }
        }
        // An IPv6 route without a metric gets the kernel default 1024.
        let mut expected = wanted.to_vec();
        expected[1].metric = Some(1024);
        expected.sort_by_key(|route| format!("{route:?}"));
        let mut installed = netlink.static_routes(index).await.unwrap();
        installed.sort_by_key(|route| format!("{route:?}"));
        assert_eq!(installed, expected);
        let all = netlink.routes(index).await.unwrap();
        let subnet = Route::on_link("10.66.0.0".parse().unwrap(), 24);
        assert!(all.contains(&subnet), "kernel subnet route in {all:?}");
        assert!(expected.iter().all(|route| all.contains(route)), "{all:?}");
        let shown = ip(&namespace, &["route", "show", "dev", TUN]);
        assert!(
            shown.contains("10.67.0.0/16") && shown.contains("10.68.0.0/16 via 10.66.0.254"),
            "{shown}"
        );
        let shown = ip(&namespace, &["-6", "route", "show", "dev", TUN]);
        assert!(
            shown.contains("fd67::/48") && shown.contains("fd68::/48 via fd66::fe"),
            "{shown}"
        );
        // Host bits of a destination are cleared, so this replaces the existing route.
        let untidy = Route::on_link("10.67.1.2".parse().unwrap(), 16);
        netlink.add_route(index, &untidy).await.unwrap();
        assert_eq!(
            netlink.static_routes(index).await.unwrap().len(),
            wanted.len()
        );

        for _ in 0..2 {
            for route in &wanted {
                netlink.remove_route(index, route).await.unwrap();
            }
        }
        assert_eq!(netlink.static_routes(index).await.unwrap(), []);
        for _ in 0..2 {
            netlink
                .remove_address(index, LOCAL4.into(), 24)
                .await
                .unwrap();
            netlink
                .remove_address(index, LOCAL6.into(), 64)
                .await
                .unwrap();
        }
        let addresses = netlink.addresses(index).await.unwrap();
        assert!(!addresses.contains(&(LOCAL4.into(), 24)), "{addresses:?}");
        assert!(!addresses.contains(&(LOCAL6.into(), 64)), "{addresses:?}");
        assert!(!netlink.routes(index).await.unwrap().contains(&subnet));
        netlink.set_up(index, false).await.unwrap();
        let link = ip(&namespace, &["link", "show", TUN]);
        assert!(!interface_flags(&link).contains(&"UP".to_owned()), "{link}");
    });
}

#[test]
fn packets_flow_in_both_directions() {
    let namespace = Namespace::create();
    namespace.run(|namespace| async move {
        let netlink = Netlink::connect().unwrap();
        let tun = configured_tun(&netlink).await;
        let mut buf = vec![0u8; 4096];

        // Kernel -> TUN: a datagram routed to the peer comes out of the device as IPv4/UDP.
        let sender = UdpSocket::bind((LOCAL4, 0)).await.unwrap();
        sender.send_to(b"into the tun", (PEER4, 9)).await.unwrap();
        let packet = receive_matching(&tun, &mut buf, |read| {
            read.is_ok_and(|packet| is_udp4_to(packet, PEER4))
        })
        .await;
        let header = usize::from(packet[0] & 0x0f) * 4;
        assert_eq!(packet[12..16], LOCAL4.octets());
        assert_eq!(packet[header + 2..header + 4], 9u16.to_be_bytes());
        assert_eq!(&packet[header + 8..], b"into the tun");

        // TUN -> kernel: injected packets reach sockets bound to the local addresses.
        let receiver = UdpSocket::bind((LOCAL4, 0)).await.unwrap();
        let from = SocketAddr::from((PEER4, 4000));
        let packet = ipv4_udp(from, receiver.local_addr().unwrap(), b"out of the tun");
        inject_and_expect(&tun, &receiver, &packet, from, b"out of the tun").await;
        wait_for_local_route(&namespace, LOCAL6.into()).await;
        let receiver = UdpSocket::bind((LOCAL6, 0)).await.unwrap();
        let from = SocketAddr::from((PEER6, 4001));
        let packet = ipv6_udp(from, receiver.local_addr().unwrap(), b"out of the tun, v6");
        inject_and_expect(&tun, &receiver, &packet, from, b"out of the tun, v6").await;

        // Nothing queued: WouldBlock, not a hang.
        let idle = TunDevice::create("ztplat1").unwrap();
        let err = idle.try_recv(&mut buf).expect_err("empty queue");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    });
}

#[test]
fn oversized_packet_is_reported_not_passed_on() {
    let namespace = Namespace::create();
    namespace.run(|_| async {
        let netlink = Netlink::connect().unwrap();
        let tun = configured_tun(&netlink).await;
        let sender = UdpSocket::bind((LOCAL4, 0)).await.unwrap();
        sender.send_to(&[7u8; 1200], (PEER4, 9)).await.unwrap();
        let mut small = [0u8; 300];
        receive_matching(&tun, &mut small, |read| {
            read.is_err_and(|err| err.kind() == io::ErrorKind::InvalidData)
        })
        .await;
        // The device keeps working after a truncated read.
        sender.send_to(b"small", (PEER4, 9)).await.unwrap();
        let mut buf = [0u8; 4096];
        let packet = receive_matching(&tun, &mut buf, |read| {
            read.is_ok_and(|packet| is_udp4_to(packet, PEER4))
        })
        .await;
        assert!(packet.ends_with(b"small"));
    });
}

#[test]
fn dropping_the_device_removes_the_link() {
    let namespace = Namespace::create();
    namespace.run(|_| async {
        let netlink = Netlink::connect().unwrap();
        let tun = configured_tun(&netlink).await;
        let index = tun.index();
        assert_eq!(netlink.link_index(TUN).await.unwrap(), Some(index));
        let err = TunDevice::create(TUN).expect_err("name in use");
        assert_eq!(err.raw_os_error(), None, "error carries context: {err}");
        assert!(err.to_string().contains(TUN), "{err}");
        drop(tun);
        assert_eq!(netlink.link_index(TUN).await.unwrap(), None);
        let gone = netlink.addresses(index).await.unwrap();
        assert_eq!(gone, []);
    });
}

#[test]
fn multicast_memberships_follow_the_kernel() {
    let namespace = Namespace::create();
    namespace.run(|_| async {
        let netlink = Netlink::connect().unwrap();
        let tun = configured_tun(&netlink).await;
        let group4 = Ipv4Addr::new(239, 1, 2, 3);
        let group6: Ipv6Addr = "ff12::1234".parse().unwrap();
        let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        socket.join_multicast_v4(&group4, &LOCAL4).unwrap();
        let socket6 = std::net::UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        socket6.join_multicast_v6(&group6, tun.index()).unwrap();
        let groups = netlink::multicast_memberships(TUN).unwrap();
        for expected in [
            group4.into(),
            Ipv4Addr::new(224, 0, 0, 1).into(),
            group6.into(),
            "ff02::1".parse().unwrap(),
        ] {
            assert!(groups.contains(&expected), "{expected} in {groups:?}");
        }
        drop((socket, socket6));
        let groups = netlink::multicast_memberships(TUN).unwrap();
        assert!(!groups.contains(&group4.into()), "{groups:?}");
        assert!(!groups.contains(&group6.into()), "{groups:?}");
    });
}

#[test]
fn ipv6_can_be_kept_off_an_interface() {
    let namespace = Namespace::create();
    namespace.run(|namespace| async move {
        let netlink = Netlink::connect().unwrap();
        let is_v6 = |entry: &(IpAddr, u8)| entry.0.is_ipv6();

        // disable_ipv6: no IPv6 address at all, not even an explicit one.
        let silent = TunDevice::create(TUN).unwrap();
        netlink::disable_ipv6(TUN, true).unwrap();
        let switch = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{TUN}/disable_ipv6"));
        assert_eq!(switch.unwrap().trim(), "1");
        netlink.set_up(silent.index(), true).await.unwrap();
        assert!(
            netlink
                .addresses(silent.index())
                .await
                .unwrap()
                .iter()
                .all(|e| !is_v6(e))
        );
        assert!(
            netlink
                .add_address(silent.index(), LOCAL6.into(), 64)
                .await
                .is_err()
        );
        // No address, so no solicited-node group (ff02::1:ffxx:xxxx) and no DAD/MLD for one.
        let solicited_node = |group: &IpAddr| match group {
            IpAddr::V6(v6) => {
                v6.segments()[..6] == [0xff02, 0, 0, 0, 0, 1] && v6.octets()[12] == 0xff
            }
            IpAddr::V4(_) => false,
        };
        let groups = netlink::multicast_memberships(TUN).unwrap();
        assert!(!groups.iter().any(solicited_node), "{groups:?}");

        // Address generation off: no link-local address, but explicit ones work.
        let quiet = TunDevice::create("ztplat1").unwrap();
        netlink.set_ipv6_addr_gen_none(quiet.index()).await.unwrap();
        netlink.set_up(quiet.index(), true).await.unwrap();
        netlink
            .add_address(quiet.index(), LOCAL6.into(), 64)
            .await
            .unwrap();
        assert_eq!(
            netlink.addresses(quiet.index()).await.unwrap(),
            [(LOCAL6.into(), 64)]
        );
        let link = ip(&namespace, &["-d", "link", "show", "ztplat1"]);
        assert!(link.contains("addrgenmode none"), "{link}");
    });
}

#[test]
fn names_and_proc_text_are_validated() {
    for bad in ["", "../x", "a/b", "sixteen_bytes_xx", "a b"] {
        let err = ztrs_platform::tun::validate_interface_name(bad).expect_err(bad);
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            netlink::disable_ipv6(bad, true).expect_err(bad).kind(),
            io::ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        netns::enter("..").expect_err("..").kind(),
        io::ErrorKind::InvalidInput
    );
    let igmp6 = "7    ztplat0         ff020000000000000000000000000001     1 0000000C 0\n";
    assert_eq!(
        netlink::parse_igmp6(igmp6, TUN),
        [Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)]
    );
    let group = u32::from_ne_bytes([239, 1, 2, 3]);
    let igmp = format!(
        "Idx\tDevice    : Count Querier\n7\tztplat0   :     1      V3\n\t\t\t\t{group:08X}     1 0:00000000\t\t0\n"
    );
    assert_eq!(
        netlink::parse_igmp(&igmp, TUN),
        [Ipv4Addr::new(239, 1, 2, 3)]
    );
    assert!(netlink::parse_igmp(&igmp, "ztplat1").is_empty());
}
