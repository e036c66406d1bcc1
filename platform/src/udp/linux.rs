//! Linux-only socket work: `recvmmsg`/`sendmmsg` batches with per-packet destination
//! addresses from `IP_PKTINFO`/`IPV6_PKTINFO`, and the privileged buffer-forcing options.
//!
//! Like every `unsafe` block of ztrs (all in this crate), each block here states why it is sound. All per-call scratch (headers, iovecs,
//! addresses, control buffers) lives on the stack, sized by [`MAX_BATCH`].

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

use socket2::{SockAddr, SockAddrStorage, SockRef, Socket};

use super::{FamilyMode, MAX_BATCH, RecvMeta, canonical, destination_for};

/// Control buffer per datagram: one `in6_pktinfo` or `in_pktinfo` message (at most 40 bytes
/// on 64-bit Linux) with room to spare for options the kernel may add.
const CONTROL_LEN: usize = 88;

/// A control-message buffer aligned for `cmsghdr` (whose first field is a `size_t`).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Control([u8; CONTROL_LEN]);

/// Sets one integer socket option.
fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `value` is a live c_int for the duration of the call and the length passed is
    // its size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr::from_ref(&value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Tries `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` (they need `CAP_NET_ADMIN`, e.g. root, and ignore
/// `net.core.rmem_max`). Returns which directions were forced: (receive, send).
pub(super) fn force_buffers(socket: &Socket, bytes: usize) -> (bool, bool) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let fd = socket.as_raw_fd();
    (
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size),
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size),
    )
}

/// Asks the kernel to attach each datagram's destination address. On a dual-stack socket
/// IPv4 datagrams report through the IPv4 option, so both are set. True when all succeeded.
pub(super) fn enable_pktinfo(socket: SockRef<'_>, mode: FamilyMode) -> bool {
    let fd = socket.as_raw_fd();
    let v4 = || set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1);
    let v6 = || set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1);
    match mode {
        FamilyMode::DualStack => v6() && v4(),
        FamilyMode::Ipv6Only => v6(),
        FamilyMode::Ipv4Only => v4(),
    }
}

/// Receives up to `min(bufs.len(), meta.len(), MAX_BATCH)` datagrams with one `recvmmsg`.
/// A datagram whose sender is not an IP address (never seen on a UDP socket) is skipped and
/// the following ones move up, so the result may be 0.
pub(super) fn recv_batch<B: AsMut<[u8]>>(
    socket: &std::net::UdpSocket,
    bound: SocketAddr,
    bufs: &mut [B],
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    let count = bufs.len().min(meta.len()).min(MAX_BATCH);
    let mut names: [SockAddrStorage; MAX_BATCH] =
        std::array::from_fn(|_| SockAddrStorage::zeroed());
    let mut controls = [Control([0; CONTROL_LEN]); MAX_BATCH];
    // SAFETY: `iovec` and `mmsghdr` are plain C structs for which all-zero bytes (null
    // pointers, zero lengths) are valid values.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };

    let names_base = names.as_mut_ptr();
    let controls_base = controls.as_mut_ptr();
    let iovecs_base = iovecs.as_mut_ptr();
    for (i, buf) in bufs.iter_mut().take(count).enumerate() {
        let buf = buf.as_mut();
        let iovec = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let name = names_base.wrapping_add(i);
        let control = controls_base.wrapping_add(i);
        let iovec_slot = iovecs_base.wrapping_add(i);
        // SAFETY: `i < count <= MAX_BATCH`, so the slot is inside `iovecs`.
        unsafe { iovec_slot.write(iovec) };
        let header = &mut headers[i].msg_hdr;
        header.msg_name = name.cast();
        header.msg_namelen = mem::size_of::<SockAddrStorage>() as libc::socklen_t;
        header.msg_iov = iovec_slot;
        header.msg_iovlen = 1;
        header.msg_control = control.cast();
        header.msg_controllen = CONTROL_LEN as _;
    }

    // SAFETY: the first `count` headers point at live, exclusively borrowed buffers, address
    // storages and control buffers (all outliving the call) with their true lengths; the
    // kernel writes at most those lengths. No timeout pointer is passed.
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT as _,
            ptr::null_mut(),
        )
    };
    let received = usize::try_from(received).map_err(|_| io::Error::last_os_error())?;

    let mut kept = 0;
    for i in 0..received.min(count) {
        let header = &headers[i];
        let storage = mem::replace(&mut names[i], SockAddrStorage::zeroed());
        // SAFETY: the kernel filled `storage` with an address of the family it records and
        // set `msg_namelen` to that address's length.
        let remote = unsafe { SockAddr::new(storage, header.msg_hdr.msg_namelen) }.as_socket();
        let Some(remote) = remote else { continue };
        let local = destination_ip(&header.msg_hdr)
            .map(|ip| with_port(ip, bound.port()))
            .unwrap_or(bound);
        if kept != i {
            bufs.swap(kept, i);
        }
        meta[kept] = RecvMeta {
            len: header.msg_len as usize,
            remote: canonical(remote),
            local: canonical(local),
            truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
        kept += 1;
    }
    Ok(kept)
}

/// Pairs a destination IP from ancillary data with the socket's port.
fn with_port(ip: (IpAddr, u32), port: u16) -> SocketAddr {
    match ip {
        (IpAddr::V6(v6), scope) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
        (v4, _) => SocketAddr::new(v4, port),
    }
}

/// The destination IP (and, for IPv6 link-local, the interface as scope id) recorded by
/// `IP_PKTINFO`/`IPV6_PKTINFO` in a received message's control data.
fn destination_ip(header: &libc::msghdr) -> Option<(IpAddr, u32)> {
    // SAFETY: `header` is the message the kernel just completed: its control pointer and
    // (updated) control length describe our control buffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(header) };
    while !cmsg.is_null() {
        // SAFETY: a non-null result of CMSG_FIRSTHDR/CMSG_NXTHDR points at a whole `cmsghdr`
        // inside the control buffer; it is read unaligned to make no alignment assumption.
        let info = unsafe { ptr::read_unaligned(cmsg) };
        let data_len = (info.cmsg_len as usize).saturating_sub(cmsg_header_len());
        match (info.cmsg_level, info.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
                if data_len >= mem::size_of::<libc::in_pktinfo>() =>
            {
                // SAFETY: the message carries at least an `in_pktinfo` after its header.
                let pktinfo: libc::in_pktinfo =
                    unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                let ip = Ipv4Addr::from(u32::from_be(pktinfo.ipi_addr.s_addr));
                return Some((IpAddr::V4(ip), 0));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                if data_len >= mem::size_of::<libc::in6_pktinfo>() =>
            {
                // SAFETY: the message carries at least an `in6_pktinfo` after its header.
                let pktinfo: libc::in6_pktinfo =
                    unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                let ip = Ipv6Addr::from(pktinfo.ipi6_addr.s6_addr);
                let scope = if ip.is_unicast_link_local() {
                    pktinfo.ipi6_ifindex
                } else {
                    0
                };
                return Some((IpAddr::V6(ip), scope));
            }
            _ => {}
        }
        // SAFETY: `cmsg` is a valid message of `header`'s control buffer; CMSG_NXTHDR checks
        // the bounds and returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    None
}

/// Bytes from the start of a control message to its data (`CMSG_LEN(0)`).
fn cmsg_header_len() -> usize {
    // SAFETY: CMSG_LEN is pure arithmetic on its argument.
    unsafe { libc::CMSG_LEN(0) as usize }
}

/// Sends the leading datagrams whose destinations are valid for `mode` with one `sendmmsg`
/// (at most [`MAX_BATCH`]). Returns how many the kernel took; when none, the error of the
/// first datagram (its address check or the system call's error).
pub(super) fn send_batch(
    socket: &std::net::UdpSocket,
    mode: FamilyMode,
    datagrams: &[(SocketAddr, &[u8])],
) -> io::Result<usize> {
    let mut names: [Option<SockAddr>; MAX_BATCH] = [const { None }; MAX_BATCH];
    // SAFETY: all-zero bytes are valid `iovec` and `mmsghdr` values.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };

    let mut prepared = 0;
    for (i, (remote, data)) in datagrams.iter().take(MAX_BATCH).enumerate() {
        let destination = match destination_for(mode, *remote) {
            Ok(destination) => destination,
            // Stop before the bad one: the caller learns its error on its own call.
            Err(err) if i == 0 => return Err(err),
            Err(_) => break,
        };
        let name = names[i].insert(SockAddr::from(destination));
        iovecs[i] = libc::iovec {
            // sendmmsg only reads the data; the field is `*mut` for the receive side's sake.
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        let header = &mut headers[i].msg_hdr;
        header.msg_name = name.as_ptr().cast_mut().cast();
        header.msg_namelen = name.len();
        prepared = i + 1;
    }
    let iovecs_base = iovecs.as_mut_ptr();
    for (i, header) in headers.iter_mut().take(prepared).enumerate() {
        header.msg_hdr.msg_iov = iovecs_base.wrapping_add(i);
        header.msg_hdr.msg_iovlen = 1;
    }

    // SAFETY: the first `prepared` headers point at live addresses (in `names`), iovecs and
    // payload slices that outlive the call, with their true lengths; the kernel only reads
    // them (and writes each header's `msg_len`).
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            prepared as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    match usize::try_from(sent) {
        Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
        Ok(sent) => Ok(sent),
        Err(_) => Err(io::Error::last_os_error()),
    }
}
