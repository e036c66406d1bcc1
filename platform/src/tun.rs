//! TUN devices: one layer-3 virtual interface per [`TunDevice`], non-blocking and registered
//! with tokio, moving raw IP packets (no packet-information header, no offload header).
//!
//! # Backends
//!
//! - Linux: our own implementation over `/dev/net/tun` (`TUNSETIFF` with
//!   `IFF_TUN | IFF_NO_PI`). The device is not persistent: closing it (dropping the
//!   [`TunDevice`]) deletes the interface and with it every address and route on it, which is
//!   the cleanup on leave and on exit. Addresses, routes and MTU are set through
//!   [`crate::netlink`].
//! - macOS (utun) and Windows (Wintun): the `tun-rs` crate. **Untested**: no such target can be
//!   built on the project's machines. Same API; on Windows readiness waits run on a helper
//!   thread inside `tun-rs`.
//! - Anything else: [`TunDevice::create`] returns [`io::ErrorKind::Unsupported`].
//!
//! # Per-packet cost
//!
//! [`TunDevice::try_recv`] and [`TunDevice::try_send`] are one system call each (`readv` into
//! the caller's buffer plus a one-byte overflow slot that detects truncation, `write`): no
//! allocation, no copy, no lock. Readiness comes from tokio's
//! reactor; `WouldBlock` clears it so the next wait sleeps until the kernel signals again.
//!
//! # Truncation
//!
//! A packet longer than the buffer given to [`TunDevice::try_recv`] is consumed and reported
//! as an [`io::ErrorKind::InvalidData`] error (the buffer holds its first bytes, which must not
//! be forwarded). Buffers of at least the interface MTU never see this.

use std::io;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::TunDevice;

#[cfg(any(target_os = "macos", target_os = "windows"))]
mod tun_rs_backend;
#[cfg(any(target_os = "macos", target_os = "windows"))]
pub use tun_rs_backend::TunDevice;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub use unsupported::TunDevice;

/// Longest interface name in bytes (Linux `IFNAMSIZ` minus the terminating NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// Checks that `name` is usable as an interface name and as one path component under
/// `/proc/sys/net/...`: 1 to [`MAX_INTERFACE_NAME_LEN`] bytes of ASCII letters, digits, `-`,
/// `_` or `.`, and not `.` or `..`. Stricter than the kernel (which accepts most UTF-8) so that
/// a name can never traverse paths or confuse tools that parse `ip` output.
pub fn validate_interface_name(name: &str) -> io::Result<()> {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_INTERFACE_NAME_LEN {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is a path component")
    } else if !name.bytes().all(allowed) {
        Some("has a character other than ASCII letters, digits, '-', '_' and '.'")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} {problem}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["zt0", "ztplat0", "zt-abc_12.3", "a", "fifteen_bytes_x"] {
            assert!(validate_interface_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for name in [
            "",
            ".",
            "..",
            "sixteen_bytes_xx",
            "a/b",
            "../x",
            "a b",
            "a:b",
            "a\0b",
            "tun%d",
            "é",
        ] {
            let err = validate_interface_name(name).expect_err(name);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name}");
        }
    }
}
