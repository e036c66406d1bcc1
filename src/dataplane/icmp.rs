//! ICMP errors the boundary sends back into the TUN, as a router on the path would: IPv4
//! "fragmentation needed" (type 3 code 4, with the next-hop MTU) and IPv6 "packet too big"
//! (type 2) for packets above the network MTU, and "host/address unreachable" (IPv4 type 3
//! code 1, IPv6 type 1 code 3) when address resolution failed.
//!
//! The error's source is the offending packet's destination: the kernel treats packets
//! arriving on an interface from one of its own addresses as martians, while an error
//! from the destination is accepted and updates its path MTU for that destination.
//!
//! Not generated (RFC 1122 3.2.2, RFC 4443 2.4): about ICMP errors, non-first fragments,
//! packets to or from multicast/broadcast/unspecified addresses. Rate-limited by a token
//! bucket ([`ICMP_BURST`], one token per [`ICMP_REFILL_MS`]).

use std::net::IpAddr;

use super::checksum::{internet_checksum, transport_checksum};
use super::inspect::{IpSummary, PROTOCOL_ICMP, PROTOCOL_ICMPV6};

/// ICMP errors that may be sent back to back.
pub const ICMP_BURST: u32 = 10;
/// One more ICMP error allowed per this many milliseconds.
pub const ICMP_REFILL_MS: u64 = 100;
/// The longest IPv4 error (RFC 1812 4.3.2.3: as much of the original as fits in 576).
const IPV4_ERROR_MAX: usize = 576;
/// The longest IPv6 error (RFC 4443 2.4(c): within the minimum MTU).
const IPV6_ERROR_MAX: usize = 1280;
const ERROR_TTL: u8 = 64;

/// Which error to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpError {
    /// The packet exceeds `mtu`.
    TooBig { mtu: usize },
    /// The next hop did not answer address resolution.
    Unreachable,
}

/// A token bucket in milliseconds of virtual time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IcmpLimiter {
    tokens: u32,
    refilled_at: u64,
}

impl Default for IcmpLimiter {
    fn default() -> Self {
        IcmpLimiter {
            tokens: ICMP_BURST,
            refilled_at: 0,
        }
    }
}

impl IcmpLimiter {
    /// Takes a token if one is available at `now`.
    pub(crate) fn allow(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.refilled_at) / ICMP_REFILL_MS;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(ICMP_BURST);
            self.refilled_at = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Whether an error about `packet` may be generated at all.
pub(crate) fn error_allowed(packet: &[u8], summary: &IpSummary) -> bool {
    let unusable = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    };
    if summary.later_fragment || unusable(summary.src) || unusable(summary.dst) {
        return false;
    }
    let icmp_type = packet.get(summary.transport_offset).copied();
    match (summary.protocol, icmp_type) {
        // ICMPv4 errors: unreachable, source quench, redirect, time exceeded, parameter problem.
        (PROTOCOL_ICMP, Some(3 | 4 | 5 | 11 | 12)) if summary.src.is_ipv4() => false,
        // ICMPv6 types below 128 are errors.
        (PROTOCOL_ICMPV6, Some(t)) if t < 128 && summary.src.is_ipv6() => false,
        _ => true,
    }
}

/// Writes into `out` (cleared first) the IP packet carrying `error` about `packet` (whose
/// summary is `summary`), from its destination back to its source.
pub(crate) fn build_error(error: IcmpError, packet: &[u8], summary: &IpSummary, out: &mut Vec<u8>) {
    out.clear();
    let original = packet.get(..summary.len).unwrap_or(packet);
    match (summary.src, summary.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let (code, mtu) = match error {
                IcmpError::TooBig { mtu } => (4, u16::try_from(mtu).unwrap_or(u16::MAX)),
                IcmpError::Unreachable => (1, 0),
            };
            let quoted = &original[..original.len().min(IPV4_ERROR_MAX - 28)];
            let total = 28 + quoted.len();
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&(total as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, ERROR_TTL, PROTOCOL_ICMP, 0, 0]);
            out.extend_from_slice(&dst.octets());
            out.extend_from_slice(&src.octets());
            let header_sum = internet_checksum(out);
            out[10..12].copy_from_slice(&header_sum.to_be_bytes());
            out.extend_from_slice(&[3, code, 0, 0, 0, 0]);
            out.extend_from_slice(&mtu.to_be_bytes());
            out.extend_from_slice(quoted);
            let icmp_sum = internet_checksum(&out[20..]);
            out[22..24].copy_from_slice(&icmp_sum.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let (kind, code, word) = match error {
                IcmpError::TooBig { mtu } => (2, 0, u32::try_from(mtu).unwrap_or(u32::MAX)),
                IcmpError::Unreachable => (1, 3, 0),
            };
            let quoted = &original[..original.len().min(IPV6_ERROR_MAX - 48)];
            let message_len = 8 + quoted.len();
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(message_len as u16).to_be_bytes());
            out.extend_from_slice(&[PROTOCOL_ICMPV6, ERROR_TTL]);
            out.extend_from_slice(&dst.octets());
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&[kind, code, 0, 0]);
            out.extend_from_slice(&word.to_be_bytes());
            out.extend_from_slice(quoted);
            let sum = transport_checksum(
                IpAddr::V6(dst),
                IpAddr::V6(src),
                PROTOCOL_ICMPV6,
                &out[40..],
            );
            out[42..44].copy_from_slice(&sum.to_be_bytes());
        }
        // One IP header never mixes families.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_bursts_then_refills() {
        let mut l = IcmpLimiter::default();
        for _ in 0..ICMP_BURST {
            assert!(l.allow(0));
        }
        assert!(!l.allow(50));
        assert!(l.allow(100));
        assert!(!l.allow(150));
        assert!(l.allow(10_000));
    }
}
