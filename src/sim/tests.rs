//! Unit tests of the simulator's internals (the public behaviour is covered by
//! `tests/sim_network.rs`).

use super::*;

fn datagram() -> Datagram {
    let addr = SocketAddr::from(([10, 0, 0, 1], 1));
    Datagram {
        from: addr,
        to: addr,
        data: Vec::new(),
    }
}

#[test]
fn in_flight_pops_by_time_then_sequence() {
    let mut heap = BinaryHeap::new();
    for (at, seq) in [(5, 3), (5, 1), (2, 9), (7, 0), (5, 2)] {
        heap.push(InFlight {
            at,
            seq,
            datagram: datagram(),
        });
    }
    let order: Vec<(u64, u64)> = std::iter::from_fn(|| heap.pop().map(|f| (f.at, f.seq))).collect();
    assert_eq!(order, vec![(2, 9), (5, 1), (5, 2), (5, 3), (7, 0)]);
}

struct Quiet(Option<u64>);

impl Host for Quiet {
    type Event = ();
    fn handle_datagram(&mut self, _: u64, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn handle_timeout(&mut self, _: u64) {}
    fn poll_timeout(&self) -> Option<u64> {
        self.0
    }
    fn poll_transmit(&mut self, _: &mut Vec<u8>) -> Option<(SocketAddr, SocketAddr)> {
        None
    }
}

#[test]
fn a_handled_deadline_in_the_past_is_retried_one_ms_later() {
    let slot = |deadline, handled| Slot {
        host: Quiet(deadline),
        addrs: Vec::new(),
        deadline,
        timeout_handled_at: handled,
        dirty: false,
        events: VecDeque::new(),
    };
    assert_eq!(slot(None, Some(5)).effective_deadline(), None);
    assert_eq!(slot(Some(3), None).effective_deadline(), Some(3));
    assert_eq!(slot(Some(5), Some(5)).effective_deadline(), Some(6));
    assert_eq!(slot(Some(9), Some(5)).effective_deadline(), Some(9));
}

#[test]
fn an_empty_network_is_idle_and_time_still_advances() {
    let mut sim: Sim<Quiet> = Sim::with_epoch(0, 100);
    assert_eq!(sim.next_event_time(), None);
    assert!(!sim.step());
    sim.run_for(50);
    assert_eq!(sim.now(), 150);
    let id = sim.add_host(Quiet(Some(120)), &[]);
    assert_eq!(sim.host_count(), 1);
    assert_eq!(sim.host_ids().collect::<Vec<_>>(), vec![id]);
    // A deadline already passed is due now.
    assert_eq!(sim.next_event_time(), Some(150));
}

#[test]
#[should_panic(expected = "already owned")]
fn an_address_has_one_owner() {
    let mut sim: Sim<Quiet> = Sim::new(0);
    let addr = SocketAddr::from(([10, 0, 0, 1], 1));
    sim.add_host(Quiet(None), &[addr]);
    sim.add_host(Quiet(None), &[addr]);
}
