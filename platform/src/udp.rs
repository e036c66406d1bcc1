//! UDP underlay sockets: opening with an address-family fallback, large kernel buffers,
//! canonical endpoints, and batched receive/send (`recvmmsg`/`sendmmsg` on Linux, one datagram
//! at a time elsewhere or when the `ZTRS_NO_MMSG=1` kill switch is set).
//!
//! # Address families (H5.5)
//!
//! [`UdpUnderlay::open`] with a wildcard bind tries, in order:
//! 1. an IPv6 socket on `[::]:port` with `IPV6_V6ONLY` off ([`FamilyMode::DualStack`]): it
//!    carries IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`);
//! 2. an IPv6 socket with `IPV6_V6ONLY` on ([`FamilyMode::Ipv6Only`]), for systems that refuse
//!    dual-stack sockets;
//! 3. an IPv4 socket on `0.0.0.0:port` ([`FamilyMode::Ipv4Only`]), for systems without IPv6.
//!
//! The mode in force is reported by [`UdpUnderlay::mode`] and decides, for the life of the
//! socket, which destinations are reachable: an IPv4-only socket refuses non-mapped IPv6
//! destinations and an IPv6-only socket refuses IPv4 ones, with an error rather than a silent
//! drop. Binding a specific IP opens a socket of that family only.
//!
//! # Endpoints (H5.1, H5.2)
//!
//! Every remote endpoint leaving this module is canonical: IPv4-mapped IPv6 becomes IPv4. On a
//! dual-stack socket IPv4 destinations are mapped back to `::ffff:a.b.c.d` just before the
//! system call. An unspecified destination (`0.0.0.0`, `::`, `::ffff:0.0.0.0`) or port 0 is an
//! [`io::ErrorKind::InvalidInput`] error and is never rewritten to loopback.
//!
//! The local endpoint of a wildcard socket is only known per packet. [`UdpUnderlay::local_addr`]
//! gives the bound address with the real port; on the Linux batch path each [`RecvMeta`] also
//! carries the destination IP of the datagram (`IP_PKTINFO` / `IPV6_RECVPKTINFO`). The portable
//! path does not read ancillary data and reports the bound address instead.
//!
//! # Readiness
//!
//! The socket is non-blocking and registered with tokio. [`UdpUnderlay::try_recv_batch`] and
//! [`UdpUnderlay::try_send_batch`] never wait: they return [`io::ErrorKind::WouldBlock`] when
//! the kernel has nothing to give or no room, and clear tokio's readiness so that
//! [`UdpUnderlay::readable`] / [`UdpUnderlay::writable`] wait for the next edge.
//!
//! # Segmentation offloads (Linux batch path)
//!
//! Each datagram sent alone walks the whole stack (and, in a veth/bridge rig, every hop) as
//! its own buffer. With UDP GSO a run of equal-size datagrams to one destination goes to the
//! kernel as ONE message carrying a `UDP_SEGMENT` control message with the segment size; the
//! kernel (or the NIC) cuts it into datagrams as late as possible. With UDP GRO (`UDP_GRO` on
//! the receiving socket) the kernel may hand over such a run without cutting it: one receive
//! slot then holds several datagrams and [`RecvMeta::segment_size`] says where they split
//! ([`RecvMeta::segments`] yields them). Receivers must therefore pass buffers of 64 KiB.
//!
//! [`UdpUnderlay::open`] turns GRO on and probes GSO (`getsockopt(UDP_SEGMENT)`) when the batch
//! mode is [`BatchMode::Mmsg`] and [`UdpConfig::offloads`] is set (the default unless
//! `ZTRS_NO_GSO=1`). If a GSO send is refused anyway (`EIO`, `EINVAL`, `EMSGSIZE`,
//! `EOPNOTSUPP`: devices without checksum offload, a segment above the path MTU of some
//! destination), GSO is turned off for the whole socket (simple and safe, if pessimistic),
//! the refusal counted in [`Offloads::gso_fallbacks`], and the batch sent again without it.
//! The portable path uses neither: switching a socket to [`BatchMode::OneAtATime`] turns GRO
//! off, since that path cannot learn segment sizes. [`UdpUnderlay::offloads`] reports the state.

#[cfg(target_os = "linux")]
mod linux;
mod offload;
mod portable;

use offload::{GsoSwitch, probe_gso, set_gro};
pub use offload::{MAX_GSO_BYTES, MAX_GSO_SEGMENTS, NO_GSO_ENV, Offloads};

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;

/// Most datagrams one batch call moves (one system call on the Linux path).
pub const MAX_BATCH: usize = 64;

/// Kernel buffer size asked for by default (each direction). Linux clamps it to
/// `net.core.rmem_max`/`wmem_max` unless the process may use `SO_RCVBUFFORCE`.
pub const DEFAULT_BUFFER_BYTES: usize = 8 << 20;

/// Smallest buffer size worth asking for when the system refuses larger ones.
const MIN_BUFFER_REQUEST: usize = 256 << 10;

/// Environment variable that, set to `1`, disables `recvmmsg`/`sendmmsg` at runtime.
pub const NO_MMSG_ENV: &str = "ZTRS_NO_MMSG";

/// Address family arrangement of an open socket (see the module doc for the fallback order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyMode {
    /// IPv6 socket with `IPV6_V6ONLY` off: reaches IPv6 and (mapped) IPv4 peers.
    DualStack,
    /// IPv6 socket that only reaches IPv6 peers.
    Ipv6Only,
    /// IPv4 socket that only reaches IPv4 peers.
    Ipv4Only,
}

/// How batches are moved through the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// `recvmmsg`/`sendmmsg` with per-packet destination addresses (Linux only).
    Mmsg,
    /// One `recvfrom`/`sendto` per datagram: portable, no per-packet local address.
    OneAtATime,
}

impl BatchMode {
    /// The best mode of this system, unless the kill switch `ZTRS_NO_MMSG=1` is set.
    pub fn from_env() -> BatchMode {
        BatchMode::with_kill_switch(std::env::var_os(NO_MMSG_ENV).as_deref())
    }

    /// The mode for a given value of the kill switch variable (`Some("1")` disables mmsg).
    pub fn with_kill_switch(value: Option<&std::ffi::OsStr>) -> BatchMode {
        let killed = value.is_some_and(|value| value == "1");
        if killed || !cfg!(target_os = "linux") {
            BatchMode::OneAtATime
        } else {
            BatchMode::Mmsg
        }
    }
}

/// What to bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindAddress {
    /// The wildcard address, with the dual-stack -> IPv6-only -> IPv4 fallback.
    Wildcard,
    /// One address (its family decides the mode; no fallback).
    Ip(IpAddr),
}

/// Options of [`UdpUnderlay::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Address to bind.
    pub bind: BindAddress,
    /// Port to bind; 0 lets the system choose (see [`UdpUnderlay::local_addr`]).
    pub port: u16,
    /// Kernel receive and send buffer size to ask for, in bytes.
    pub buffer_bytes: usize,
    /// How to move batches; [`BatchMode::from_env`] by default.
    pub batch_mode: BatchMode,
    /// Use UDP GSO/GRO where the batch path and the kernel allow (see the module doc); true
    /// by default unless the kill switch `ZTRS_NO_GSO=1` is set.
    pub offloads: bool,
}

impl UdpConfig {
    /// A wildcard socket on `port` with the default buffer size and batch mode.
    pub fn wildcard(port: u16) -> UdpConfig {
        UdpConfig {
            bind: BindAddress::Wildcard,
            port,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            batch_mode: BatchMode::from_env(),
            offloads: offload::offloads_wanted(std::env::var_os(NO_GSO_ENV).as_deref()),
        }
    }

    /// A socket on one address with the default buffer size and batch mode.
    pub fn ip(ip: IpAddr, port: u16) -> UdpConfig {
        UdpConfig {
            bind: BindAddress::Ip(ip),
            ..UdpConfig::wildcard(port)
        }
    }
}

/// Kernel buffer sizes actually in force, as reported back by the kernel (Linux reports twice
/// the requested value because it counts its own bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// `SO_RCVBUF` as granted.
    pub recv: usize,
    /// `SO_SNDBUF` as granted.
    pub send: usize,
    /// True when the privileged `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` path was used.
    pub forced: bool,
}

/// Metadata of one received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes written to the matching buffer (all datagrams of the message).
    pub len: usize,
    /// With GRO: the message holds several datagrams of this size (the last may be shorter);
    /// 0 means one datagram. Split with [`RecvMeta::segments`].
    pub segment_size: usize,
    /// Canonical sender (IPv4-mapped IPv6 turned into IPv4).
    pub remote: SocketAddr,
    /// Canonical local endpoint the datagram was addressed to: the packet's destination IP
    /// when the batch path could read it, else the socket's bound address; the bound port.
    pub local: SocketAddr,
    /// The datagram did not fit the buffer and was cut (the caller should drop it). The
    /// portable path cannot tell, and flags any datagram that fills its buffer exactly.
    pub truncated: bool,
}

impl Default for RecvMeta {
    fn default() -> RecvMeta {
        let nowhere = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        RecvMeta {
            len: 0,
            segment_size: 0,
            remote: nowhere,
            local: nowhere,
            truncated: false,
        }
    }
}

/// A non-blocking UDP socket registered with tokio, with its family mode and batch mode.
#[derive(Debug)]
pub struct UdpUnderlay {
    /// The socket as tokio sees it (readiness).
    io: tokio::net::UdpSocket,
    /// A second handle to the same socket for the portable synchronous calls inside `try_io`.
    plain: std::net::UdpSocket,
    mode: FamilyMode,
    batch_mode: BatchMode,
    local: SocketAddr,
    buffers: BufferSizes,
    /// Per-packet destination addresses are enabled (Linux batch path).
    pktinfo: bool,
    /// The caller wants offloads ([`UdpConfig::offloads`]); kept to turn GRO back on when the
    /// batch mode returns to `Mmsg`.
    offloads_wanted: bool,
    /// `UDP_GRO` is on for the socket.
    gro: bool,
    /// GSO sends allowed (probed at open, turned off after a refusal).
    gso: GsoSwitch,
}

impl UdpUnderlay {
    /// Opens, configures and binds a socket as described in the module doc. Must be called
    /// inside a tokio runtime with I/O enabled; outside one it returns an error.
    pub fn open(config: UdpConfig) -> io::Result<UdpUnderlay> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "UdpUnderlay::open needs a tokio runtime with I/O enabled",
            ));
        }
        let (socket, mode) = bind_with_fallback(config.bind, config.port)?;
        let buffers = grow_buffers(&socket, config.buffer_bytes);
        let pktinfo = enable_pktinfo(&socket, mode);
        socket.set_nonblocking(true)?;
        let plain: std::net::UdpSocket = socket.into();
        let local = plain.local_addr()?;
        let io = tokio::net::UdpSocket::from_std(plain.try_clone()?)?;
        let batch_mode = if cfg!(target_os = "linux") {
            config.batch_mode
        } else {
            BatchMode::OneAtATime
        };
        let use_offloads = config.offloads && batch_mode == BatchMode::Mmsg;
        Ok(UdpUnderlay {
            gro: use_offloads && set_gro(&plain, true),
            gso: GsoSwitch::new(use_offloads && probe_gso(&plain)),
            io,
            plain,
            mode,
            batch_mode,
            local,
            buffers,
            pktinfo,
            offloads_wanted: config.offloads,
        })
    }

    /// The segmentation offloads in force (see the module doc); GSO may turn off after open.
    pub fn offloads(&self) -> Offloads {
        Offloads {
            gso: self.gso.is_on() && self.batch_mode == BatchMode::Mmsg,
            gro: self.gro,
            gso_fallbacks: self.gso.fallbacks(),
        }
    }

    /// The family arrangement in force.
    pub fn mode(&self) -> FamilyMode {
        self.mode
    }

    /// The batch mode in force.
    pub fn batch_mode(&self) -> BatchMode {
        self.batch_mode
    }

    /// Switches the batch mode (tests compare both paths; `Mmsg` is ignored off Linux).
    /// GRO follows: off for the portable path (it cannot split coalesced datagrams), back on
    /// for `Mmsg` when offloads were asked for.
    pub fn set_batch_mode(&mut self, mode: BatchMode) {
        if cfg!(target_os = "linux") {
            self.batch_mode = mode;
            let want_gro = self.offloads_wanted && mode == BatchMode::Mmsg;
            if want_gro != self.gro {
                // Reports the truth: a refused change leaves GRO as it was.
                if set_gro(&self.plain, want_gro) {
                    self.gro = want_gro;
                }
            }
        }
    }

    /// The bound address with its real port (a wildcard IP for wildcard binds; see
    /// [`RecvMeta::local`] for the per-packet address).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Kernel buffer sizes granted at open.
    pub fn buffer_sizes(&self) -> BufferSizes {
        self.buffers
    }

    /// True when received datagrams carry their destination IP in [`RecvMeta::local`].
    pub fn reports_packet_destination(&self) -> bool {
        self.pktinfo && self.batch_mode == BatchMode::Mmsg
    }

    /// Waits until the socket may have datagrams to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the socket may accept datagrams.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Receives up to `min(bufs.len(), meta.len(), MAX_BATCH)` messages without waiting:
    /// message `i` goes to `bufs[i]` (each buffer should hold the largest message expected,
    /// 64 KiB with GRO; a `Vec` is used at its current length) and its metadata to `meta[i]`.
    /// A message is one datagram, or with GRO several ([`RecvMeta::segments`]). Returns how
    /// many messages arrived, or `WouldBlock` when none is waiting. 0 is possible (a datagram
    /// with a non-IP sender, never seen on UDP, is skipped): call again.
    pub fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let count = bufs.len().min(meta.len());
        if count == 0 {
            return Ok(0);
        }
        let (bufs, meta) = (&mut bufs[..count], &mut meta[..count]);
        self.io
            .try_io(Interest::READABLE, || match self.batch_mode {
                #[cfg(target_os = "linux")]
                BatchMode::Mmsg => linux::recv_batch(&self.plain, self.local, bufs, meta),
                _ => portable::recv_batch(&self.plain, self.local, bufs, meta),
            })
    }

    /// Waits for readability, then receives as [`UdpUnderlay::try_recv_batch`].
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_recv_batch(bufs, meta) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    /// Sends datagrams in order without waiting, stopping at the first failure. Returns how
    /// many leading datagrams were handed to the kernel (at most [`MAX_BATCH`]); when that is
    /// 0 the error of the first datagram is returned instead (`WouldBlock` when the send buffer
    /// is full, `InvalidInput` for an unspecified or unreachable-by-family destination). A
    /// caller isolating destinations skips the failing datagram and calls again with the rest.
    /// With GSO, runs of equal-size datagrams to one destination travel as one message; the
    /// count is still in datagrams.
    pub fn try_send_batch(&self, datagrams: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        let datagrams = &datagrams[..datagrams.len().min(MAX_BATCH)];
        if datagrams.is_empty() {
            return Ok(0);
        }
        self.io
            .try_io(Interest::WRITABLE, || match self.batch_mode {
                #[cfg(target_os = "linux")]
                BatchMode::Mmsg => linux::send_batch(&self.plain, self.mode, datagrams, &self.gso),
                _ => portable::send_batch(&self.plain, self.mode, datagrams),
            })
    }

    /// Sends one datagram with a limited IP TTL / IPv6 hop limit, then restores the socket's
    /// previous values. Used for the short-lived datagram that opens NAT state before hole
    /// punching (it must expire before reaching the peer). Best effort: if the socket refuses
    /// the option for one family the datagram is still sent. The driver is single-task, so no
    /// other send can observe the temporary TTL.
    pub fn try_send_with_ttl(&self, remote: SocketAddr, data: &[u8], ttl: u8) -> io::Result<()> {
        let sock = socket2::SockRef::from(&self.plain);
        let saved_v4 = sock.ttl_v4().ok();
        let saved_v6 = match self.mode {
            FamilyMode::Ipv4Only => None,
            _ => sock.unicast_hops_v6().ok(),
        };
        if saved_v4.is_some() {
            let _ = sock.set_ttl_v4(u32::from(ttl));
        }
        if saved_v6.is_some() {
            let _ = sock.set_unicast_hops_v6(u32::from(ttl));
        }
        // Straight to the non-blocking socket: this one datagram does not wait for tokio's
        // readiness bookkeeping (a full buffer is just `WouldBlock`, and the datagram is lost).
        let result = portable::send_batch(&self.plain, self.mode, &[(remote, data)]).map(|_| ());
        if let Some(v) = saved_v4 {
            let _ = sock.set_ttl_v4(v);
        }
        if let Some(v) = saved_v6 {
            let _ = sock.set_unicast_hops_v6(v);
        }
        result
    }

    /// Waits for writability, then sends as [`UdpUnderlay::try_send_batch`] (it waits only
    /// while the kernel has no room; any other error is returned at once).
    pub async fn send_batch(&self, datagrams: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        loop {
            self.writable().await?;
            match self.try_send_batch(datagrams) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

/// Receives as [`UdpUnderlay::try_recv_batch`] (free-function form).
pub fn recv_batch<B: AsMut<[u8]>>(
    socket: &UdpUnderlay,
    bufs: &mut [B],
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    socket.try_recv_batch(bufs, meta)
}

/// Sends as [`UdpUnderlay::try_send_batch`] (free-function form).
pub fn send_batch(socket: &UdpUnderlay, datagrams: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    socket.try_send_batch(datagrams)
}

/// The canonical form of an endpoint: IPv4-mapped IPv6 becomes IPv4 (H5.2). Other IPv6
/// addresses keep their scope id (link-local peers need it).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The address to hand to the kernel for `remote` on a socket in `mode`: canonical, checked
/// (no unspecified address, no port 0) and mapped to `::ffff:a.b.c.d` on dual-stack sockets.
pub fn destination_for(mode: FamilyMode, remote: SocketAddr) -> io::Result<SocketAddr> {
    let remote = canonical(remote);
    if remote.ip().is_unspecified() || remote.port() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unspecified destination {remote}"),
        ));
    }
    match (mode, remote) {
        (FamilyMode::DualStack, SocketAddr::V4(v4)) => Ok(SocketAddr::V6(SocketAddrV6::new(
            v4.ip().to_ipv6_mapped(),
            v4.port(),
            0,
            0,
        ))),
        (FamilyMode::DualStack | FamilyMode::Ipv6Only, SocketAddr::V6(_))
        | (FamilyMode::Ipv4Only, SocketAddr::V4(_)) => Ok(remote),
        (FamilyMode::Ipv6Only, SocketAddr::V4(_)) | (FamilyMode::Ipv4Only, SocketAddr::V6(_)) => {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{remote} is unreachable from a {mode:?} socket"),
            ))
        }
    }
}

/// Binds following the module doc's fallback order, returning the socket and its mode.
fn bind_with_fallback(bind: BindAddress, port: u16) -> io::Result<(Socket, FamilyMode)> {
    match bind {
        BindAddress::Ip(IpAddr::V4(ip)) => Ok((
            bind_one(SocketAddr::new(IpAddr::V4(ip), port), None)?,
            FamilyMode::Ipv4Only,
        )),
        BindAddress::Ip(IpAddr::V6(ip)) => {
            // A mapped address can only ever carry IPv4, so treat it as an IPv4 bind.
            if let Some(v4) = ip.to_ipv4_mapped() {
                return bind_with_fallback(BindAddress::Ip(IpAddr::V4(v4)), port);
            }
            Ok((
                bind_one(SocketAddr::new(IpAddr::V6(ip), port), Some(true))?,
                FamilyMode::Ipv6Only,
            ))
        }
        BindAddress::Wildcard => {
            let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
            let any4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            let dual = match bind_one(any6, Some(false)) {
                Ok(socket) => return Ok((socket, FamilyMode::DualStack)),
                Err(err) => err,
            };
            let v6only = match bind_one(any6, Some(true)) {
                Ok(socket) => return Ok((socket, FamilyMode::Ipv6Only)),
                Err(err) => err,
            };
            bind_one(any4, None)
                .map(|socket| (socket, FamilyMode::Ipv4Only))
                .map_err(|v4| {
                    io::Error::new(
                        v4.kind(),
                        format!(
                            "cannot bind UDP port {port}: dual-stack: {dual}; \
                             IPv6-only: {v6only}; IPv4: {v4}"
                        ),
                    )
                })
        }
    }
}

/// Creates a UDP socket for `addr`'s family, sets `IPV6_V6ONLY` when given, and binds.
fn bind_one(addr: SocketAddr, v6only: Option<bool>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(only) = v6only {
        socket.set_only_v6(only)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// Asks for `bytes` of kernel buffer each way: the privileged forcing options first (Linux),
/// then the ordinary ones with halving sizes for systems that refuse instead of clamping.
/// Failures only leave smaller buffers; the sizes granted are read back.
fn grow_buffers(socket: &Socket, bytes: usize) -> BufferSizes {
    #[cfg(target_os = "linux")]
    let (recv_forced, send_forced) = linux::force_buffers(socket, bytes);
    #[cfg(not(target_os = "linux"))]
    let (recv_forced, send_forced) = (false, false);
    if !recv_forced {
        let mut size = bytes.max(MIN_BUFFER_REQUEST);
        while size >= MIN_BUFFER_REQUEST && socket.set_recv_buffer_size(size).is_err() {
            size /= 2;
        }
    }
    if !send_forced {
        let mut size = bytes.max(MIN_BUFFER_REQUEST);
        while size >= MIN_BUFFER_REQUEST && socket.set_send_buffer_size(size).is_err() {
            size /= 2;
        }
    }
    BufferSizes {
        recv: socket.recv_buffer_size().unwrap_or(0),
        send: socket.send_buffer_size().unwrap_or(0),
        forced: recv_forced && send_forced,
    }
}

/// Turns on per-packet destination addresses where the batch path can read them.
fn enable_pktinfo(socket: &Socket, mode: FamilyMode) -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::enable_pktinfo(SockRef::from(socket), mode)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, mode);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ttl_send_arrives_and_restores_the_socket() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let underlay = UdpUnderlay::open(UdpConfig::ip(Ipv4Addr::LOCALHOST.into(), 0)).unwrap();
            let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let before = socket2::SockRef::from(&underlay.plain).ttl_v4().unwrap();
            underlay
                .try_send_with_ttl(receiver.local_addr().unwrap(), b"junk", 2)
                .unwrap();
            let mut buf = [0u8; 16];
            let (len, from) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], b"junk");
            assert_eq!(from, underlay.local_addr());
            let after = socket2::SockRef::from(&underlay.plain).ttl_v4().unwrap();
            assert_eq!(after, before, "the temporary TTL is undone");
            assert_ne!(before, 2);
        });
    }

    #[test]
    fn canonical_unmaps_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:9993".parse().unwrap();
        assert_eq!(canonical(mapped), "10.1.2.3:9993".parse().unwrap());
        let v6: SocketAddr = "[fe80::1%3]:9993".parse().unwrap();
        assert_eq!(canonical(v6), v6);
        // IPv4-compatible (deprecated) addresses are IPv6, not IPv4.
        let compat: SocketAddr = "[::10.1.2.3]:9993".parse().unwrap();
        assert_eq!(canonical(compat), compat);
    }

    #[test]
    fn destinations_follow_the_mode() {
        let v4: SocketAddr = "192.0.2.1:9993".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:9993".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:9993".parse().unwrap();
        assert_eq!(destination_for(FamilyMode::DualStack, v4).unwrap(), mapped);
        assert_eq!(
            destination_for(FamilyMode::DualStack, mapped).unwrap(),
            mapped
        );
        assert_eq!(destination_for(FamilyMode::DualStack, v6).unwrap(), v6);
        assert_eq!(destination_for(FamilyMode::Ipv4Only, mapped).unwrap(), v4);
        assert!(destination_for(FamilyMode::Ipv4Only, v6).is_err());
        assert!(destination_for(FamilyMode::Ipv6Only, v4).is_err());
        assert_eq!(destination_for(FamilyMode::Ipv6Only, v6).unwrap(), v6);
    }

    #[test]
    fn unspecified_destinations_are_errors() {
        for text in [
            "0.0.0.0:9993",
            "[::]:9993",
            "[::ffff:0.0.0.0]:9993",
            "127.0.0.1:0",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            for mode in [
                FamilyMode::DualStack,
                FamilyMode::Ipv6Only,
                FamilyMode::Ipv4Only,
            ] {
                let err = destination_for(mode, addr).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{text} {mode:?}");
            }
        }
    }

    #[test]
    fn kill_switch() {
        use std::ffi::OsStr;
        assert_eq!(
            BatchMode::with_kill_switch(Some(OsStr::new("1"))),
            BatchMode::OneAtATime
        );
        let default = if cfg!(target_os = "linux") {
            BatchMode::Mmsg
        } else {
            BatchMode::OneAtATime
        };
        assert_eq!(BatchMode::with_kill_switch(None), default);
        assert_eq!(BatchMode::with_kill_switch(Some(OsStr::new("0"))), default);
    }

    #[test]
    fn open_outside_a_runtime_is_an_error() {
        assert!(UdpUnderlay::open(UdpConfig::wildcard(0)).is_err());
    }
}
