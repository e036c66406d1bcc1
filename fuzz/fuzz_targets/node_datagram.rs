//! Fuzz target: the whole receive path of `node::Node` on arbitrary datagrams.
//!
//! Input: a sequence of `u16 length | bytes` records, each one datagram; a record whose first
//! byte is odd gets our address patched in as its destination so it reaches authentication
//! and reassembly rather than the relay check. Between datagrams the clock advances and the
//! timers run; everything the node wants to send is drained.
//!
//! Invariants: no panic; the transmit and event queues stay within their configured bounds;
//! every datagram is counted.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ztrs::crypto::Identity;
use ztrs::node::{Node, NodeConfig};
use ztrs::wire::world::World;

/// One identity for the whole run: generating one costs a proof of work.
static ME: OnceLock<Identity> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let me = ME.get_or_init(Identity::generate);
    let mut config = NodeConfig::new(me.clone(), World::default_planet());
    config.rng_seed = Some(0);
    let limits = config.limits;
    let mut node = Node::new(config, 0);
    let here: SocketAddr = "10.0.0.2:9993".parse().unwrap();
    let from: SocketAddr = "10.0.0.9:9993".parse().unwrap();
    let mut rest = data;
    let mut now = 0u64;
    let mut count = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        let mut datagram = rest[2..2 + take].to_vec();
        rest = &rest[2 + take..];
        if datagram.first().is_some_and(|b| b & 1 == 1) && datagram.len() >= 13 {
            datagram[8..13].copy_from_slice(&me.address().to_bytes());
        }
        node.handle_datagram(now, here, from, &datagram);
        count += 1;
        now += 137;
        node.handle_timeout(now);
        let mut buf = Vec::new();
        let mut sent = 0usize;
        while node.poll_transmit(&mut buf).is_some() {
            sent += 1;
            assert!(buf.len() <= 10_100, "datagram larger than any MTU");
        }
        assert!(sent <= limits.transmit_queue);
        let mut events = 0usize;
        while node.poll_event().is_some() {
            events += 1;
        }
        assert!(events <= limits.event_queue);
    }
    assert_eq!(node.counters().datagrams_received, count);
});
