//! UDP segmentation offloads, the portable part: the kill switch, what a socket reports, the
//! switch that turns GSO off for good after the kernel refuses it, how a batch is cut into
//! GSO runs, and how a GRO-coalesced receive is split back into datagrams.
//!
//! The system calls themselves (the `UDP_SEGMENT` / `UDP_GRO` options and control messages)
//! live in the Linux module; every other system reports both offloads off.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::RecvMeta;

/// Environment variable that, set to `1`, disables both UDP GSO and GRO at runtime.
pub const NO_GSO_ENV: &str = "ZTRS_NO_GSO";

/// Most datagrams coalesced into one GSO send (the oldest kernels with `UDP_SEGMENT` accept
/// 64).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most payload bytes in one GSO send: below 64 KiB with room for the IP and UDP headers.
pub const MAX_GSO_BYTES: usize = 65_000;

/// Whether offloads are wanted, from the kill switch variable (`Some("1")` disables them).
pub fn offloads_wanted(kill_switch: Option<&std::ffi::OsStr>) -> bool {
    kill_switch.is_none_or(|value| value != "1")
}

/// Offloads in force on a socket, for the service's start-up log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offloads {
    /// Runs of equal-size datagrams to one destination go to the kernel as one `UDP_SEGMENT`
    /// message.
    pub gso: bool,
    /// The kernel may deliver several datagrams in one receive ([`RecvMeta::segment_size`]).
    pub gro: bool,
    /// Times the kernel refused a GSO send and GSO was turned off for this socket (the batch
    /// was then sent again without it, so nothing was lost).
    pub gso_fallbacks: u64,
}

/// GSO state of one socket. Sends take `&self`, so turning GSO off after a refusal is atomic.
#[derive(Debug, Default)]
pub(super) struct GsoSwitch {
    on: AtomicBool,
    fallbacks: AtomicU64,
}

impl GsoSwitch {
    /// A switch starting in the given position.
    pub(super) fn new(on: bool) -> GsoSwitch {
        GsoSwitch {
            on: AtomicBool::new(on),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// True while GSO sends are allowed.
    pub(super) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns GSO off for good because the kernel (or the device) refused a GSO send.
    pub(super) fn turn_off_after_refusal(&self) {
        self.on.store(false, Ordering::Relaxed);
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Times [`GsoSwitch::turn_off_after_refusal`] was called.
    pub(super) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }
}

/// Turns `UDP_GRO` on or off; true when the kernel accepted the change (never off Linux).
pub(super) fn set_gro(socket: &std::net::UdpSocket, on: bool) -> bool {
    #[cfg(target_os = "linux")]
    {
        super::linux::set_gro(socket, on)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, on);
        false
    }
}

/// True when the kernel knows `UDP_SEGMENT` (never off Linux).
pub(super) fn probe_gso(socket: &std::net::UdpSocket) -> bool {
    #[cfg(target_os = "linux")]
    {
        super::linux::probe_gso(socket)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        false
    }
}

/// How many leading datagrams of `datagrams` one GSO message may carry: all go to the same
/// destination, all but the last have the length of the first, the last is no longer, and
/// the limits [`MAX_GSO_SEGMENTS`] and [`MAX_GSO_BYTES`] hold. Empty datagrams are never
/// coalesced (a segment size of 0 means nothing to the kernel). 0 only for an empty slice.
pub(super) fn gso_run_len(datagrams: &[(SocketAddr, &[u8])]) -> usize {
    let Some((destination, first)) = datagrams.first() else {
        return 0;
    };
    let segment = first.len();
    if segment == 0 {
        return 1;
    }
    let mut total = segment;
    let mut len = 1;
    for (next_destination, next) in datagrams.iter().skip(1) {
        let fits = len < MAX_GSO_SEGMENTS && total + next.len() <= MAX_GSO_BYTES;
        if next_destination != destination || next.is_empty() || next.len() > segment || !fits {
            break;
        }
        total += next.len();
        len += 1;
        if next.len() < segment {
            // Only the last segment may be short.
            break;
        }
    }
    len
}

/// The datagrams of one received message, in order (see [`RecvMeta::segments`]).
#[derive(Clone, Debug)]
struct Segments<'a> {
    rest: &'a [u8],
    size: usize,
    /// A message with one datagram yields it once, even when it is empty.
    single_pending: bool,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.single_pending {
            self.single_pending = false;
            return Some(std::mem::take(&mut self.rest));
        }
        if self.rest.is_empty() {
            return None;
        }
        let (piece, rest) = self.rest.split_at(self.size.min(self.rest.len()));
        self.rest = rest;
        Some(piece)
    }
}

impl RecvMeta {
    /// The datagrams this message holds inside its buffer `buf` (the buffer it was received
    /// into): `buf[..len]` cut into pieces of [`RecvMeta::segment_size`], the last possibly
    /// shorter, or the whole of it when `segment_size` is 0. A buffer shorter than `len` is
    /// cut at its end rather than panicking.
    pub fn segments<'a>(&self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let data = buf.get(..self.len).unwrap_or(buf);
        Segments {
            rest: data,
            size: self.segment_size,
            single_pending: self.segment_size == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn runs(datagrams: &[(SocketAddr, &[u8])]) -> Vec<usize> {
        let mut rest = datagrams;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = gso_run_len(rest);
            out.push(len);
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn runs_break_on_destination_size_and_limits() {
        let big = [0u8; 1400];
        let small = [0u8; 700];
        let (a, b) = (addr(1), addr(2));
        // Equal run with a short tail, then a new destination.
        assert_eq!(
            runs(&[(a, &big), (a, &big), (a, &small), (a, &big), (b, &big)]),
            [3, 1, 1]
        );
        // A longer datagram after a shorter one starts a new run.
        assert_eq!(runs(&[(a, &small), (a, &big)]), [1, 1]);
        // Empty datagrams stand alone.
        assert_eq!(runs(&[(a, &[]), (a, &[]), (a, &big)]), [1, 1, 1]);
        assert_eq!(runs(&[(a, &big), (a, &[])]), [1, 1]);
        // The byte limit: 46 * 1400 = 64400 fits, 47 do not.
        let many = vec![(a, &big[..]); 50];
        assert_eq!(runs(&many), [46, 4]);
        // The segment limit.
        let tiny = [1u8; 10];
        let lots = vec![(a, &tiny[..]); 70];
        assert_eq!(runs(&lots), [MAX_GSO_SEGMENTS, 6]);
        assert_eq!(gso_run_len(&[]), 0);
    }

    #[test]
    fn segments_split_and_single_messages() {
        let buf: Vec<u8> = (0..25).collect();
        let meta = RecvMeta {
            len: 25,
            segment_size: 10,
            ..RecvMeta::default()
        };
        let pieces: Vec<&[u8]> = meta.segments(&buf).collect();
        assert_eq!(pieces, [&buf[..10], &buf[10..20], &buf[20..25]]);

        let single = RecvMeta {
            len: 7,
            ..RecvMeta::default()
        };
        assert_eq!(single.segments(&buf).collect::<Vec<_>>(), [&buf[..7]]);
        let empty = RecvMeta::default();
        assert_eq!(empty.segments(&buf).collect::<Vec<_>>(), [&[][..]]);
        // A lying length never reads past the buffer.
        let long = RecvMeta {
            len: 100,
            segment_size: 10,
            ..RecvMeta::default()
        };
        assert_eq!(long.segments(&buf).map(<[u8]>::len).sum::<usize>(), 25);
    }

    #[test]
    fn kill_switch_and_fallback_counter() {
        use std::ffi::OsStr;
        assert!(offloads_wanted(None));
        assert!(offloads_wanted(Some(OsStr::new("0"))));
        assert!(!offloads_wanted(Some(OsStr::new("1"))));
        let switch = GsoSwitch::new(true);
        assert!(switch.is_on());
        switch.turn_off_after_refusal();
        assert!(!switch.is_on());
        assert_eq!(switch.fallbacks(), 1);
    }
}
