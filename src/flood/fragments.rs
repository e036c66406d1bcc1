//! The fragment bomb: groups of fragments for fresh packet ids, each group exercising one way
//! the bounded reassembler must cope (hold and evict, refuse duplicates and contradictions,
//! cap the assembled size, refuse bad numbering). Each datagram lands in exactly one
//! per-datagram reassembly counter (`fragment_pieces` when stored, else its drop reason).

use super::rng::FloodRng;
use super::target::TargetMaterial;
use crate::wire::Address;
use crate::wire::fragment::FragmentHeader;

/// Payload of the pieces of a group that hogs a reassembly slot.
const HOG_PIECE_LEN: usize = 1_400;
/// Pieces so large that two exceed the largest packet.
const HUGE_PIECE_LEN: usize = 9_000;

/// The next fragment-bomb datagram for the target (a new group starts when the last one
/// was sent).
pub(crate) fn next_fragment(rng: &mut FloodRng, t: &mut TargetMaterial) -> Option<Vec<u8>> {
    if t.pending_fragments.is_empty() {
        let group = t.next_group;
        t.next_group = t.next_group.wrapping_add(1);
        let destination = t.target.identity.address();
        t.pending_fragments
            .extend(group_datagrams(rng, destination, group));
    }
    t.pending_fragments.pop_front()
}

/// One group: 0 holds a slot with 6 of 7 pieces (evicted or timed out later); 1 stores a
/// piece, repeats it (duplicate) and contradicts its total (inconsistent, slot freed); 2
/// overflows the packet size cap (too large, slot freed); 3 is numbered wrongly (malformed).
fn group_datagrams(rng: &mut FloodRng, destination: Address, group: usize) -> Vec<Vec<u8>> {
    let packet_id = rng.bytes::<8>();
    let mut piece = |total: u8, number: u8, len: usize| {
        let header = FragmentHeader {
            packet_id,
            destination,
            total,
            number,
            hops: 0,
        };
        let mut datagram = Vec::with_capacity(16 + len);
        header.emit(&mut datagram);
        rng.extend(&mut datagram, len);
        datagram
    };
    match group % 4 {
        0 => (1..=6).map(|n| piece(7, n, HOG_PIECE_LEN)).collect(),
        1 => vec![piece(7, 1, 1_000), piece(7, 1, 1_000), piece(5, 2, 1_000)],
        2 => vec![piece(3, 1, HUGE_PIECE_LEN), piece(3, 2, HUGE_PIECE_LEN)],
        _ => vec![piece(7, 0, 500), piece(8, 1, 500), piece(2, 2, 500)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::reassembly::Reassembler;

    /// Every datagram of every group lands in exactly one per-datagram counter.
    #[test]
    fn each_datagram_lands_once_in_the_reassembler() {
        let mut rng = FloodRng::seeded(3);
        let mut reassembler = Reassembler::default();
        let mut sent = 0u64;
        for group in 0..40 {
            for datagram in group_datagrams(&mut rng, Address::from_u64(0x1122334455), group) {
                assert!(reassembler.accept_fragment(10, &datagram).is_none());
                sent += 1;
            }
        }
        let c = reassembler.counters();
        let landed = c.fragments + c.malformed + c.duplicate + c.inconsistent + c.too_large;
        assert_eq!(landed, sent);
        assert_eq!(c.assembled, 0);
        assert!(c.duplicate > 0 && c.inconsistent > 0 && c.too_large > 0 && c.malformed > 0);
        assert!(reassembler.in_flight() <= 32);
    }
}
