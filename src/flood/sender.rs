//! The rate-paced sender: [`Flood`] owns the local sockets (a main one, one per pool
//! identity, and a set of spoofing ones on other loopback addresses), cycles through its
//! kinds and targets at a fixed packet rate, and counts what it sent per target and kind.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::craft::{Crafter, Origin};
use super::kind::Kind;
use super::rng::FloodRng;
use super::target::{IdentityPool, Target, TargetMaterial};
use crate::wire::Address;

/// Pool identities made by [`Flood::new`] when a kind needs them.
pub const DEFAULT_POOL_SIZE: usize = 4;
/// Spoofing sockets (each on its own loopback address and port for a loopback target).
const SPOOF_SOCKETS: usize = 8;
/// Longest sleep between pacing checks.
const PACING_TICK: Duration = Duration::from_millis(1);

/// What a flood sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodReport {
    /// Datagrams the kernel accepted, per (target index, kind).
    pub sent: BTreeMap<(usize, Kind), u64>,
    /// Sends the local kernel refused (buffer full, ...); not in `sent`.
    pub send_errors: u64,
    /// Datagrams the targets sent back to the flood's sockets (answers to HELLOs, ...).
    pub replies: u64,
}

impl FloodReport {
    /// Datagrams of `kind` sent to every target.
    pub fn sent_of(&self, kind: Kind) -> u64 {
        self.sent
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Datagrams of `kind` sent to target `target`.
    pub fn sent_to(&self, target: usize, kind: Kind) -> u64 {
        self.sent.get(&(target, kind)).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.sent.values().sum()
    }
}

/// A hostile-traffic generator; see the module doc.
pub struct Flood {
    kinds: Vec<Kind>,
    rate_pps: u32,
    targets: Vec<TargetMaterial>,
    pool_addresses: Vec<Address>,
    crafter: Crafter,
    primary: UdpSocket,
    pool_sockets: Vec<UdpSocket>,
    spoof_sockets: Vec<UdpSocket>,
    next_spoof: usize,
    turn: usize,
    report: FloodReport,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Flood {
    /// A flood of `kinds` at `rate_pps` datagrams per second in all, spread round-robin over
    /// kinds and targets. Makes [`DEFAULT_POOL_SIZE`] real identities (slow: a memory-hard
    /// hash each) if a kind sends as one.
    pub fn new(kinds: Vec<Kind>, rate_pps: u32, targets: Vec<Target>) -> io::Result<Flood> {
        let needs_pool = kinds.iter().any(|k| {
            matches!(
                k,
                Kind::HelloPool | Kind::CompressBomb | Kind::NetconfOverlap
            )
        });
        let pool = IdentityPool::generate(if needs_pool { DEFAULT_POOL_SIZE } else { 0 });
        Flood::with_pool(kinds, rate_pps, targets, pool)
    }

    /// Like [`Flood::new`] with a given identity pool.
    pub fn with_pool(
        kinds: Vec<Kind>,
        rate_pps: u32,
        targets: Vec<Target>,
        pool: IdentityPool,
    ) -> io::Result<Flood> {
        if kinds.is_empty() || targets.is_empty() || rate_pps == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a flood needs kinds, targets and a rate above 0",
            ));
        }
        let loopback = targets.iter().all(|t| t.endpoint.ip().is_loopback());
        let family_v4 = targets.first().is_none_or(|t| t.endpoint.is_ipv4());
        let bind = |host: [u8; 3]| open(loopback, family_v4, host);
        let primary = bind([1, 0, 1])?;
        let pool_sockets = (0..pool.identities().len())
            .map(|i| bind([16 + (i % 200) as u8, 0, 1]))
            .collect::<io::Result<Vec<_>>>()?;
        let spoof_sockets = (0..SPOOF_SOCKETS)
            .map(|j| bind([64 + j as u8, j as u8, 1 + j as u8]))
            .collect::<io::Result<Vec<_>>>()?;
        let mut rng = FloodRng::from_os();
        let materials = targets
            .into_iter()
            .map(|t| TargetMaterial::new(t, &pool, &mut rng))
            .collect();
        Ok(Flood {
            kinds,
            rate_pps,
            targets: materials,
            pool_addresses: pool.addresses(),
            crafter: Crafter::new(rng),
            primary,
            pool_sockets,
            spoof_sockets,
            next_spoof: 0,
            turn: 0,
            report: FloodReport::default(),
            buf: Vec::with_capacity(16_384),
            scratch: vec![0; 65_536],
        })
    }

    /// The addresses of the pool identities (a target must learn them before the kinds that
    /// send as them are rejected where [`Kind::landing`] says).
    pub fn pool_addresses(&self) -> &[Address] {
        &self.pool_addresses
    }

    /// The local addresses the flood sends from.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(&self.primary)
            .chain(&self.pool_sockets)
            .chain(&self.spoof_sockets)
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    pub fn report(&self) -> &FloodReport {
        &self.report
    }

    /// Sends one datagram of `kind` to target `target` now (no pacing).
    pub fn send(&mut self, kind: Kind, target: usize) {
        let Some(material) = self.targets.get_mut(target) else {
            return;
        };
        let origin = self.crafter.build(kind, material, &mut self.buf);
        if self.buf.is_empty() {
            return;
        }
        let socket = match origin {
            Origin::Primary => &self.primary,
            Origin::Pool(i) => self.pool_sockets.get(i).unwrap_or(&self.primary),
            Origin::Spoof => {
                self.next_spoof = (self.next_spoof + 1) % self.spoof_sockets.len().max(1);
                self.spoof_sockets
                    .get(self.next_spoof)
                    .unwrap_or(&self.primary)
            }
        };
        match socket.send_to(&self.buf, material.target.endpoint) {
            Ok(_) => *self.report.sent.entry((target, kind)).or_default() += 1,
            Err(_) => self.report.send_errors += 1,
        }
    }

    /// Sends `count` datagrams of `kind` to target `target`, paced at the flood's rate.
    pub fn send_paced(&mut self, kind: Kind, target: usize, count: u64) {
        let started = Instant::now();
        for n in 0..count {
            self.pace(started, n);
            self.send(kind, target);
        }
        self.drain_replies();
    }

    /// Sends every kind to every target round-robin, paced, until `stop` is set or `limit`
    /// has passed.
    pub fn run_until(&mut self, stop: &AtomicBool, limit: Duration) {
        let started = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
            self.pace(started, n);
            let per_target = self.kinds.len();
            let kind = self.kinds.get(self.turn % per_target).copied();
            let target = (self.turn / per_target) % self.targets.len();
            self.turn = self.turn.wrapping_add(1);
            if let Some(kind) = kind {
                self.send(kind, target);
            }
            n += 1;
        }
        self.drain_replies();
    }

    /// Waits until datagram `n` (counted from `started`) is due; drains replies meanwhile.
    fn pace(&mut self, started: Instant, n: u64) {
        let due = Duration::from_secs_f64(n as f64 / f64::from(self.rate_pps));
        loop {
            let elapsed = started.elapsed();
            if elapsed >= due {
                return;
            }
            self.drain_replies();
            std::thread::sleep((due - elapsed).min(PACING_TICK));
        }
    }

    /// Reads (and counts) whatever the targets sent back, so the sockets never fill.
    fn drain_replies(&mut self) {
        let sockets = std::iter::once(&self.primary)
            .chain(&self.pool_sockets)
            .chain(&self.spoof_sockets);
        for socket in sockets {
            while socket.recv_from(&mut self.scratch).is_ok() {
                self.report.replies += 1;
            }
        }
    }
}

/// A non-blocking socket for the flood: on loopback, bound to `127.a.b.c` when the system
/// allows it (distinct source prefixes and addresses), else to the family's unspecified
/// address.
fn open(loopback: bool, v4: bool, host: [u8; 3]) -> io::Result<UdpSocket> {
    let socket = if loopback && v4 {
        let ip = Ipv4Addr::new(127, host[0], host[1], host[2]);
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(ip), 0))
            .or_else(|_| UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)))?
    } else if v4 {
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?
    } else if loopback {
        UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0))?
    } else {
        UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0))?
    };
    socket.set_nonblocking(true)?;
    Ok(socket)
}
