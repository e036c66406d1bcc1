//! Systems without a TUN backend: [`TunDevice::create`] fails with
//! [`io::ErrorKind::Unsupported`], so no device value can ever exist and the other methods
//! are unreachable.

use std::convert::Infallible;
use std::io;
use std::task::{Context, Poll};

/// A TUN device that cannot be created on this system.
#[derive(Debug)]
pub struct TunDevice {
    never: Infallible,
}

impl TunDevice {
    /// Always [`io::ErrorKind::Unsupported`].
    pub fn create(name: &str) -> io::Result<TunDevice> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("TUN device {name:?}: no TUN support for this operating system"),
        ))
    }

    /// Unreachable (no device exists).
    pub fn name(&self) -> &str {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub fn index(&self) -> u32 {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub async fn readable(&self) -> io::Result<()> {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub fn poll_writable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub async fn writable(&self) -> io::Result<()> {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub fn try_recv(&self, _buf: &mut [u8]) -> io::Result<usize> {
        match self.never {}
    }

    /// Unreachable (no device exists).
    pub fn try_send(&self, _packet: &[u8]) -> io::Result<usize> {
        match self.never {}
    }
}
