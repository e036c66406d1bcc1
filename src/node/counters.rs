//! Named counters for everything the node does with a datagram, above all every reason it
//! drops one (architecture principle 3: bounded everything, silent nothing). The control API
//! and metrics read them through [`Counters::iter`].

use crate::wire::reassembly::ReassemblyCounters;

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Node counters; every field is a monotonically increasing count.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )*
            /// Fragment reassembly (heads, fragments and the reassembler's drop reasons).
            pub reassembly: ReassemblyCounters,
        }

        impl Counters {
            /// Every counter as `(name, value)`, reassembly counters prefixed `fragment_`.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                let own = [$( (stringify!($name), self.$name), )*];
                let r = &self.reassembly;
                let reassembly = [
                    ("fragment_heads", r.heads),
                    ("fragment_pieces", r.fragments),
                    ("fragment_assembled", r.assembled),
                    ("fragment_malformed", r.malformed),
                    ("fragment_duplicate", r.duplicate),
                    ("fragment_inconsistent", r.inconsistent),
                    ("fragment_too_large", r.too_large),
                    ("fragment_timed_out", r.timed_out),
                    ("fragment_evicted_incomplete", r.evicted_incomplete),
                ];
                own.into_iter().chain(reassembly)
            }

            /// The value of the counter called `name` (as listed by [`Counters::iter`]).
            pub fn get(&self, name: &str) -> Option<u64> {
                self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
            }
        }
    };
}

counters! {
    /// Datagrams handed to `handle_datagram`.
    datagrams_received,
    /// Datagrams queued for `poll_transmit`.
    datagrams_sent,
    /// Packets that authenticated and were dispatched.
    packets_authenticated,
    /// Datagrams shorter than a packet header (keepalives) ignored.
    runt,
    /// 13-byte LAN beacons ignored.
    beacon,
    /// Datagrams or packets whose header did not parse or that exceed the packet size cap.
    malformed_header,
    /// Packets claiming our own address as their source.
    own_source,
    /// Packets whose source is a reserved address.
    reserved_source,
    /// Packets whose MAC or SIV tag did not verify with the sender's key.
    bad_mac,
    /// Packets using cipher 2 (trusted path) or an undefined cipher.
    unsupported_cipher,
    /// Payloads that did not decompress within the size cap.
    decompress_failed,
    /// Authenticated payloads that did not parse as their verb.
    malformed_payload,
    /// Packets from unknown sources queued while their sender is looked up.
    unknown_peer_queued,
    /// Packets from unknown sources dropped because the receive queue was full.
    queue_full,
    /// Queued packets from unknown sources dropped after `ZT_RECEIVE_QUEUE_TIMEOUT`.
    rx_queue_expired,
    /// Outgoing packets waiting for a WHOIS dropped because that queue was full.
    tx_queue_full,
    /// Outgoing packets dropped after `ZT_TRANSMIT_QUEUE_TIMEOUT` without an answer.
    tx_queue_expired,
    /// Datagrams not queued because the transmit queue was full.
    transmit_queue_full,
    /// Bulk datagrams (relayed, user data) refused to keep room for control packets.
    transmit_bulk_dropped,
    /// Events dropped because nobody polled them.
    events_dropped,
    /// WHOIS requests sent (one per address per attempt).
    whois_sent,
    /// Lookups refused because the pending WHOIS set was full.
    whois_queue_full,
    /// Lookups abandoned after their last retry.
    whois_failed,
    /// Lookups that could not be sent for lack of an upstream.
    whois_no_upstream,
    /// Identities in OK(WHOIS) that nobody asked for (or from a non-root), ignored.
    whois_unsolicited,
    /// WHOIS requests answered.
    whois_answered,
    /// Inbound WHOIS refused by the per-peer rate limit.
    whois_rate_limited,
    /// HELLOs from unknown identities refused by the per-prefix or global rate limit (H2.9).
    hello_rate_limited,
    /// HELLOs with a protocol version below the minimum.
    hello_bad_version,
    /// HELLOs whose identity does not match the packet's source address.
    hello_address_mismatch,
    /// Proof-of-work identity checks run (each costs a 2 MiB memory-hard hash).
    pow_checks,
    /// Identities that failed the proof-of-work check.
    invalid_identity,
    /// HELLOs from a second identity claiming a known address (answered with
    /// IDENTITY_COLLISION when they authenticate).
    identity_collision,
    /// Peers learned (from HELLO or OK(WHOIS)).
    peers_learned,
    /// Non-root peers evicted to make room in a full peer table.
    peers_evicted,
    /// Peers not learned because the table was full of roots.
    peer_table_full,
    /// Inactive non-root peers forgotten after `ZT_PEER_ACTIVITY_TIMEOUT`.
    peers_removed,
    /// Key agreements that failed (only without a secret key).
    key_agreement_failed,
    /// Packets relayed to another node.
    relay_forwarded,
    /// Packets not relayed because they reached `MAX_RELAY_HOPS`.
    relay_hop_limit,
    /// Packets for another node dropped because we are not a relay.
    relay_refused,
    /// Packets for another node dropped for lack of any route.
    relay_no_route,
    /// RENDEZVOUS sent by us as a root.
    rendezvous_sent,
    /// RENDEZVOUS accepted from a root.
    rendezvous_received,
    /// RENDEZVOUS refused (not from a root, unknown peer, or unusable address).
    rendezvous_refused,
    /// OK replies that answer nothing we sent to that peer (2.2, H2.8).
    ok_unexpected,
    /// ERROR packets received.
    error_received,
    /// Frame and network verbs received before the network layer exists.
    unhandled_verb,
    /// Authenticated verbs we deliberately ignore (bonding, tracing, unassigned numbers).
    ignored_verb,
    /// ECHO requests not answered because of the per-peer rate limit.
    echo_rate_limited,
    /// PUSH_DIRECT_PATHS refused by the 8-per-30-s cap.
    push_rate_limited,
    /// PUSH_DIRECT_PATHS sent.
    push_sent,
    /// Pushed addresses we will try.
    push_paths_accepted,
    /// Contacts dropped because the same (peer, address) was tried less than 1 s ago.
    contact_throttled,
    /// Contacts dropped because the deferred contact queue was full.
    contact_queue_full,
    /// Contacts (HELLO/ECHO to a specific address) sent from the deferred queue.
    contacts_sent,
    /// Direct paths learned from OK with hops 0.
    paths_learned,
    /// Paths removed after `ZT_PEER_PATH_EXPIRATION`.
    paths_expired,
    /// Packets not sent because no path or upstream could carry them.
    no_route,
    /// Packets not sent because they exceed 7 fragments at the physical MTU.
    send_too_large,
    /// Worlds in OK(HELLO) refused (wrong sender, bad signature, not newer, malformed).
    worlds_rejected,
    /// Worlds accepted (planet or moon updates).
    worlds_accepted,
}
