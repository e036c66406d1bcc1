//! The demo's TCP traffic over two members' user-space stacks: a bulk transfer checked end to
//! end with SHA-256 (throughput), then 64-byte ping-pongs on one connection (round trips).
//! Bob serves both from one task; alice drives them and owns the clock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use super::ui::{Progress, format_bytes, format_rate};
use crate::netstack::{Netstack, TcpListener, TcpStream};

/// The port bob listens on (the iperf port, for familiarity).
const PORT: u16 = 5201;
/// Ping-pongs measured for the round trip.
pub(super) const PINGS: usize = 200;
/// Size of one ping (and of its echo).
const PING_SIZE: usize = 64;
/// Size of one write of the bulk transfer.
const CHUNK: usize = 64 << 10;
/// Bound on connecting (name resolution included).
const CONNECT_BOUND: Duration = Duration::from_secs(15);
/// Bound on the whole ping-pong series.
const PING_BOUND: Duration = Duration::from_secs(30);

/// What the bulk transfer measured.
pub(super) struct Transfer {
    /// The name alice connected to, and what it resolved to.
    pub name: String,
    pub resolved: Vec<IpAddr>,
    pub peer: SocketAddr,
    pub bytes: u64,
    /// From the first byte written to bob's digest read back.
    pub elapsed: Duration,
    pub sent_digest: String,
    pub received_digest: String,
}

/// Round trips of the ping-pong series, sorted.
pub(super) struct RoundTrips {
    pub samples: Vec<Duration>,
}

impl RoundTrips {
    pub(super) fn median(&self) -> Option<Duration> {
        self.samples.get(self.samples.len() / 2).copied()
    }

    /// The 99th percentile (nearest rank).
    pub(super) fn p99(&self) -> Option<Duration> {
        let rank = (self.samples.len() * 99).div_ceil(100);
        self.samples.get(rank.saturating_sub(1)).copied()
    }
}

/// The bound on a transfer of `bytes`: 30 s plus one second per MiB (a floor of 8 Mbit/s,
/// far below what a debug build does, so only a stall trips it).
pub(super) fn transfer_bound(bytes: u64) -> Duration {
    Duration::from_secs(30 + (bytes >> 20))
}

/// Bob's listeners on both families (`<node>.zt` may resolve to either).
pub(super) fn listen(bob: &Netstack) -> Result<[TcpListener; 2], String> {
    let bind = |addr: &str| {
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("listen address {addr}: {e}"))?;
        bob.bind_tcp(addr)
            .map_err(|e| format!("bob cannot listen on {addr}: {e}"))
    };
    Ok([
        bind(&format!("[::]:{PORT}"))?,
        bind(&format!("0.0.0.0:{PORT}"))?,
    ])
}

/// Bob: the first connection is hashed until EOF and answered with the digest; the second
/// is echoed back until EOF. Errors end the task; alice's bounds report them.
pub(super) fn serve(listeners: [TcpListener; 2]) {
    tokio::spawn(async move {
        let [v6, v4] = &listeners;
        for turn in 0..2 {
            let accepted = tokio::select! {
                a = v6.accept() => a,
                a = v4.accept() => a,
            };
            let Ok((stream, _peer)) = accepted else {
                return;
            };
            let served = if turn == 0 {
                hash_until_eof(stream).await
            } else {
                echo_until_eof(stream).await
            };
            if served.is_err() {
                return;
            }
        }
    });
}

async fn hash_until_eof(mut stream: TcpStream) -> std::io::Result<()> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    stream.write_all(&hasher.finalize()).await?;
    stream.shutdown().await
}

async fn echo_until_eof(stream: TcpStream) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    tokio::io::copy(&mut rd, &mut wr).await?;
    wr.shutdown().await
}

/// Alice connects to `name` (a `<node>.zt` name), resolving it first.
async fn connect(alice: &Netstack, name: &str) -> Result<(Vec<IpAddr>, TcpStream), String> {
    let resolved = alice
        .resolve(name)
        .map_err(|e| format!("alice cannot resolve {name}: {e}"))?;
    let stream = timeout(CONNECT_BOUND, alice.connect_host(name, PORT))
        .await
        .map_err(|_| format!("timed out after {CONNECT_BOUND:?} connecting to {name}:{PORT}"))?
        .map_err(|e| format!("alice cannot connect to {name}:{PORT}: {e}"))?;
    Ok((resolved, stream))
}

/// Sends `bytes` of pseudo-random data (from `seed`) to bob and compares digests.
pub(super) async fn transfer(
    alice: &Netstack,
    name: &str,
    bytes: u64,
    seed: u64,
    quiet: bool,
) -> Result<Transfer, String> {
    let (resolved, mut stream) = connect(alice, name).await?;
    let peer = stream.peer_addr();
    let mut progress = Progress::new("TCP alice -> bob", bytes, quiet);
    let mut data = PseudoRandom(seed);
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut sent = 0u64;
    let send = async {
        while sent < bytes {
            let len = usize::try_from(bytes - sent).map_or(CHUNK, |left| left.min(CHUNK));
            let piece = chunk.get_mut(..len).unwrap_or_default();
            data.fill(piece);
            hasher.update(&*piece);
            stream.write_all(piece).await?;
            sent += len as u64;
            progress.set(sent);
        }
        stream.shutdown().await?;
        let mut digest = [0u8; 32];
        stream.read_exact(&mut digest).await?;
        Ok::<_, std::io::Error>(digest)
    };
    let bound = transfer_bound(bytes);
    let received = timeout(bound, send)
        .await
        .map_err(|_| format!("timed out after {bound:?} sending {bytes} bytes to bob"))?
        .map_err(|e| format!("TCP transfer to bob failed: {e}"))?;
    let elapsed = started.elapsed();
    progress.finish(&format!(
        "{} in {:.2} s, {}",
        format_bytes(bytes),
        elapsed.as_secs_f64(),
        format_rate(bytes, elapsed)
    ));
    Ok(Transfer {
        name: name.to_owned(),
        resolved,
        peer,
        bytes,
        elapsed,
        sent_digest: hex(&hasher.finalize()),
        received_digest: hex(&received),
    })
}

/// [`PINGS`] round trips of [`PING_SIZE`] bytes on one connection, each echo checked.
pub(super) async fn ping_pong(alice: &Netstack, name: &str) -> Result<RoundTrips, String> {
    let (_, mut stream) = connect(alice, name).await?;
    let series = async {
        let mut samples = Vec::with_capacity(PINGS);
        let mut echo = [0u8; PING_SIZE];
        for seq in 0..PINGS {
            let mut ping = [0u8; PING_SIZE];
            PseudoRandom(seq as u64).fill(&mut ping);
            let sent = Instant::now();
            stream.write_all(&ping).await?;
            stream.read_exact(&mut echo).await?;
            samples.push(sent.elapsed());
            if echo != ping {
                return Err(std::io::Error::other(format!("echo {seq} differs")));
            }
        }
        stream.shutdown().await?;
        Ok(samples)
    };
    let mut samples = timeout(PING_BOUND, series)
        .await
        .map_err(|_| format!("timed out after {PING_BOUND:?} in the TCP ping-pong"))?
        .map_err(|e| format!("TCP ping-pong failed: {e}"))?;
    samples.sort();
    Ok(RoundTrips { samples })
}

/// A small, fast, seedable generator (splitmix64): the data only has to be incompressible
/// and repeatable, not secret.
pub(super) struct PseudoRandom(pub(super) u64);

impl PseudoRandom {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn fill(&mut self, out: &mut [u8]) {
        for piece in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            piece.copy_from_slice(word.get(..piece.len()).unwrap_or_default());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_micros).collect();
        let trips = RoundTrips { samples };
        assert_eq!(trips.median(), Some(Duration::from_micros(101)));
        assert_eq!(trips.p99(), Some(Duration::from_micros(198)));
        let empty = RoundTrips {
            samples: Vec::new(),
        };
        assert_eq!(empty.median(), None);
        assert_eq!(empty.p99(), None);
    }

    #[test]
    fn pseudo_random_is_repeatable_and_fills_odd_lengths() {
        let (mut a, mut b) = ([0u8; 13], [0u8; 13]);
        PseudoRandom(7).fill(&mut a);
        PseudoRandom(7).fill(&mut b);
        assert_eq!(a, b);
        PseudoRandom(8).fill(&mut b);
        assert_ne!(a, b);
    }
}
