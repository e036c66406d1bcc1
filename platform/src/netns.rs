//! Moving the calling thread into a named network namespace (`ip netns add <name>` creates
//! `/var/run/netns/<name>`), for tests and the test rig.
//!
//! Only the calling thread moves; other threads, and sockets or devices opened before, stay
//! where they were. So the intended use is a dedicated thread: spawn a `std::thread`, call
//! [`enter`], then build a current-thread tokio runtime in that thread and open sockets, TUN
//! devices and [`crate::netlink::Netlink`] connections from it. Do not call it from a thread
//! of a multi-threaded runtime: its tasks would run in whichever namespace their worker is in.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Directory where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/var/run/netns";

/// Longest accepted namespace name in bytes.
pub const MAX_NETNS_NAME_LEN: usize = 64;

/// Moves the calling thread into the network namespace `name` (1 to [`MAX_NETNS_NAME_LEN`]
/// ASCII letters, digits, `-`, `_`, `.`; not `.` or `..`). Needs `CAP_SYS_ADMIN`.
pub fn enter(name: &str) -> io::Result<()> {
    validate_netns_name(name)?;
    let path = format!("{NETNS_DIR}/{name}");
    let c_path = CString::new(path.as_str())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in namespace path"))?;
    // SAFETY: `c_path` is a NUL-terminated string alive for the duration of the call.
    let raw = unsafe { libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("opening {path}: {err}")));
    }
    // SAFETY: `open` succeeded, so `raw` is a fresh descriptor that nothing else owns.
    let namespace = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: `setns` only reads the descriptor, which stays open for the call (closed by
    // `namespace`'s drop afterwards); it changes the namespace of the calling thread only.
    let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("entering network namespace {name:?}: {err}"),
        ));
    }
    Ok(())
}

/// Checks a namespace name (see [`enter`]): it becomes one path component.
pub fn validate_netns_name(name: &str) -> io::Result<()> {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
    let valid = !name.is_empty()
        && name.len() <= MAX_NETNS_NAME_LEN
        && name != "."
        && name != ".."
        && name.bytes().all(allowed);
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid network namespace name {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_path_components() {
        for good in ["ztrs-plat-1-2", "a", "ns.1_x"] {
            assert!(validate_netns_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(MAX_NETNS_NAME_LEN + 1);
        for bad in ["", ".", "..", "../etc", "a/b", "a b", "a\0b", long.as_str()] {
            assert!(validate_netns_name(bad).is_err(), "{bad}");
            assert_eq!(
                enter(bad).expect_err(bad).kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }
}
