//! `impl Host for Node`: the simulator drives the node engine through its sans-IO verbs, and
//! collects its events (`crate::node::Event`) per host.

use std::net::SocketAddr;

use super::Host;
use crate::node::{Event, Node};

impl Host for Node {
    type Event = Event;

    fn handle_datagram(&mut self, now: u64, local: SocketAddr, remote: SocketAddr, data: &[u8]) {
        Node::handle_datagram(self, now, local, remote, data);
    }

    fn handle_timeout(&mut self, now: u64) {
        Node::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Option<u64> {
        Node::poll_timeout(self)
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<(SocketAddr, SocketAddr)> {
        Node::poll_transmit(self, buf).map(|t| (t.local, t.remote))
    }

    fn poll_event(&mut self) -> Option<Event> {
        Node::poll_event(self)
    }
}
