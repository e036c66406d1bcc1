//! macOS (utun) and Windows (Wintun) TUN devices through the `tun-rs` crate.
//!
//! **Untested and never compiled on the project's machines** (only the Linux target is
//! installed there); kept deliberately thin so that the API matches the Linux device.
//! Differences: on macOS the name must be `utunN` (the system picks names of that form);
//! on Windows `wintun.dll` must be next to the executable, readiness waits run on helper
//! threads inside `tun-rs`, each wait boxes one future (once per wait, not per packet), and
//! write readiness is always reported (Wintun's send ring refuses with `WouldBlock` instead).

use std::io;
use std::task::{Context, Poll};

use super::validate_interface_name;

#[cfg(target_os = "windows")]
type ReadinessFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<()>> + Send + 'static>>;

/// One TUN interface, owned: dropping it removes the interface.
pub struct TunDevice {
    device: std::sync::Arc<tun_rs::AsyncDevice>,
    name: String,
    index: u32,
    /// Windows only: the pending readiness wait behind [`TunDevice::poll_readable`].
    #[cfg(target_os = "windows")]
    read_wait: std::sync::Mutex<Option<ReadinessFuture>>,
}

impl std::fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl TunDevice {
    /// Creates the TUN interface `name`, down, without addresses. Needs administrator rights
    /// and a tokio runtime.
    pub fn create(name: &str) -> io::Result<TunDevice> {
        validate_interface_name(name)?;
        let device = tun_rs::DeviceBuilder::new()
            .name(name)
            .enable(false)
            .build_async()?;
        let name = device.name()?;
        let index = device.if_index()?;
        Ok(TunDevice {
            device: std::sync::Arc::new(device),
            name,
            index,
            #[cfg(target_os = "windows")]
            read_wait: std::sync::Mutex::new(None),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Polls for read readiness without consuming it.
    #[cfg(target_os = "macos")]
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.device.poll_readable(cx)
    }

    /// Polls for read readiness: keeps one readiness wait pending between calls.
    #[cfg(target_os = "windows")]
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut slot = self
            .read_wait
            .lock()
            .map_err(|_| io::Error::other("TUN read-wait lock poisoned"))?;
        let wait = slot.get_or_insert_with(|| {
            let device = std::sync::Arc::clone(&self.device);
            Box::pin(async move { device.readable().await })
        });
        match wait.as_mut().poll(cx) {
            Poll::Ready(result) => {
                *slot = None;
                Poll::Ready(result)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Waits until a [`TunDevice::try_recv`] may succeed.
    pub async fn readable(&self) -> io::Result<()> {
        self.device.readable().await
    }

    /// Polls for write readiness without consuming it.
    #[cfg(target_os = "macos")]
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.device.poll_writable(cx)
    }

    /// Always ready on Windows (see the module doc).
    #[cfg(target_os = "windows")]
    pub fn poll_writable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Waits until a [`TunDevice::try_send`] may succeed.
    #[cfg(target_os = "macos")]
    pub async fn writable(&self) -> io::Result<()> {
        self.device.writable().await
    }

    /// Always ready on Windows (see the module doc).
    #[cfg(target_os = "windows")]
    pub async fn writable(&self) -> io::Result<()> {
        Ok(())
    }

    /// Reads one IP packet; `WouldBlock` when none is queued.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.try_recv(buf)
    }

    /// Writes one IP packet; `WouldBlock` when there is no room.
    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        self.device.try_send(packet)
    }
}
