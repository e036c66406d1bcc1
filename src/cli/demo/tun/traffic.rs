//! Kernel TCP between two namespaces, through the members' TUN interfaces: a bulk transfer
//! checked end to end with SHA-256, then 64-byte ping-pongs on a second connection. Each side
//! is a std thread that entered its member's namespace first (sockets belong to the namespace
//! of the thread that opens them). The protocol is the user-space demo's: bob hashes the
//! first connection until EOF and answers the digest, then echoes the second.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::super::traffic::{PINGS, PseudoRandom, RoundTrips, transfer_bound};
use super::wait::Stop;
use crate::cli::demo::ui::{Progress, format_bytes, format_rate};

/// The port bob listens on (the user-space demo's).
const PORT: u16 = 5201;
/// Size of one ping (and of its echo).
const PING_SIZE: usize = 64;
/// Size of one write of the bulk transfer.
const CHUNK: usize = 64 << 10;
/// Bound on alice's connection attempts (the first packets may wait for WHOIS and paths).
const CONNECT_BOUND: Duration = Duration::from_secs(20);
/// Bound on the ping-pong series.
const PING_BOUND: Duration = Duration::from_secs(30);
/// A transfer that makes no progress this long has failed (TCP alone would retry for many
/// minutes).
const STALL_BOUND: Duration = Duration::from_secs(10);
/// Socket timeouts: how often a blocked side looks at the give-up flag.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// What the bulk transfer measured.
pub(super) struct Transfer {
    /// Bob's listening socket.
    pub(super) peer: SocketAddr,
    pub(super) bytes: u64,
    /// From the first byte written to bob's digest read back.
    pub(super) elapsed: Duration,
    pub(super) sent_digest: String,
    pub(super) received_digest: String,
}

/// Where the traffic runs.
pub(super) struct Ends<'a> {
    pub(super) alice_namespace: &'a str,
    pub(super) bob_namespace: &'a str,
    pub(super) bob_ip: Ipv4Addr,
}

/// Runs the transfer (with a progress bar) and the ping-pong series, calling `watchdog`
/// (which checks that the daemons still run) every 50 ms. A stop request, a watchdog error,
/// a stall, the deadline or a failure on either side makes both threads give up within
/// [`LOOK_EVERY`].
pub(super) fn measure(
    ends: &Ends<'_>,
    bytes: u64,
    seed: u64,
    quiet: bool,
    stop: &Stop,
    watchdog: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(Transfer, RoundTrips), String> {
    let give_up = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();
    let bob = {
        let (namespace, give_up) = (ends.bob_namespace.to_owned(), Arc::clone(&give_up));
        let listen = SocketAddr::from((ends.bob_ip, PORT));
        spawn("ztrs-demo-bob", move || {
            serve_bob(&namespace, listen, &ready_tx, &give_up)
        })?
    };
    // Alice starts once bob listens (or bob's failure is reported instead).
    let listening = ready_rx
        .recv()
        .map_err(|_| "bob's thread ended before listening".to_owned())
        .and_then(|ready| ready);
    if let Err(failed) = listening {
        give_up.store(true, Ordering::Relaxed);
        let _ = bob.join();
        return Err(failed);
    }
    let alice = {
        let (namespace, give_up, sent) = (
            ends.alice_namespace.to_owned(),
            Arc::clone(&give_up),
            Arc::clone(&sent),
        );
        let bob_at = SocketAddr::from((ends.bob_ip, PORT));
        spawn("ztrs-demo-alice", move || {
            drive_alice(&namespace, bob_at, bytes, seed, &sent, &give_up)
        })
    };
    let alice = match alice {
        Ok(alice) => alice,
        Err(failed) => {
            give_up.store(true, Ordering::Relaxed);
            let _ = bob.join();
            return Err(failed);
        }
    };
    let mut progress = Progress::new("TCP alice -> bob", bytes, quiet);
    let supervised = supervise(&alice, &sent, bytes, &mut progress, stop, watchdog);
    if let Err(failed) = supervised {
        give_up.store(true, Ordering::Relaxed);
        let _ = alice.join();
        let _ = bob.join();
        return Err(failed);
    }
    let alice_result = alice
        .join()
        .unwrap_or_else(|_| Err("alice's thread panicked".to_owned()));
    give_up.store(true, Ordering::Relaxed);
    let bob_result = bob
        .join()
        .unwrap_or_else(|_| Err("bob's thread panicked".to_owned()));
    let (transfer, round_trips) = alice_result?;
    bob_result?;
    progress.finish(&format!(
        "{} in {:.2} s, {}",
        format_bytes(transfer.bytes),
        transfer.elapsed.as_secs_f64(),
        format_rate(transfer.bytes, transfer.elapsed)
    ));
    Ok((transfer, round_trips))
}

/// Watches alice's thread until it ends: the progress bar, the stop flag, the daemons, a
/// stalled transfer and the overall deadline. `Err` says why the traffic must stop.
fn supervise(
    alice: &JoinHandle<Result<(Transfer, RoundTrips), String>>,
    sent: &AtomicU64,
    bytes: u64,
    progress: &mut Progress,
    stop: &Stop,
    watchdog: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let bound = CONNECT_BOUND + transfer_bound(bytes) + PING_BOUND;
    let deadline = Instant::now() + bound;
    let (mut last_sent, mut last_change) = (0, Instant::now());
    while !alice.is_finished() {
        stop.check()?;
        watchdog()?;
        let now = Instant::now();
        let done = sent.load(Ordering::Relaxed);
        if done != last_sent {
            (last_sent, last_change) = (done, now);
        } else if done > 0 && done < bytes && now - last_change > STALL_BOUND {
            return Err(format!(
                "the transfer stalled at {} for {} s",
                format_bytes(done),
                STALL_BOUND.as_secs()
            ));
        }
        if now > deadline {
            return Err(format!(
                "the TCP traffic missed its bound ({} s)",
                bound.as_secs()
            ));
        }
        progress.set(done);
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<JoinHandle<Result<T, String>>, String> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map_err(|e| format!("cannot start {name}: {e}"))
}

/// Bob: listens on his managed address, reports that, then serves the two connections.
fn serve_bob(
    namespace: &str,
    listen: SocketAddr,
    ready: &mpsc::Sender<Result<(), String>>,
    give_up: &AtomicBool,
) -> Result<(), String> {
    let bound = ztrs_platform::netns::enter(namespace)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            TcpListener::bind(listen).map_err(|e| format!("bob cannot listen on {listen}: {e}"))
        })
        .and_then(|listener| {
            // Non-blocking accepts, so a give-up is noticed while waiting.
            listener
                .set_nonblocking(true)
                .map(|()| listener)
                .map_err(|e| e.to_string())
        });
    let listener = match bound {
        Ok(listener) => {
            let _ = ready.send(Ok(()));
            listener
        }
        Err(failed) => {
            let _ = ready.send(Err(failed.clone()));
            return Err(failed);
        }
    };
    let mut stream = accept(&listener, give_up)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = read_some(&mut stream, &mut buffer, give_up)?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    write_all(&mut stream, &hasher.finalize(), give_up)?;
    let _ = stream.shutdown(Shutdown::Write);
    let mut stream = accept(&listener, give_up)?;
    let _ = stream.set_nodelay(true);
    let mut ping = [0u8; PING_SIZE];
    while read_full(&mut stream, &mut ping, give_up)? {
        write_all(&mut stream, &ping, give_up)?;
    }
    Ok(())
}

/// Alice: the bulk transfer, then the ping-pong series, each on its own connection.
fn drive_alice(
    namespace: &str,
    bob: SocketAddr,
    bytes: u64,
    seed: u64,
    sent: &AtomicU64,
    give_up: &AtomicBool,
) -> Result<(Transfer, RoundTrips), String> {
    ztrs_platform::netns::enter(namespace).map_err(|e| e.to_string())?;
    let transfer = send_bulk(bob, bytes, seed, sent, give_up)?;
    let round_trips = ping_pong(bob, give_up)?;
    Ok((transfer, round_trips))
}

fn send_bulk(
    bob: SocketAddr,
    bytes: u64,
    seed: u64,
    sent: &AtomicU64,
    give_up: &AtomicBool,
) -> Result<Transfer, String> {
    let mut stream = connect(bob, give_up)?;
    let mut data = PseudoRandom(seed);
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; CHUNK];
    let started = Instant::now();
    let mut done = 0u64;
    while done < bytes {
        let len = usize::try_from(bytes - done).map_or(CHUNK, |left| left.min(CHUNK));
        let piece = chunk.get_mut(..len).unwrap_or_default();
        data.fill(piece);
        hasher.update(&*piece);
        write_all(&mut stream, piece, give_up)?;
        done += len as u64;
        sent.store(done, Ordering::Relaxed);
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("closing the transfer: {e}"))?;
    let mut digest = [0u8; 32];
    if !read_full(&mut stream, &mut digest, give_up)? {
        return Err("bob closed without answering the digest".to_owned());
    }
    Ok(Transfer {
        peer: bob,
        bytes,
        elapsed: started.elapsed(),
        sent_digest: crate::hex::encode(&hasher.finalize()),
        received_digest: crate::hex::encode(&digest),
    })
}

/// [`PINGS`] round trips of [`PING_SIZE`] bytes on one connection, each echo checked.
fn ping_pong(bob: SocketAddr, give_up: &AtomicBool) -> Result<RoundTrips, String> {
    let mut stream = connect(bob, give_up)?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let mut samples = Vec::with_capacity(PINGS);
    let mut echo = [0u8; PING_SIZE];
    for seq in 0..PINGS {
        let mut ping = [0u8; PING_SIZE];
        PseudoRandom(seq as u64).fill(&mut ping);
        let sent = Instant::now();
        write_all(&mut stream, &ping, give_up)?;
        if !read_full(&mut stream, &mut echo, give_up)? {
            return Err(format!("bob closed the ping-pong after {seq} echoes"));
        }
        samples.push(sent.elapsed());
        if echo != ping {
            return Err(format!("echo {seq} differs from its ping"));
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    samples.sort();
    Ok(RoundTrips { samples })
}

/// Connects, retrying refusals and unreachability until [`CONNECT_BOUND`] (the first packets
/// to bob may wait for his identity and a path).
fn connect(to: SocketAddr, give_up: &AtomicBool) -> Result<TcpStream, String> {
    let deadline = Instant::now() + CONNECT_BOUND;
    loop {
        gave_up(give_up)?;
        match TcpStream::connect_timeout(&to, Duration::from_secs(1)) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(LOOK_EVERY))
                    .and_then(|()| stream.set_write_timeout(Some(LOOK_EVERY)))
                    .map_err(|e| format!("socket timeouts: {e}"))?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "alice cannot connect to {to} within {} s: {e}",
                    CONNECT_BOUND.as_secs()
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn accept(listener: &TcpListener, give_up: &AtomicBool) -> Result<TcpStream, String> {
    loop {
        gave_up(give_up)?;
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(LOOK_EVERY)))
                    .and_then(|()| stream.set_write_timeout(Some(LOOK_EVERY)))
                    .map_err(|e| format!("socket options: {e}"))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("bob cannot accept: {e}")),
        }
    }
}

fn gave_up(give_up: &AtomicBool) -> Result<(), String> {
    if give_up.load(Ordering::Relaxed) {
        Err("stopped".to_owned())
    } else {
        Ok(())
    }
}

/// A socket timeout only means "look at the flag again".
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

fn read_some(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    give_up: &AtomicBool,
) -> Result<usize, String> {
    loop {
        gave_up(give_up)?;
        match stream.read(buffer) {
            Ok(n) => return Ok(n),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("TCP read: {e}")),
        }
    }
}

/// Fills `buffer`; `false` on EOF before its first byte, an error on EOF inside it.
fn read_full(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    give_up: &AtomicBool,
) -> Result<bool, String> {
    let mut filled = 0;
    while let Some(rest) = buffer.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match read_some(stream, rest, give_up)? {
            0 if filled == 0 => return Ok(false),
            0 => return Err("TCP connection closed mid-message".to_owned()),
            n => filled += n,
        }
    }
    Ok(true)
}

fn write_all(stream: &mut TcpStream, mut data: &[u8], give_up: &AtomicBool) -> Result<(), String> {
    while !data.is_empty() {
        gave_up(give_up)?;
        match stream.write(data) {
            Ok(0) => return Err("TCP write: connection closed".to_owned()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(format!("TCP write: {e}")),
        }
    }
    Ok(())
}
