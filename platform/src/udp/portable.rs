//! The portable batch path: one `recvfrom`/`sendto` per datagram through the standard
//! library. Used on systems without `recvmmsg`/`sendmmsg` and on Linux when the
//! `ZTRS_NO_MMSG=1` kill switch is set. It reads no ancillary data, so the local endpoint it
//! reports is the socket's bound address.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::{FamilyMode, MAX_BATCH, RecvMeta, canonical, destination_for};

/// Receives datagrams one by one until the buffers are full or the socket has no more. An
/// error on the first read is returned; a later one ends the batch early (it will show again
/// on the next call if it persists).
pub(super) fn recv_batch<B: AsMut<[u8]>>(
    socket: &UdpSocket,
    bound: SocketAddr,
    bufs: &mut [B],
    meta: &mut [RecvMeta],
) -> io::Result<usize> {
    let local = canonical(bound);
    let mut received = 0;
    for (buf, slot) in bufs.iter_mut().zip(meta.iter_mut()).take(MAX_BATCH) {
        let buf = buf.as_mut();
        match socket.recv_from(buf) {
            Ok((len, remote)) => {
                *slot = RecvMeta {
                    len,
                    remote: canonical(remote),
                    local,
                    // recvfrom cuts oversized datagrams silently; a full buffer is suspect.
                    truncated: len == buf.len(),
                    segment_size: 0,
                };
                received += 1;
            }
            Err(err) if received == 0 => return Err(err),
            Err(_) => break,
        }
    }
    Ok(received)
}

/// Sends datagrams one by one in order, stopping at the first failure: returns how many were
/// sent, or the first datagram's error when none was.
pub(super) fn send_batch(
    socket: &UdpSocket,
    mode: FamilyMode,
    datagrams: &[(SocketAddr, &[u8])],
) -> io::Result<usize> {
    let mut sent = 0;
    for (remote, data) in datagrams.iter().take(MAX_BATCH) {
        let result = destination_for(mode, *remote).and_then(|to| socket.send_to(data, to));
        match result {
            Ok(_) => sent += 1,
            Err(err) if sent == 0 => return Err(err),
            Err(_) => break,
        }
    }
    Ok(sent)
}
