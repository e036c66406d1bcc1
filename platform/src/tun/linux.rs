//! Linux TUN device over `/dev/net/tun`: creation with `TUNSETIFF` (`IFF_TUN | IFF_NO_PI`,
//! not persistent), readiness through tokio's [`AsyncFd`], and one `read`/`write` per packet.

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::validate_interface_name;

/// The TUN clone device.
const CLONE_DEVICE: &CStr = c"/dev/net/tun";

/// One TUN interface, owned: dropping it closes the file descriptor, and the kernel then
/// deletes the interface with its addresses and routes. `Send + Sync`; reads and writes take
/// `&self`, so one task may read while another writes.
#[derive(Debug)]
pub struct TunDevice {
    fd: AsyncFd<OwnedFd>,
    name: String,
    index: u32,
}

impl TunDevice {
    /// Creates the TUN interface `name` (see [`validate_interface_name`]) in the network
    /// namespace of the calling thread. The interface stays down and has no address.
    ///
    /// Needs `CAP_NET_ADMIN` (the error says so on `EPERM`) and must be called inside a tokio
    /// runtime with I/O enabled, because the descriptor is registered with its reactor. If a
    /// TUN of that name is already open elsewhere the kernel answers `EBUSY`; if a non-TUN
    /// interface has that name, `EINVAL`.
    pub fn create(name: &str) -> io::Result<TunDevice> {
        validate_interface_name(name)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "creating a TUN device needs a tokio runtime (its reactor watches the device)",
            ));
        }
        let fd = open_clone_device()?;
        let name = attach_interface(&fd, name)?;
        let index = interface_index(&name)?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        // SAFETY: `fd` is an open descriptor owned by the `OwnedFd` moved into the `AsyncFd`,
        // which keeps it open and returns the same number from `as_raw_fd` until it is
        // dropped; nothing else can close or replace it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, interest) }
            .map_err(|err| err.into_parts().1)?;
        Ok(TunDevice { fd, name, index })
    }

    /// The interface name, as the kernel confirmed it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (what [`crate::netlink::Netlink`] takes).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Polls for read readiness without consuming it: `Ready(Ok(()))` means a
    /// [`TunDevice::try_recv`] may succeed; readiness is only cleared when that read finds
    /// nothing. Meant for a driver that selects over several devices and sockets.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_read_ready(cx).map_ok(drop)
    }

    /// Waits until a [`TunDevice::try_recv`] may succeed (without consuming readiness).
    pub async fn readable(&self) -> io::Result<()> {
        self.fd.readable().await.map(drop)
    }

    /// Polls for write readiness without consuming it.
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_write_ready(cx).map_ok(drop)
    }

    /// Waits until a [`TunDevice::try_send`] may succeed (without consuming readiness).
    pub async fn writable(&self) -> io::Result<()> {
        self.fd.writable().await.map(drop)
    }

    /// Reads one IP packet into `buf` and returns its length (one `readv` system call).
    /// [`io::ErrorKind::WouldBlock`] when none is queued (tokio's read readiness is then
    /// cleared). A packet longer than `buf` is consumed and reported as
    /// [`io::ErrorKind::InvalidData`] (`buf` then holds its first bytes, not to be used); size
    /// `buf` to at least the interface MTU.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let capacity = buf.len();
        let length = self
            .fd
            .try_io(Interest::READABLE, |fd| read_packet(fd.as_raw_fd(), buf))?;
        if length > capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TUN packet longer than the {capacity}-byte buffer was cut"),
            ));
        }
        Ok(length)
    }

    /// Writes one IP packet (it must start with an IPv4 or IPv6 header; the kernel answers
    /// `EINVAL` otherwise). [`io::ErrorKind::WouldBlock`] when the kernel has no room (tokio's
    /// write readiness is then cleared).
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        self.fd.try_io(Interest::WRITABLE, |fd| {
            write_packet(fd.as_raw_fd(), packet)
        })
    }
}

/// Opens a new non-blocking, close-on-exec descriptor on the TUN clone device.
fn open_clone_device() -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `CLONE_DEVICE` is a NUL-terminated string that lives for the whole program.
    let raw = unsafe { libc::open(CLONE_DEVICE.as_ptr(), flags) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) => io::Error::new(
                err.kind(),
                format!("cannot open /dev/net/tun (is the tun module loaded?): {err}"),
            ),
            Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
                err.kind(),
                format!("cannot open /dev/net/tun (needs CAP_NET_ADMIN or access to it): {err}"),
            ),
            _ => err,
        });
    }
    // SAFETY: `open` succeeded, so `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Attaches the descriptor to the TUN interface `name` (creating it), and returns the name
/// the kernel reports back.
fn attach_interface(fd: &OwnedFd, name: &str) -> io::Result<String> {
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of integers and
    // pointers) for which all-zero bytes are a valid value.
    let mut request: libc::ifreq = unsafe { mem::zeroed() };
    // `name` is validated: ASCII, at most 15 bytes, so the array keeps a terminating NUL.
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`; `request` is a live, exclusively
    // borrowed `ifreq` for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &raw mut request) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) => io::Error::new(
                err.kind(),
                format!("creating TUN {name:?} needs CAP_NET_ADMIN: {err}"),
            ),
            _ => io::Error::new(err.kind(), format!("creating TUN {name:?}: {err}")),
        });
    }
    let returned: Vec<u8> = request
        .ifr_name
        .iter()
        .take_while(|&&byte| byte != 0)
        .map(|&byte| byte as u8)
        .collect();
    String::from_utf8(returned)
        .map_err(|_| io::Error::other("the kernel returned a non-UTF-8 TUN name"))
}

/// The index of the interface `name` in the calling thread's network namespace.
fn interface_index(name: &str) -> io::Result<u32> {
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c_name` is a NUL-terminated string alive for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("no index for new TUN {name:?}: {err}"),
        ));
    }
    Ok(index)
}

/// One `readv` of one packet into `buf` plus a one-byte overflow slot, retried on `EINTR`.
/// The kernel cuts a packet that does not fit and returns only the bytes copied, so a count
/// above `buf.len()` (the overflow slot was reached) is the only sign of truncation.
fn read_packet(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut overflow = [0u8; 1];
    let iovecs = [
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
        libc::iovec {
            iov_base: overflow.as_mut_ptr().cast(),
            iov_len: overflow.len(),
        },
    ];
    loop {
        // SAFETY: both iovecs point at live, exclusively borrowed byte buffers with their true
        // lengths (`buf` and the local `overflow`), which outlive the call; the kernel writes
        // at most those lengths. The count 2 matches the array.
        let rc = unsafe { libc::readv(fd, iovecs.as_ptr(), 2) };
        match usize::try_from(rc) {
            Ok(length) => return Ok(length),
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

/// One `write` of one packet, retried on `EINTR`.
fn write_packet(fd: RawFd, packet: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `packet` is a live byte slice; the kernel reads at most `packet.len()` bytes.
        let rc = unsafe { libc::write(fd, packet.as_ptr().cast(), packet.len()) };
        match usize::try_from(rc) {
            Ok(length) => return Ok(length),
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TunDevice>();
    }

    #[test]
    fn create_rejects_bad_names_before_touching_the_system() {
        let err = TunDevice::create("../etc").expect_err("bad name");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn create_outside_a_runtime_is_an_error_not_a_panic() {
        let err = TunDevice::create("ztnort0").expect_err("no runtime");
        assert_eq!(err.kind(), io::ErrorKind::Other);
    }
}
