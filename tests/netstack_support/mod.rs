//! Shared by the user-space stack's hardening tests: an in-process lab whose stacks record
//! the TCP segments of watched ports and lose chosen ones (a handshake's final ACK, IPv6
//! SYNs), so tests see what went on the wire; and small waits and helpers.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use ztrs::lab::{Lab, LabMember, LabOptions};
use ztrs::netstack::{TcpListener, TcpStream};

/// Upper bound on every awaited event (far above the expected time, far below a hang).
pub const BOUND: Duration = Duration::from_secs(10);
/// An address of the lab's IPv4 subnet that no member holds: nobody answers its ARP.
pub const NOBODY: [u8; 4] = [10, 147, 17, 254];
/// Segments kept by the recorder (only watched ports are recorded).
pub const LOG_LIMIT: usize = 200_000;

/// What the outbound filter saw of one TCP segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub v6: bool,
    pub src: u16,
    pub dst: u16,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
    pub window: u16,
    pub len: usize,
}

#[derive(Default)]
pub struct FaultState {
    pub watched: BTreeSet<u16>,
    pub log: Vec<Segment>,
    pub lose_first_ack_to: BTreeSet<u16>,
    pub blackhole_v6_syns_to: BTreeSet<u16>,
    pub lost: Vec<Segment>,
}

/// The rules and records of the outbound filter every member of a lab shares.
#[derive(Default)]
pub struct Faults(Mutex<FaultState>);

pub fn segment_of(packet: &[u8]) -> Option<Segment> {
    let sliced = SlicedPacket::from_ip(packet).ok()?;
    let v6 = matches!(sliced.net, Some(NetSlice::Ipv6(_)));
    let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
        return None;
    };
    Some(Segment {
        v6,
        src: tcp.source_port(),
        dst: tcp.destination_port(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        seq: tcp.sequence_number(),
        window: tcp.window_size(),
        len: tcp.payload().len(),
    })
}

impl Faults {
    pub fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap()
    }

    /// The filter's verdict: true loses the packet.
    pub fn judge(&self, packet: &[u8]) -> bool {
        let Some(seg) = segment_of(packet) else {
            return false;
        };
        let mut state = self.state();
        if (state.watched.contains(&seg.src) || state.watched.contains(&seg.dst))
            && state.log.len() < LOG_LIMIT
        {
            state.log.push(seg);
        }
        let pure_ack = seg.ack && !seg.syn && !seg.fin && !seg.rst && seg.len == 0;
        let lose = (pure_ack && state.lose_first_ack_to.remove(&seg.dst))
            || (seg.v6 && seg.syn && !seg.ack && state.blackhole_v6_syns_to.contains(&seg.dst));
        if lose {
            state.lost.push(seg);
        }
        lose
    }

    pub fn watch(&self, port: u16) {
        self.state().watched.insert(port);
    }

    pub fn seen(&self, pick: impl Fn(&Segment) -> bool) -> Vec<Segment> {
        self.state().log.iter().copied().filter(pick).collect()
    }

    pub fn lost(&self) -> Vec<Segment> {
        self.state().lost.clone()
    }
}

pub async fn lab_with(mut options: LabOptions) -> (Lab, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let judge = faults.clone();
    options.netstack.outbound_filter = Some(Arc::new(move |p: &[u8]| judge.judge(p)));
    (Lab::start(options).await.expect("lab started"), faults)
}

pub async fn lab() -> (Lab, Arc<Faults>) {
    lab_with(LabOptions::default()).await
}

pub fn at(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

pub fn v4(member: &LabMember, port: u16) -> SocketAddr {
    at(member.ipv4().expect("IPv4 address"), port)
}

pub fn v6(member: &LabMember, port: u16) -> SocketAddr {
    at(member.ipv6().expect("IPv6 address"), port)
}

/// The member's user-space report of the lab network (sockets, device counters...).
pub async fn report(lab: &Lab, member: usize) -> serde_json::Value {
    let nwid = lab.nwid;
    lab.members[member]
        .handle
        .inspect_attached(move |_, attachment| attachment.and_then(|a| a.network_report(nwid)))
        .await
        .expect("inspect")
        .unwrap_or(json!({}))
}

pub async fn sockets(lab: &Lab, member: usize) -> u64 {
    report(lab, member).await["sockets"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// Re-checks `condition` (every 20 ms) until it holds; fails naming `what` after `bound`.
pub async fn eventually<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn connect(member: &LabMember, to: SocketAddr) -> TcpStream {
    timeout(BOUND, member.netstack.connect(to))
        .await
        .unwrap_or_else(|_| panic!("connect to {to} within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"))
}

pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    timeout(BOUND, listener.accept())
        .await
        .expect("accept within bound")
        .expect("accept")
}

/// The lab still carries a fresh connection both ways (no driver died on the way).
pub async fn assert_healthy(lab: &Lab, port: u16) {
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let listener = b.netstack.bind_tcp(v4(b, port)).unwrap();
    let mut client = connect(a, v4(b, port)).await;
    let (mut server, _) = accept(&listener).await;
    client.write_all(b"still alive").await.unwrap();
    let mut got = [0u8; 11];
    timeout(BOUND, server.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"still alive");
}

pub fn is_orderly_end(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}
