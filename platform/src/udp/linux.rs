//! Linux-only socket work: `recvmmsg`/`sendmmsg` batches with per-packet destination
//! addresses from `IP_PKTINFO`/`IPV6_PKTINFO`, UDP GSO (`UDP_SEGMENT` control messages on
//! send) and GRO (`UDP_GRO` segment sizes on receive), and the privileged buffer-forcing
//! options.
//!
//! Like every `unsafe` block of ztrs (all in this crate), each block here states why it is sound. All per-call scratch (headers, iovecs,
//! addresses, control buffers) lives on the stack, sized by [`MAX_BATCH`].

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

use socket2::{SockAddr, SockAddrStorage, SockRef, Socket};

use super::offload::{GsoSwitch, gso_run_len};
use super::{FamilyMode, MAX_BATCH, RecvMeta, canonical, destination_for};

/// Control buffer per message: on receive one `in6_pktinfo` or `in_pktinfo` message (at most
/// 40 bytes on 64-bit Linux) plus a `UDP_GRO` int (24 bytes), on send one `UDP_SEGMENT` u16,
/// with room to spare for options the kernel may add.
const CONTROL_LEN: usize = 128;

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

/// Turns `UDP_GRO` on or off. True when the kernel accepted (it knows the option since 5.0).
pub(super) fn set_gro(socket: &std::net::UdpSocket, on: bool) -> bool {
    set_int_option(
        socket.as_raw_fd(),
        libc::SOL_UDP,
        libc::UDP_GRO,
        libc::c_int::from(on),
    )
}

/// True when the kernel knows `UDP_SEGMENT` (since 4.18): reading it succeeds. A device that
/// cannot segment is only found out by a refused send (see [`send_batch`]).
pub(super) fn probe_gso(socket: &std::net::UdpSocket) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live for the call and `len` holds `value`'s size; the
    // kernel writes at most that many bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    rc == 0
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
        let control = read_control(&header.msg_hdr);
        let local = control
            .destination
            .map(|ip| with_port(ip, bound.port()))
            .unwrap_or(bound);
        let len = header.msg_len as usize;
        if kept != i {
            bufs.swap(kept, i);
        }
        meta[kept] = RecvMeta {
            len,
            // A "run" of one datagram is just a datagram.
            segment_size: if control.segment_size < len {
                control.segment_size
            } else {
                0
            },
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

/// What a received message's control data says.
#[derive(Default)]
struct ReceivedControl {
    /// The destination IP (and, for IPv6 link-local, the interface as scope id) recorded by
    /// `IP_PKTINFO`/`IPV6_PKTINFO`.
    destination: Option<(IpAddr, u32)>,
    /// The GRO segment size (`UDP_GRO`), 0 when absent.
    segment_size: usize,
}

/// Reads the destination IP and GRO segment size from a received message's control data.
fn read_control(header: &libc::msghdr) -> ReceivedControl {
    let mut found = ReceivedControl::default();
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
                found.destination = Some((IpAddr::V4(ip), 0));
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
                found.destination = Some((IpAddr::V6(ip), scope));
            }
            (libc::SOL_UDP, libc::UDP_GRO) if data_len >= mem::size_of::<libc::c_int>() => {
                // SAFETY: the message carries at least an int after its header.
                let size: libc::c_int =
                    unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                found.segment_size = usize::try_from(size).unwrap_or(0);
            }
            _ => {}
        }
        // SAFETY: `cmsg` is a valid message of `header`'s control buffer; CMSG_NXTHDR checks
        // the bounds and returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(header, cmsg) };
    }
    found
}

/// Bytes from the start of a control message to its data (`CMSG_LEN(0)`).
fn cmsg_header_len() -> usize {
    // SAFETY: CMSG_LEN is pure arithmetic on its argument.
    unsafe { libc::CMSG_LEN(0) as usize }
}

/// Control buffer of one sent message: one `UDP_SEGMENT` u16 (`CMSG_SPACE(2)` is 24 bytes on
/// 64-bit Linux), aligned for `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct SegmentControl([u8; 32]);

/// Errors of a send carrying a `UDP_SEGMENT` message that mean GSO cannot be used here: the
/// device cannot segment or checksum (`EIO`), the segment exceeds the path MTU (`EMSGSIZE`
/// on recent kernels, `EINVAL` on older ones, which also use it for other kernel limits), or
/// the socket type has no GSO (`EOPNOTSUPP`, alias `ENOTSUP`). Without GSO the same datagrams
/// are fragmented as usual, so none of these is the datagrams' fault.
fn is_gso_refusal(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::EOPNOTSUPP)
    )
}

/// Sends the leading datagrams whose destinations are valid for `mode` with one `sendmmsg`
/// (at most [`MAX_BATCH`]), coalescing GSO runs while `gso` is on. Returns how many datagrams
/// the kernel took; when none, the error of the first datagram (its address check or the
/// system call's error). If the kernel refuses a GSO message, GSO is turned off for the socket
/// and the batch is sent again without it, so the caller never sees that refusal.
pub(super) fn send_batch(
    socket: &std::net::UdpSocket,
    mode: FamilyMode,
    datagrams: &[(SocketAddr, &[u8])],
    gso: &GsoSwitch,
) -> io::Result<usize> {
    if gso.is_on() {
        match send_messages(socket, mode, datagrams, true) {
            // Only a refusal of a coalesced first message is GSO's fault: a later message's
            // error is not reported by sendmmsg, and shows up first on the caller's next call.
            // Destinations equal to the first one are as valid as it, so the run computed
            // here is the one that was sent.
            Err(err) if is_gso_refusal(&err) && gso_run_len(datagrams) > 1 => {
                gso.turn_off_after_refusal();
            }
            other => return other,
        }
    }
    send_messages(socket, mode, datagrams, false)
}

/// Writes a `UDP_SEGMENT` control message of `segment_size` into `control`; returns the
/// control length to give the kernel.
fn write_segment_size(control: &mut SegmentControl, segment_size: u16) -> usize {
    // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic on their argument.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize,
            libc::CMSG_LEN(mem::size_of::<u16>() as u32) as usize,
        )
    };
    if space > control.0.len() {
        return 0;
    }
    // SAFETY: all-zero bytes are a valid `msghdr` (null pointers, zero lengths).
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_control = control.0.as_mut_ptr().cast();
    header.msg_controllen = space as _;
    // SAFETY: `header` describes `space` bytes of `control`; CMSG_FIRSTHDR only reads the
    // header's control pointer and length.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&header) };
    if cmsg.is_null() {
        return 0;
    }
    // SAFETY: `cmsg` points at the start of `control`, aligned for `cmsghdr` (align 8) and
    // with `space` bytes available: the header fields and the u16 after CMSG_DATA fit.
    unsafe {
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = len as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment_size);
    }
    space
}

/// One `sendmmsg` of the leading valid datagrams, each GSO run (when `gso`) as one message.
/// Returns datagrams sent, not messages.
fn send_messages(
    socket: &std::net::UdpSocket,
    mode: FamilyMode,
    datagrams: &[(SocketAddr, &[u8])],
    gso: bool,
) -> io::Result<usize> {
    let datagrams = datagrams.get(..MAX_BATCH).unwrap_or(datagrams);
    // Per message: its address, its control data and which datagrams it carries.
    let mut names: [Option<SockAddr>; MAX_BATCH] = [const { None }; MAX_BATCH];
    let mut controls = [SegmentControl([0; 32]); MAX_BATCH];
    let mut control_lens = [0usize; MAX_BATCH];
    let mut first_datagram = [0usize; MAX_BATCH];
    let mut datagram_count = [0usize; MAX_BATCH];
    // Per datagram, in order, so a message's iovecs are consecutive.
    // SAFETY: all-zero bytes are valid `iovec` and `mmsghdr` values.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };

    let mut messages = 0;
    let mut next = 0;
    while let Some(rest) = datagrams.get(next..).filter(|rest| !rest.is_empty()) {
        let Some((remote, first)) = rest.first() else {
            break;
        };
        let destination = match destination_for(mode, *remote) {
            Ok(destination) => destination,
            // Stop before the bad one: the caller learns its error on its own call.
            Err(err) if messages == 0 => return Err(err),
            Err(_) => break,
        };
        let mut run = if gso { gso_run_len(rest).max(1) } else { 1 };
        if run > 1 {
            // The planner keeps runs under 65000 bytes, so the size always fits a u16.
            match u16::try_from(first.len()) {
                Ok(size) => {
                    control_lens[messages] = write_segment_size(&mut controls[messages], size)
                }
                Err(_) => run = 1,
            }
            if control_lens[messages] == 0 {
                run = 1;
            }
        }
        for (slot, (_, data)) in iovecs[next..].iter_mut().zip(rest.iter().take(run)) {
            *slot = libc::iovec {
                // sendmmsg only reads the data; the field is `*mut` for the receive side.
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            };
        }
        names[messages] = Some(SockAddr::from(destination));
        first_datagram[messages] = next;
        datagram_count[messages] = run;
        messages += 1;
        next += run;
    }

    let iovecs_base = iovecs.as_mut_ptr();
    let controls_base = controls.as_mut_ptr();
    for (m, header) in headers.iter_mut().take(messages).enumerate() {
        let Some(name) = names[m].as_ref() else {
            continue;
        };
        let header = &mut header.msg_hdr;
        header.msg_name = name.as_ptr().cast_mut().cast();
        header.msg_namelen = name.len();
        header.msg_iov = iovecs_base.wrapping_add(first_datagram[m]);
        header.msg_iovlen = datagram_count[m] as _;
        if control_lens[m] > 0 && datagram_count[m] > 1 {
            header.msg_control = controls_base.wrapping_add(m).cast();
            header.msg_controllen = control_lens[m] as _;
        }
    }

    // SAFETY: the first `messages` headers point at live addresses (in `names`), iovec runs
    // (inside `iovecs`, each within the first `next` slots), control buffers and payload
    // slices that outlive the call, with their true lengths; the kernel only reads them (and
    // writes each header's `msg_len`).
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            messages as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    match usize::try_from(sent) {
        Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
        Ok(sent) => Ok(datagram_count.iter().take(sent).sum()),
        Err(_) => Err(io::Error::last_os_error()),
    }
}
