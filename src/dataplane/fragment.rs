//! IPv4 fragmentation (RFC 791 3.2, RFC 1812 4.2.2.7) of a packet without DF that exceeds
//! the network MTU: every fragment but the last carries a multiple of 8 data bytes; the
//! first keeps the whole header, the others only the options whose "copied" bit is set;
//! offsets continue those of the packet (which may itself be a fragment) and its MF is kept
//! on the last piece. Headers are built on the stack; the caller writes each fragment out.

use super::checksum::internet_checksum;
use super::inspect::{IPV4_MIN_HEADER_LEN, IPV4_MORE_FRAGMENTS, IPV4_OFFSET_MASK};

const MAX_HEADER_LEN: usize = 60;
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_COPIED: u8 = 0x80;

/// Splits `packet` (header length `header_len`) into fragments of at most `mtu` bytes,
/// handing each one's header and data to `emit`. Returns how many were made, or `None`
/// when the MTU leaves no room for 8 data bytes (nothing emitted).
pub(crate) fn fragment_ipv4(
    packet: &[u8],
    header_len: usize,
    mtu: usize,
    mut emit: impl FnMut(&[u8], &[u8]),
) -> Option<usize> {
    let header = packet.get(..header_len)?;
    let data = packet.get(header_len..)?;
    if !(IPV4_MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) {
        return None;
    }
    let mut later_header = [0u8; MAX_HEADER_LEN];
    let later_len = copied_header(header, &mut later_header);
    let first_room = mtu.checked_sub(header_len)? & !7;
    let later_room = mtu.checked_sub(later_len)? & !7;
    if first_room == 0 || later_room == 0 {
        return None;
    }
    let field = u16::from_be_bytes([header[6], header[7]]);
    let base_offset = usize::from(field & IPV4_OFFSET_MASK);
    let original_more = field & IPV4_MORE_FRAGMENTS != 0;
    let mut count = 0;
    let mut start = 0;
    while start < data.len() {
        let (template, room) = if start == 0 {
            (header, first_room)
        } else {
            (&later_header[..later_len], later_room)
        };
        let end = data.len().min(start + room);
        let more = end < data.len() || original_more;
        let mut h = [0u8; MAX_HEADER_LEN];
        let h = &mut h[..template.len()];
        h.copy_from_slice(template);
        let total = (template.len() + end - start) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let offset = ((base_offset + start / 8) as u16) & IPV4_OFFSET_MASK;
        let flags = if more { IPV4_MORE_FRAGMENTS } else { 0 };
        h[6..8].copy_from_slice(&(offset | flags).to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let sum = internet_checksum(h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        emit(h, &data[start..end]);
        count += 1;
        start = end;
    }
    Some(count)
}

/// Writes into `out` the header for non-first fragments: the fixed part plus the options
/// with the copied bit, padded with end-of-options to a multiple of 4. Returns its length.
/// `header` is 20..=60 bytes.
fn copied_header(header: &[u8], out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    let (fixed, mut options) = header.split_at(IPV4_MIN_HEADER_LEN.min(header.len()));
    out[..fixed.len()].copy_from_slice(fixed);
    let mut len = fixed.len();
    while let Some(&kind) = options.first() {
        if kind == OPTION_END {
            break;
        }
        if kind == OPTION_NOP {
            options = &options[1..];
            continue;
        }
        let option_len = usize::from(options.get(1).copied().unwrap_or(0));
        let Some(option) = options.get(..option_len).filter(|_| option_len >= 2) else {
            break; // malformed options: copy no further
        };
        if kind & OPTION_COPIED != 0 {
            out[len..len + option_len].copy_from_slice(option);
            len += option_len;
        }
        options = &options[option_len..];
    }
    let padded = len.div_ceil(4) * 4;
    out[len..padded].fill(OPTION_END);
    out[0] = 0x40 | (padded / 4) as u8;
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_copied_options_follow() {
        // 20-byte header + options: NOP, record route (0x07, not copied, len 7),
        // security (0x82, copied, len 4), end, padding to 32.
        let mut header = vec![
            0x48, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        header.extend_from_slice(&[1, 7, 7, 4, 0, 0, 0, 0, 0x82, 4, 0xaa, 0xbb]);
        assert_eq!(header.len(), 32);
        let mut out = [0u8; MAX_HEADER_LEN];
        let len = copied_header(&header, &mut out);
        assert_eq!(len, 24);
        assert_eq!(out[0], 0x46);
        assert_eq!(out[20..24], [0x82, 4, 0xaa, 0xbb]);
        // Malformed option length: copying stops, the result is still a valid header.
        let mut bad = header.clone();
        bad[21] = 0;
        assert_eq!(copied_header(&bad, &mut out), 20);
    }

    #[test]
    fn tiny_mtu_is_refused() {
        let mut packet = vec![
            0x45, 0, 0, 100, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        packet.resize(100, 0);
        assert_eq!(fragment_ipv4(&packet, 20, 27, |_, _| panic!()), None);
        assert_eq!(fragment_ipv4(&packet, 20, 10, |_, _| panic!()), None);
        let mut pieces = 0;
        assert_eq!(fragment_ipv4(&packet, 20, 28, |_, _| pieces += 1), Some(10));
        assert_eq!(pieces, 10);
    }
}
