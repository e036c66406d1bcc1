//! Packet fragments (protocol 2.3): the 16-byte fragment header as a zero-copy view
//! [`Fragment`] and a repr [`FragmentHeader`], and the sender-side [`split`] of an armored
//! packet larger than the path MTU into a head plus fragments.
//!
//! ```text
//! 0 u64 packet id   8 destination(5)   13 0xff   14 total<<4 | number   15 hops   16.. piece
//! ```

use super::cursor::{Reader, Writer};
use super::packet::{FLAG_FRAGMENTED, FLAGS_HOPS_MASK, HEADER_LEN, IDX_FLAGS, MAX_PACKET_LEN};
use super::{Address, Error, Result};

/// Fragment header length; the piece follows.
pub const FRAGMENT_HEADER_LEN: usize = 16;
/// Byte 13 of every fragment; no address starts with it, which is how fragments are told
/// apart from packets.
pub const FRAGMENT_INDICATOR: u8 = 0xff;
pub const IDX_FRAGMENT_PACKET_ID: usize = 0;
pub const IDX_FRAGMENT_DEST: usize = 8;
pub const IDX_FRAGMENT_INDICATOR: usize = 13;
pub const IDX_FRAGMENT_NUMBER: usize = 14;
pub const IDX_FRAGMENT_HOPS: usize = 15;
pub const IDX_FRAGMENT_PAYLOAD: usize = 16;
/// Most pieces of one packet, head included (`ZT_MAX_PACKET_FRAGMENTS`; the 4-bit wire field
/// could say 15, the reference accepts 7).
pub const MAX_FRAGMENTS: u8 = 7;

/// Checks a `(total, number)` pair the way the receiver accepts it: 2..=7 pieces in all,
/// and a fragment number between 1 and `total - 1` (0 is the head).
fn check_numbering(total: u8, number: u8) -> Result<()> {
    if !(2..=MAX_FRAGMENTS).contains(&total) {
        return Err(Error::Malformed("fragment total (2..=7)"));
    }
    if number == 0 || number >= total {
        return Err(Error::Malformed("fragment number (1..total)"));
    }
    Ok(())
}

/// A zero-copy view of one fragment datagram. [`Fragment::new_checked`] guarantees a full
/// header, a non-empty piece, the indicator byte and valid numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Fragment<T> {
    pub fn new_checked(buffer: T) -> Result<Fragment<T>> {
        let bytes = buffer.as_ref();
        if bytes.len() > MAX_PACKET_LEN {
            return Err(Error::TooLarge("fragment"));
        }
        FragmentHeader::parse(bytes)?;
        if bytes.len() <= FRAGMENT_HEADER_LEN {
            return Err(Error::Truncated("fragment piece"));
        }
        Ok(Fragment { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..FRAGMENT_HEADER_LEN]
    }

    /// The packet id of the armored head this piece belongs to.
    pub fn packet_id(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.header()[IDX_FRAGMENT_PACKET_ID..IDX_FRAGMENT_DEST]);
        id
    }

    pub fn packet_id_u64(&self) -> u64 {
        u64::from_be_bytes(self.packet_id())
    }

    pub fn destination(&self) -> Address {
        let mut a = [0u8; 5];
        a.copy_from_slice(&self.header()[IDX_FRAGMENT_DEST..IDX_FRAGMENT_INDICATOR]);
        Address::from_bytes(&a)
    }

    /// Pieces of the packet, head included (2..=7).
    pub fn total(&self) -> u8 {
        self.header()[IDX_FRAGMENT_NUMBER] >> 4
    }

    /// This piece's number (1..total; the head is 0).
    pub fn number(&self) -> u8 {
        self.header()[IDX_FRAGMENT_NUMBER] & 0x0f
    }

    /// Hop count (low 3 bits of byte 15).
    pub fn hops(&self) -> u8 {
        self.header()[IDX_FRAGMENT_HOPS] & FLAGS_HOPS_MASK
    }

    /// The piece of the armored packet this fragment carries.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[IDX_FRAGMENT_PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Fragment<T> {
    /// Sets the hop count (relays increment it); the upper bits of byte 15 are cleared.
    pub fn set_hops(&mut self, hops: u8) {
        self.buffer.as_mut()[IDX_FRAGMENT_HOPS] = hops & FLAGS_HOPS_MASK;
    }
}

/// A fragment header as typed values; `parse` validates it like [`Fragment::new_checked`]
/// (without requiring a piece).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    pub packet_id: [u8; 8],
    pub destination: Address,
    /// 2..=7.
    pub total: u8,
    /// 1..total.
    pub number: u8,
    /// 0..=7.
    pub hops: u8,
}

impl FragmentHeader {
    pub fn parse(buf: &[u8]) -> Result<FragmentHeader> {
        let mut r = Reader::new(buf);
        let packet_id = r.array("fragment packet id")?;
        let destination = Address::from_bytes(&r.array("fragment destination")?);
        if r.u8("fragment indicator")? != FRAGMENT_INDICATOR {
            return Err(Error::Malformed("fragment indicator"));
        }
        let numbering = r.u8("fragment number")?;
        let hops = r.u8("fragment hops")? & FLAGS_HOPS_MASK;
        let (total, number) = (numbering >> 4, numbering & 0x0f);
        check_numbering(total, number)?;
        Ok(FragmentHeader {
            packet_id,
            destination,
            total,
            number,
            hops,
        })
    }

    /// The 16 header bytes. Values outside the valid ranges are not checked here; use
    /// [`FragmentHeader::parse`] to validate.
    pub fn to_bytes(&self) -> [u8; FRAGMENT_HEADER_LEN] {
        let mut out = [0u8; FRAGMENT_HEADER_LEN];
        out[IDX_FRAGMENT_PACKET_ID..IDX_FRAGMENT_DEST].copy_from_slice(&self.packet_id);
        out[IDX_FRAGMENT_DEST..IDX_FRAGMENT_INDICATOR]
            .copy_from_slice(&self.destination.to_bytes());
        out[IDX_FRAGMENT_INDICATOR] = FRAGMENT_INDICATOR;
        out[IDX_FRAGMENT_NUMBER] = (self.total << 4) | (self.number & 0x0f);
        out[IDX_FRAGMENT_HOPS] = self.hops & FLAGS_HOPS_MASK;
        out
    }

    /// Appends the 16 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.to_bytes());
    }
}

/// How many datagrams (head included) a packet of `packet_len` bytes takes at `mtu`:
/// `1 + ceil((len - mtu) / (mtu - 16))`. Senders use it *before* armor to decide whether to
/// set the fragmented flag. Fails if `mtu` cannot hold a header or the count exceeds 7.
pub fn fragment_count(packet_len: usize, mtu: usize) -> Result<usize> {
    if mtu < HEADER_LEN {
        return Err(Error::Malformed("mtu (below the packet header length)"));
    }
    if packet_len <= mtu {
        return Ok(1);
    }
    let piece = mtu - FRAGMENT_HEADER_LEN;
    let count = 1 + (packet_len - mtu).div_ceil(piece);
    if count > usize::from(MAX_FRAGMENTS) {
        return Err(Error::TooLarge(
            "packet (more than 7 fragments at this mtu)",
        ));
    }
    Ok(count)
}

/// An armored packet split for sending: `head` is `packet[..mtu]` (or the whole packet when
/// it fits), `fragments` yields the rest.
#[derive(Clone, Debug)]
pub struct Split<'a> {
    pub head: &'a [u8],
    pub fragments: Fragments<'a>,
}

/// Splits an armored packet at `mtu` (protocol 2.3). No copying: the head borrows the
/// packet and each [`FragmentPiece`] is a 16-byte header plus a borrowed piece, so callers
/// gather them into their own send buffers (or an iovec).
///
/// The packet must already carry the fragmented flag if it is larger than `mtu`: the flag is
/// covered by the MAC, so it cannot be added after armor.
pub fn split(packet: &[u8], mtu: usize) -> Result<Split<'_>> {
    let total = fragment_count(packet.len(), mtu)?;
    split_with(packet, total, mtu)
}

/// Like [`split`], with the same number of pieces but balanced: every datagram but the last
/// has the same size and the last is at most `pieces - 1` bytes shorter, instead of full
/// datagrams and a short tail. That shape (equal segments, a shorter last one) is what UDP
/// segmentation offload sends as one buffer; any split is valid on the wire (receivers
/// reassemble by fragment number).
pub fn split_even(packet: &[u8], mtu: usize) -> Result<Split<'_>> {
    let total = fragment_count(packet.len(), mtu)?;
    if total == 1 {
        return split_with(packet, 1, mtu);
    }
    // n datagrams carry len + 16(n-1) bytes; the smallest count makes this fit in n * mtu,
    // and each piece still carries at least one byte (see the tests).
    let datagram = (packet.len() + FRAGMENT_HEADER_LEN * (total - 1)).div_ceil(total);
    split_with(packet, total, datagram.min(mtu))
}

/// The split with `total` pieces: a head of `datagram` bytes and fragments of
/// `datagram - 16` payload bytes.
fn split_with(packet: &[u8], total: usize, datagram: usize) -> Result<Split<'_>> {
    let mtu = datagram;
    if packet.len() < HEADER_LEN {
        return Err(Error::Truncated("packet header"));
    }
    if packet.len() > MAX_PACKET_LEN {
        return Err(Error::TooLarge("packet"));
    }
    let mut r = Reader::new(packet);
    let packet_id = r.array("packet id")?;
    let destination = Address::from_bytes(&r.array("packet destination")?);
    let (head, rest) = packet.split_at(packet.len().min(mtu));
    if total > 1
        && packet
            .get(IDX_FLAGS)
            .is_none_or(|f| f & FLAG_FRAGMENTED == 0)
    {
        return Err(Error::Malformed(
            "packet flags (fragmented flag must be set before armor)",
        ));
    }
    Ok(Split {
        head,
        fragments: Fragments {
            packet_id,
            destination,
            rest,
            piece_len: mtu - FRAGMENT_HEADER_LEN,
            total: total as u8,
            next: 1,
        },
    })
}

/// Iterator over the fragments of a [`split`] packet, in number order.
#[derive(Clone, Debug)]
pub struct Fragments<'a> {
    packet_id: [u8; 8],
    destination: Address,
    rest: &'a [u8],
    piece_len: usize,
    total: u8,
    next: u8,
}

impl Fragments<'_> {
    /// Pieces of the packet, head included (1 when it was not fragmented).
    pub fn total(&self) -> u8 {
        self.total
    }
}

impl<'a> Iterator for Fragments<'a> {
    type Item = FragmentPiece<'a>;

    fn next(&mut self) -> Option<FragmentPiece<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let (body, rest) = self.rest.split_at(self.rest.len().min(self.piece_len));
        self.rest = rest;
        let header = FragmentHeader {
            packet_id: self.packet_id,
            destination: self.destination,
            total: self.total,
            number: self.next,
            hops: 0,
        };
        self.next += 1;
        Some(FragmentPiece {
            header: header.to_bytes(),
            body,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len().div_ceil(self.piece_len.max(1));
        (n, Some(n))
    }
}

impl ExactSizeIterator for Fragments<'_> {}

/// One outgoing fragment: its header and the borrowed piece of the armored packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentPiece<'a> {
    pub header: [u8; FRAGMENT_HEADER_LEN],
    pub body: &'a [u8],
}

impl FragmentPiece<'_> {
    /// Datagram length.
    pub fn len(&self) -> usize {
        FRAGMENT_HEADER_LEN + self.body.len()
    }

    /// Never true: a piece has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the whole datagram.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.header);
        out.put_bytes(self.body);
    }

    /// Writes the datagram to the start of `out`; returns its length.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.len();
        let dst = out
            .get_mut(..len)
            .ok_or(Error::TooLarge("fragment (output buffer too small)"))?;
        let (h, b) = dst.split_at_mut(FRAGMENT_HEADER_LEN);
        h.copy_from_slice(&self.header);
        b.copy_from_slice(self.body);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::DEFAULT_PHYSICAL_MTU;
    use proptest::prelude::*;

    fn packet(len: usize, fragmented: bool) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        p[IDX_FLAGS] = if fragmented {
            FLAG_FRAGMENTED | 0x18
        } else {
            0x18
        };
        p
    }

    #[test]
    fn counts_match_the_formula() {
        let mtu = DEFAULT_PHYSICAL_MTU;
        assert_eq!(fragment_count(mtu, mtu), Ok(1));
        assert_eq!(fragment_count(mtu + 1, mtu), Ok(2));
        assert_eq!(fragment_count(mtu + 1416, mtu), Ok(2));
        assert_eq!(fragment_count(mtu + 1417, mtu), Ok(3));
        assert_eq!(fragment_count(mtu + 6 * 1416, mtu), Ok(7));
        assert!(fragment_count(mtu + 6 * 1416 + 1, mtu).is_err());
        assert!(fragment_count(100, 27).is_err());
    }

    proptest! {
        /// An even split has the same piece count as the plain one, equal datagrams but a
        /// last one shorter by less than the piece count, none above the mtu, and
        /// reassembles to the packet.
        #[test]
        fn even_split_is_balanced_and_complete(len in 1433usize..=9_000, mtu in 600usize..=1432) {
            let p = packet(len, true);
            let Ok(total) = fragment_count(len, mtu) else { return Ok(()) };
            let split = split_even(&p, mtu).unwrap();
            prop_assert_eq!(usize::from(split.fragments.total()), total);
            let mut sizes = vec![split.head.len()];
            let mut rebuilt = split.head.to_vec();
            for piece in split.fragments.clone() {
                sizes.push(FRAGMENT_HEADER_LEN + piece.body.len());
                rebuilt.extend_from_slice(piece.body);
            }
            prop_assert_eq!(sizes.len(), total);
            let first = sizes[0];
            let last = *sizes.last().unwrap();
            prop_assert!(first <= mtu, "{:?}", sizes);
            prop_assert!(sizes[..total - 1].iter().all(|s| *s == first), "{:?}", sizes);
            prop_assert!(last <= first && first - last < total, "{:?}", sizes);
            prop_assert_eq!(rebuilt, p);
        }
    }

    #[test]
    fn split_requires_the_flag_and_respects_caps() {
        assert!(split(&packet(2000, false), 1432).is_err());
        assert!(split(&packet(20, true), 1432).is_err());
        assert!(split(&packet(MAX_PACKET_LEN + 1, true), 1432).is_err());
        let small = packet(100, false);
        let s = split(&small, 1432).unwrap();
        assert_eq!(s.head, &small[..]);
        assert_eq!(s.fragments.total(), 1);
        assert_eq!(s.fragments.count(), 0);
    }

    #[test]
    fn pieces_reassemble_to_the_packet() {
        // The largest packet that fits 7 pieces at the default MTU: 1432 + 6 * 1416.
        let p = packet(9928, true);
        assert!(split(&packet(9929, true), DEFAULT_PHYSICAL_MTU).is_err());
        let s = split(&p, DEFAULT_PHYSICAL_MTU).unwrap();
        assert_eq!(s.head.len(), DEFAULT_PHYSICAL_MTU);
        assert_eq!(s.fragments.len(), 6);
        let mut joined = s.head.to_vec();
        for (i, piece) in s.fragments.enumerate() {
            let mut wire = Vec::new();
            piece.emit(&mut wire);
            let mut buf = [0u8; DEFAULT_PHYSICAL_MTU];
            assert_eq!(piece.write_to(&mut buf), Ok(wire.len()));
            assert_eq!(&buf[..wire.len()], &wire[..]);
            assert!(piece.write_to(&mut buf[..wire.len() - 1]).is_err());
            let f = Fragment::new_checked(&wire[..]).unwrap();
            assert_eq!((f.total(), f.number(), f.hops()), (7, i as u8 + 1, 0));
            assert_eq!(f.packet_id(), p[..8]);
            assert_eq!(f.destination().to_bytes(), p[8..13]);
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, p);
    }

    #[test]
    fn validation() {
        let good = FragmentHeader {
            packet_id: [1; 8],
            destination: Address::from_u64(0x0102030405),
            total: 3,
            number: 2,
            hops: 1,
        };
        let mut wire = Vec::new();
        good.emit(&mut wire);
        assert_eq!(
            Fragment::new_checked(&wire[..]),
            Err(Error::Truncated("fragment piece"))
        );
        wire.push(0);
        let mut f = Fragment::new_checked(wire.clone()).unwrap();
        f.set_hops(12);
        assert_eq!(f.hops(), 4);
        for (byte14, ok) in [
            (0x21, true),
            (0x20, false),
            (0x22, false),
            (0x11, false),
            (0x76, true),
            (0x77, false),
            (0x81, false),
            (0x01, false),
        ] {
            let mut w = wire.clone();
            w[IDX_FRAGMENT_NUMBER] = byte14;
            assert_eq!(Fragment::new_checked(&w[..]).is_ok(), ok, "{byte14:#x}");
        }
        let mut w = wire.clone();
        w[IDX_FRAGMENT_INDICATOR] = 0xfe;
        assert_eq!(
            Fragment::new_checked(&w[..]),
            Err(Error::Malformed("fragment indicator"))
        );
    }

    proptest! {
        #[test]
        fn header_round_trips(
            packet_id: [u8; 8],
            dest in 0u64..(1 << 40),
            total in 2u8..=7,
            number_seed: u8,
            hops in 0u8..8,
        ) {
            let h = FragmentHeader {
                packet_id,
                destination: Address::from_u64(dest),
                total,
                number: 1 + number_seed % (total - 1),
                hops,
            };
            prop_assert_eq!(FragmentHeader::parse(&h.to_bytes()), Ok(h));
        }

        #[test]
        fn split_round_trips(len in 28usize..=MAX_PACKET_LEN, mtu in 28usize..3000) {
            let p = packet(len, true);
            match split(&p, mtu) {
                Ok(s) => {
                    let total = s.fragments.total();
                    let mut joined = s.head.to_vec();
                    prop_assert!(s.head.len() <= mtu);
                    for piece in s.fragments {
                        prop_assert!(piece.len() <= mtu);
                        let mut wire = Vec::new();
                        piece.emit(&mut wire);
                        let f = Fragment::new_checked(&wire[..]).unwrap();
                        prop_assert_eq!(f.total(), total);
                        joined.extend_from_slice(f.payload());
                    }
                    prop_assert_eq!(joined, p);
                }
                Err(_) => prop_assert!(fragment_count(len, mtu).is_err()),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = Fragment::new_checked(&data[..]) {
                let h = FragmentHeader::parse(&data).unwrap();
                prop_assert_eq!((h.total, h.number), (f.total(), f.number()));
                let mut again = h.to_bytes().to_vec();
                again.extend_from_slice(f.payload());
                // Only the unused upper bits of the hops byte may differ.
                again[IDX_FRAGMENT_HOPS] = data[IDX_FRAGMENT_HOPS];
                prop_assert_eq!(again, data);
            }
        }
    }
}
