//! Reference timings and limits (protocol reference 8.5 and 11), named as in ZeroTierOne so
//! that each use can be checked against the reference. All durations are milliseconds.

use crate::wire::verbs::SoftwareVersion;

/// Background tick: root contact, keepalives, expiry (`ZT_PING_CHECK_INTERVAL`).
pub const ZT_PING_CHECK_INTERVAL: u64 = 5_000;
/// An ECHO goes out on a path nothing was sent on for this long (`ZT_PATH_HEARTBEAT_PERIOD`).
pub const ZT_PATH_HEARTBEAT_PERIOD: u64 = 14_000;
/// A path is alive if something was received on it this recently (heartbeat + 5 s).
pub const ZT_PATH_ALIVE_TIMEOUT: u64 = ZT_PATH_HEARTBEAT_PERIOD + 5_000;
/// Full HELLO to active peers and roots over every live path (`ZT_PEER_PING_PERIOD`).
pub const ZT_PEER_PING_PERIOD: u64 = 60_000;
/// A path with nothing received for this long is no longer used and is removed at the next
/// ping check (`ZT_PEER_PATH_EXPIRATION` = 4 x 60 s + 3 s).
pub const ZT_PEER_PATH_EXPIRATION: u64 = 4 * ZT_PEER_PING_PERIOD + 3_000;
/// Peer alive/active horizon; also the online horizon for upstreams
/// (`ZT_PEER_ACTIVITY_TIMEOUT`).
pub const ZT_PEER_ACTIVITY_TIMEOUT: u64 = 500_000;
/// A root that already has paths gets a full HELLO only this often (8.2: 16 x 14 s).
pub const ZT_ROOT_FULL_HELLO_PERIOD: u64 = 16 * ZT_PATH_HEARTBEAT_PERIOD;
/// WHOIS retry and queue tick (`ZT_WHOIS_RETRY_DELAY`).
pub const ZT_WHOIS_RETRY_DELAY: u64 = 500;
/// WHOIS sends per lookup before it is abandoned (a first try and three retries, as the
/// reference's `ZT_MAX_WHOIS_RETRIES`); retries back off exponentially from
/// `ZT_WHOIS_RETRY_DELAY` (500, 1000, 2000 ms).
pub const ZT_MAX_WHOIS_ATTEMPTS: u32 = 4;
/// Packets waiting for a WHOIS answer are dropped after this (`ZT_RECEIVE_QUEUE_TIMEOUT`,
/// `ZT_TRANSMIT_QUEUE_TIMEOUT`).
pub const ZT_RECEIVE_QUEUE_TIMEOUT: u64 = 5_000;
pub const ZT_TRANSMIT_QUEUE_TIMEOUT: u64 = 5_000;
/// A root introduces the same pair of peers at most this often (`ZT_MIN_UNITE_INTERVAL`).
pub const ZT_MIN_UNITE_INTERVAL: u64 = 30_000;
/// PUSH_DIRECT_PATHS cadence when the triggering packet was relayed / direct
/// (`ZT_DIRECT_PATH_PUSH_INTERVAL`, `ZT_DIRECT_PATH_PUSH_INTERVAL_HAVEPATH`).
pub const ZT_DIRECT_PATH_PUSH_INTERVAL: u64 = 15_000;
pub const ZT_DIRECT_PATH_PUSH_INTERVAL_HAVEPATH: u64 = 120_000;
/// Trust relationship horizon for PUSH_DIRECT_PATHS (`ZT_TRUST_EXPIRATION`).
pub const ZT_TRUST_EXPIRATION: u64 = 600_000;
/// Inbound PUSH_DIRECT_PATHS: at most `LIMIT` per `TIME` per peer
/// (`ZT_PUSH_DIRECT_PATHS_CUTOFF_TIME`, `ZT_PUSH_DIRECT_PATHS_CUTOFF_LIMIT`).
pub const ZT_PUSH_DIRECT_PATHS_CUTOFF_TIME: u64 = 30_000;
pub const ZT_PUSH_DIRECT_PATHS_CUTOFF_LIMIT: u32 = 8;
/// Pushed addresses used per address family from one PUSH_DIRECT_PATHS
/// (`ZT_PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY`).
pub const ZT_PUSH_DIRECT_PATHS_MAX_PER_SCOPE_AND_FAMILY: usize = 8;
/// Our PUSH_DIRECT_PATHS packets stay below this size (the reference's 1200-byte budget).
pub const PUSH_DIRECT_PATHS_MAX_PACKET: usize = 1200;
/// Inbound WHOIS from one peer at most this often, for non-roots (`ZT_PEER_WHOIS_RATE_LIMIT`).
pub const ZT_PEER_WHOIS_RATE_LIMIT: u64 = 100;
/// ECHO replies per peer: a burst of 6, one more every 166 ms (the reference's ~6/s).
pub const ECHO_REPLY_BURST: u32 = 6;
pub const ECHO_REPLY_REFILL: u64 = 166;
/// HELLO from unknown identities per source prefix (`ZT_IDENTITY_VALIDATION_SOURCE_RATE_LIMIT`).
pub const ZT_IDENTITY_VALIDATION_SOURCE_RATE_LIMIT: u64 = 2_000;
/// Housekeeping (`ZT_HOUSEKEEPING_PERIOD`): pruning of throttle tables and surfaces.
pub const ZT_HOUSEKEEPING_PERIOD: u64 = 30_000;
/// External addresses reported by peers are forgotten after 10 minutes (8.6).
pub const ZT_SELFAWARENESS_ENTRY_TIMEOUT: u64 = 600_000;
/// A direct packet from an unknown path triggers a HELLO to that path at most this often
/// (8.4); also the minimum spacing of any two contacts to the same (peer, address).
pub const PATH_CONTACT_INTERVAL: u64 = 1_000;
/// Deferred contacts (hole punches, HELLOs to new paths) sent per drain, and the spacing of
/// drains (H2.5: never on the receive path, throttled).
pub const CONTACTS_PER_DRAIN: usize = 8;
pub const CONTACT_DRAIN_INTERVAL: u64 = 50;
/// Latency assumed for a path or root whose latency is unknown (the reference's 0xffff).
pub const UNKNOWN_LATENCY: u64 = 0xffff;
/// Divisor of the root recency factor: score = latency x (since receive / 61 s + 1) (8.2).
pub const ROOT_RECENCY_DIVISOR: u64 = 61_000;
/// Moon entries a HELLO we send may list (the wire codec's cap).
pub const MAX_HELLO_MOONS: usize = crate::wire::verbs::MAX_HELLO_MOONS;
/// Worlds accepted from one OK(HELLO) (a planet plus a few moons).
pub const MAX_WORLDS_PER_OK_HELLO: usize = 8;
/// Static hints kept per peer (local.conf `virtual` "try" list).
pub const MAX_STATIC_HINTS_PER_PEER: usize = 8;
/// Packet ids of HELLOs remembered per peer for OK(HELLO) matching (H2.8).
pub const SENT_HELLOS_PER_PEER: usize = 4;

/// The software version we advertise in HELLO and OK(HELLO). We implement the behaviour of
/// ZeroTierOne 1.14.1, and reference nodes gate some features on the advertised version.
pub const SOFTWARE_VERSION: SoftwareVersion = SoftwareVersion {
    major: 1,
    minor: 14,
    revision: 1,
};
