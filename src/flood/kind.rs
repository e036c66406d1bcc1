//! The hostile packet kinds a flood sends, their command-line names, and for each the layer
//! that rejects it and the counters it lands in ([`Kind::landing`]): the contract the flood
//! test checks (every packet sent shows up in exactly one of its kind's counters).

use core::fmt;
use core::str::FromStr;

/// One kind of hostile datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Random bytes of random length (1..=1432). Rejected by the datagram classifier (runt,
    /// beacon), the fragment parser, or, addressed to a random node, by the relay decision.
    Random,
    /// A valid header from a peer the target knows, with a random MAC. Rejected at the MAC.
    BadMac,
    /// A valid header from an address nobody knows. Kept in the bounded queue of packets
    /// waiting for WHOIS (or dropped because it is full); never reaches a verb handler.
    UnknownSource,
    /// A cipher-0 HELLO from an identity whose address does not match its key (random bytes
    /// that fail the proof of work), correctly authenticated. Rejected by the per-prefix
    /// HELLO rate limit, else by the proof-of-work check.
    HelloInvalid,
    /// A HELLO from a real identity of the flood's pool. Rate limited while unknown; once
    /// learned the target legitimately answers it with OK (counted as authenticated).
    HelloPool,
    /// A datagram longer than the largest packet (10,024 bytes). Rejected by the header check.
    Oversized,
    /// Fragments that never complete, repeat, contradict each other, overflow the packet
    /// size, or are numbered wrongly. Stored in (and evicted from) the bounded reassembler,
    /// or rejected by it.
    FragmentBomb,
    /// An LZ4 payload that expands past the packet size cap, authenticated by a pool
    /// identity. Rejected by the capped decompression.
    CompressBomb,
    /// NETWORK_CONFIG chunks with overlapping or out-of-range offsets: from a pool identity
    /// (authenticated, rejected because the sender is not the controller, or by the chunk
    /// parser) or forged as the controller (rejected at the MAC).
    NetconfOverlap,
    /// Sent from many local addresses and ports, claiming another node's address (or the
    /// target's own) in the header: random MACs, and HELLOs with another key for a known
    /// address. Rejected at the MAC, as our own source, or as an identity collision.
    Spoofed,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Random,
        Kind::BadMac,
        Kind::UnknownSource,
        Kind::HelloInvalid,
        Kind::HelloPool,
        Kind::Oversized,
        Kind::FragmentBomb,
        Kind::CompressBomb,
        Kind::NetconfOverlap,
        Kind::Spoofed,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::BadMac => "bad-mac",
            Kind::UnknownSource => "unknown-source",
            Kind::HelloInvalid => "hello-invalid",
            Kind::HelloPool => "hello-pool",
            Kind::Oversized => "oversized",
            Kind::FragmentBomb => "fragment-bomb",
            Kind::CompressBomb => "compress-bomb",
            Kind::NetconfOverlap => "netconf-overlap",
            Kind::Spoofed => "spoofed",
        }
    }

    /// The counters (names as [`super::CounterSnapshot::get`] reads them) in which each
    /// datagram of this kind lands, exactly one per datagram, on a target that does
    /// (`relays`, a root) or does not relay for others. Kinds that use pool identities
    /// assume the target learned them first (otherwise they wait for WHOIS:
    /// `unknown_peer_queued`, `queue_full`).
    pub fn landing(self, relays: bool) -> &'static [&'static str] {
        const QUEUED: [&str; 2] = ["unknown_peer_queued", "queue_full"];
        match self {
            Kind::Random if relays => &[
                "runt",
                "beacon",
                "malformed_header",
                "own_source",
                "fragment_malformed",
                "relay_hop_limit",
                "relay_no_route",
                "relay_forwarded",
                "transmit_bulk_dropped",
                "transmit_queue_full",
            ],
            Kind::Random => &[
                "runt",
                "beacon",
                "malformed_header",
                "own_source",
                "fragment_malformed",
                "relay_refused",
            ],
            Kind::BadMac => &["bad_mac"],
            Kind::UnknownSource => &QUEUED,
            Kind::HelloInvalid => &["hello_rate_limited", "invalid_identity"],
            Kind::HelloPool => &["hello_rate_limited", "packets_authenticated"],
            Kind::Oversized => &["malformed_header"],
            Kind::FragmentBomb => &[
                "fragment_pieces",
                "fragment_malformed",
                "fragment_duplicate",
                "fragment_inconsistent",
                "fragment_too_large",
            ],
            Kind::CompressBomb => &["decompress_failed"],
            Kind::NetconfOverlap => &[
                "network.not_from_controller",
                "malformed_payload",
                "bad_mac",
                "own_source",
            ],
            Kind::Spoofed => &[
                "bad_mac",
                "own_source",
                "identity_collision",
                "hello_rate_limited",
            ],
        }
    }

    /// The target answers this kind instead of dropping it (once it knows the sender), so
    /// its landing counter is shared with legitimate traffic.
    pub fn answered(self) -> bool {
        self == Kind::HelloPool
    }

    /// Kinds whose landing counter legitimate fragmented packets also reach (stored
    /// pieces): at most 6 per legitimate head (`fragment_heads`).
    pub fn shares_fragment_counter(self) -> bool {
        self == Kind::FragmentBomb
    }

    /// Parses a comma-separated list (`all` = every kind).
    pub fn parse_list(list: &str) -> Result<Vec<Kind>, String> {
        let mut kinds = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                kinds.extend(Kind::ALL);
                continue;
            }
            kinds.push(name.parse()?);
        }
        kinds.dedup();
        if kinds.is_empty() {
            return Err("no flood kind given".to_owned());
        }
        Ok(kinds)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown flood kind {s:?} (known: {}, all)",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lists_parse() {
        for kind in Kind::ALL {
            assert_eq!(kind.name().parse::<Kind>(), Ok(kind));
            assert!(!kind.landing(false).is_empty());
            assert!(!kind.landing(true).is_empty());
        }
        assert_eq!(
            Kind::parse_list("random, bad-mac"),
            Ok(vec![Kind::Random, Kind::BadMac])
        );
        assert_eq!(Kind::parse_list("all").map(|k| k.len()), Ok(10));
        assert!(Kind::parse_list("nope").is_err());
        assert!(Kind::parse_list("").is_err());
    }
}
