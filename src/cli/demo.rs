//! `ztrs demo`: a self-contained private ZeroTier underlay on 127.0.0.1, needing no privileges
//! and no internet.
//!
//! It generates three identities (root, alice, bob), signs a private planet whose only root
//! is the root's loopback socket, and runs three services in one tokio runtime. Once both
//! members are online, alice talks to bob: the first contact goes through the root (which
//! relays it and introduces them with RENDEZVOUS), then over the direct path they learn. The
//! demo measures echo round trips on both routes.
//!
//! Then the private network: the root also runs the network controller, which creates the
//! network "demo" (IPv4 pool, route, RFC 4193 addresses). Both members join and are refused
//! (ACCESS_DENIED) until the controller authorizes them; once configured, alice resolves
//! bob's managed IPv4 with a real ARP request and sends ICMP echo requests in Ethernet frames,
//! and the demo plays bob's IP stack, answering from the frames his node delivers. It prints a
//! short report and shuts everything down. Every wait is on an event or condition with a deadline; a step that misses its
//! deadline is named on stderr and the exit status is 1.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

use crate::controller::{Controller, MemoryStore};
use crate::crypto::Identity;
use crate::crypto::c25519::{SIGNATURE_LEN, generate_keypair};
use crate::node::{
    Counters, ECHO_REPLY_BURST, ECHO_REPLY_REFILL, Event, NetworkStatus, Node, NodeConfig,
};
use crate::service::{self, ServiceHandle, ServiceOptions, ServiceStats};
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::ethernet::{EthernetHeader, ethertype};
use crate::wire::inet_address::InetAddress;
use crate::wire::mac::Mac;
use crate::wire::world::{Root, World, WorldType};
use crate::wire::{Address, NetworkId};

/// Bound on reaching the root (both members online).
const ONLINE_BOUND: Duration = Duration::from_secs(15);
/// Bound on the first contact (message and echoes relayed by the root).
const FIRST_CONTACT_BOUND: Duration = Duration::from_secs(15);
/// Bound on both members learning the direct path after RENDEZVOUS.
const DIRECT_PATH_BOUND: Duration = Duration::from_secs(15);
/// Bound on the direct echo series.
const ECHO_SERIES_BOUND: Duration = Duration::from_secs(20);
/// Bound on the orderly shutdown of all three services (each has its own 5 s bound).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);
/// How long one attempt (a message, an echo) waits for its answer before it is sent again.
const RETRY: Duration = Duration::from_millis(500);
/// Echoes sent over the direct path.
const DIRECT_ECHOES: usize = 20;
/// Echoes sent with the first message, all relayed. Bob answers at most
/// `ECHO_REPLY_BURST` echoes at once per peer; rendezvous contacts may use one of them.
const RELAYED_ECHOES: usize = ECHO_REPLY_BURST as usize - 2;
/// USER_MESSAGE type of the demo's messages (types up to 65535 are reserved).
const MESSAGE_TYPE: u64 = 0x7a74_7273_6465_6d6f;
/// Bound on both members being refused by the controller after joining.
const DENIED_BOUND: Duration = Duration::from_secs(10);
/// Bound on both members being configured after authorization (the controller pushes the
/// configs at once; without the push a member would ask again at its next 5 s check).
const CONFIGURE_BOUND: Duration = Duration::from_secs(20);
/// Bound on the ARP exchange (the first broadcast may precede bob's subscription).
const ARP_BOUND: Duration = Duration::from_secs(10);
/// Bound on the ICMP echo series over the network.
const FRAME_ECHO_BOUND: Duration = Duration::from_secs(20);
/// ICMP echo requests alice sends bob over the network.
const FRAME_ECHOES: u16 = 20;
/// Frames a member keeps for the demo to look at; older ones are dropped first.
const FRAME_BACKLOG: usize = 64;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const IP_PROTOCOL_ICMP: u8 = 1;
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Arguments of `ztrs demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Seed of the nodes' random generators (packet ids, choices) and the planet id, for a
    /// repeatable run; identities and the planet's signing key always come from the OS.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print only the report, not the progress lines.
    #[arg(long)]
    quiet: bool,
}

/// Runs the demo. Exit status 0 when every step completed, 1 otherwise.
pub(crate) fn run(args: DemoArgs) -> ExitCode {
    init_logging();
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(missing) => {
            eprintln!("demo failed: {missing}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only when `RUST_LOG` asks for them: the report is the output.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

fn execute(args: &DemoArgs) -> Result<(), String> {
    let progress = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    progress(
        "ztrs demo: a private ZeroTier underlay on 127.0.0.1 (no privileges, no internet)".into(),
    );
    let names = ["root", "alice", "bob"];
    let mut identities = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        progress(format!(
            "generating identity {}/3 ({name}, memory-hard proof of work) ...",
            i + 1
        ));
        let started = std::time::Instant::now();
        let identity = Identity::generate();
        progress(format!(
            "  {name} = {} in {:.1} s",
            identity.address(),
            started.elapsed().as_secs_f64()
        ));
        identities.push(identity);
    }
    let [root_id, alice_id, bob_id]: [Identity; 3] = identities
        .try_into()
        .map_err(|_| "identity generation".to_owned())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(scenario(args, [root_id, alice_id, bob_id], &progress))
}

/// The three nodes of the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Root,
    Alice,
    Bob,
}

/// A node event and when the demo saw it.
struct Observed {
    who: Who,
    at: Instant,
    event: Event,
}

/// What the demo learned from the event streams so far.
#[derive(Default)]
struct Seen {
    alice_online: Option<Instant>,
    bob_online: Option<Instant>,
    /// Alice learned a direct path to bob (and bob to alice).
    alice_direct: Option<Instant>,
    bob_direct: Option<Instant>,
    /// Echo replies from bob at alice, by sequence number.
    echo_replies: HashMap<u32, Instant>,
    /// User messages from alice at bob, by text.
    messages: HashMap<Vec<u8>, Instant>,
    alice_net: MemberSeen,
    bob_net: MemberSeen,
}

impl Seen {
    /// The network side of a member (the root is none).
    fn member(&mut self, who: Who) -> Option<&mut MemberSeen> {
        match who {
            Who::Alice => Some(&mut self.alice_net),
            Who::Bob => Some(&mut self.bob_net),
            Who::Root => None,
        }
    }
}

/// A member's view of the private network.
#[derive(Default)]
struct MemberSeen {
    /// The controller refused it (ACCESS_DENIED).
    denied: Option<Instant>,
    /// Its first config was accepted.
    configured: Option<Instant>,
    /// Frames delivered and not yet looked at, with their arrival time.
    frames: VecDeque<(Instant, Vec<u8>)>,
    frames_received: u64,
    frames_sent: u64,
}

struct Demo {
    root: ServiceHandle,
    alice: ServiceHandle,
    bob: ServiceHandle,
    events: mpsc::Receiver<Observed>,
    seen: Seen,
    pace: EchoPace,
    next_echo: u32,
}

impl Demo {
    /// Takes the next event (if one comes before `until`) into [`Seen`]; false on timeout or
    /// when every stream ended.
    async fn observe(&mut self, until: Instant) -> bool {
        let Ok(Some(observed)) = timeout_at(until, self.events.recv()).await else {
            return false;
        };
        let (alice, bob) = (self.alice.address(), self.bob.address());
        let seen = &mut self.seen;
        match (observed.who, observed.event) {
            (Who::Alice, Event::Online(true)) => {
                seen.alice_online.get_or_insert(observed.at);
            }
            (Who::Bob, Event::Online(true)) => {
                seen.bob_online.get_or_insert(observed.at);
            }
            (Who::Alice, Event::PeerDirectPath { peer, .. }) if peer == bob => {
                seen.alice_direct.get_or_insert(observed.at);
            }
            (Who::Bob, Event::PeerDirectPath { peer, .. }) if peer == alice => {
                seen.bob_direct.get_or_insert(observed.at);
            }
            (Who::Alice, Event::EchoReply { from, payload, .. }) if from == bob => {
                if let Some(seq) = echo_sequence(&payload) {
                    seen.echo_replies.entry(seq).or_insert(observed.at);
                }
            }
            (Who::Bob, Event::UserMessage { from, data, .. }) if from == alice => {
                seen.messages.entry(data).or_insert(observed.at);
            }
            (
                who,
                Event::NetworkStatus {
                    status: NetworkStatus::AccessDenied,
                    ..
                },
            ) => {
                if let Some(member) = seen.member(who) {
                    member.denied.get_or_insert(observed.at);
                }
            }
            (who, Event::NetworkConfigured { .. }) => {
                if let Some(member) = seen.member(who) {
                    member.configured.get_or_insert(observed.at);
                }
            }
            (who, Event::Frame { data, .. }) => {
                if let Some(member) = seen.member(who) {
                    member.frames_received += 1;
                    if member.frames.len() >= FRAME_BACKLOG {
                        member.frames.pop_front();
                    }
                    member.frames.push_back((observed.at, data));
                }
            }
            _ => {}
        }
        true
    }

    /// Observes events until `done` holds; `Err(what)` when `until` passes first.
    async fn wait(
        &mut self,
        until: Instant,
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) -> Result<(), String> {
        while !done(&self.seen) {
            if !self.observe(until).await {
                return Err(format!("timed out waiting for {what}"));
            }
        }
        Ok(())
    }

    /// Sends a USER_MESSAGE from alice to bob (a refusal, e.g. while bob is looked up, is
    /// treated like a loss and retried by the caller).
    async fn send_message(&self, text: &[u8]) {
        let _ = self
            .alice
            .send_user_message(self.bob.address(), MESSAGE_TYPE, text.to_vec())
            .await;
    }

    /// Sends an ECHO from alice to bob, paced for bob's reply rate limit; returns its
    /// sequence number and send time.
    async fn send_echo(&mut self) -> (u32, Instant) {
        self.pace.wait_turn().await;
        let seq = self.next_echo;
        self.next_echo += 1;
        let sent = Instant::now();
        let _ = self.alice.echo(self.bob.address(), echo_payload(seq)).await;
        (seq, sent)
    }

    fn handle(&self, who: Who) -> &ServiceHandle {
        match who {
            Who::Root => &self.root,
            Who::Alice => &self.alice,
            Who::Bob => &self.bob,
        }
    }

    /// Runs `change` on `who`'s node (on its driver task, with its clock).
    async fn change<R: Send + 'static>(
        &self,
        who: Who,
        change: impl FnOnce(&mut Node, u64) -> R + Send + 'static,
    ) -> Result<R, String> {
        self.handle(who)
            .with_node_mut(change)
            .await
            .map_err(|e| format!("{who:?}: {e}"))
    }

    /// Hands an Ethernet frame to `from`'s node, as its local side would.
    async fn send_frame(
        &mut self,
        from: Who,
        nwid: NetworkId,
        frame: Vec<u8>,
    ) -> Result<(), String> {
        self.change(from, move |node, now| node.handle_frame(now, nwid, &frame))
            .await?;
        if let Some(member) = self.seen.member(from) {
            member.frames_sent += 1;
        }
        Ok(())
    }

    /// The first frame delivered to `at` that `wanted` accepts, taken out of the backlog;
    /// `None` when `until` passes first.
    async fn take_frame(
        &mut self,
        at: Who,
        until: Instant,
        wanted: &impl Fn(&[u8]) -> bool,
    ) -> Option<(Instant, Vec<u8>)> {
        loop {
            if let Some(member) = self.seen.member(at)
                && let Some(index) = member.frames.iter().position(|(_, f)| wanted(f))
            {
                return member.frames.remove(index);
            }
            if !self.observe(until).await {
                return None;
            }
        }
    }

    /// Sends `frame` from `from` until a frame `wanted` reaches `to`, again after each
    /// [`RETRY`] without one (a frame is lost while credentials or subscriptions are still
    /// on their way); `Ok(None)` when `deadline` passes first.
    async fn deliver(
        &mut self,
        nwid: NetworkId,
        (from, frame): (Who, Vec<u8>),
        to: Who,
        wanted: impl Fn(&[u8]) -> bool,
        deadline: Instant,
    ) -> Result<Option<(Instant, Vec<u8>)>, String> {
        loop {
            self.send_frame(from, nwid, frame.clone()).await?;
            let attempt_end = (Instant::now() + RETRY).min(deadline);
            if let Some(found) = self.take_frame(to, attempt_end, &wanted).await {
                return Ok(Some(found));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn relayed_by_root(&self) -> Result<u64, String> {
        self.root
            .inspect(|node| node.counters().relay_forwarded)
            .await
            .map_err(|e| format!("root: {e}"))
    }
}

/// Mirrors bob's per-peer ECHO reply token bucket, so no echo is sent that would be refused.
struct EchoPace {
    tokens: u32,
    refilled: Instant,
}

impl EchoPace {
    /// One token fewer than the bucket, and a slightly slower refill, to stay clear of it.
    const CAPACITY: u32 = ECHO_REPLY_BURST - 1;
    const PERIOD: Duration = Duration::from_millis(ECHO_REPLY_REFILL + 15);

    fn new() -> EchoPace {
        EchoPace {
            tokens: Self::CAPACITY,
            refilled: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        while self.tokens < Self::CAPACITY && now >= self.refilled + Self::PERIOD {
            self.tokens += 1;
            self.refilled += Self::PERIOD;
        }
        if self.tokens == Self::CAPACITY {
            self.refilled = now;
        }
    }

    /// Waits until an echo may be sent and takes its token. This is rate pacing against a
    /// known protocol limit, not a wait for a condition.
    async fn wait_turn(&mut self) {
        self.refill(Instant::now());
        if self.tokens == 0 {
            sleep_until(self.refilled + Self::PERIOD).await;
            self.refill(Instant::now());
        }
        self.tokens = self.tokens.saturating_sub(1);
    }
}

fn echo_payload(seq: u32) -> Vec<u8> {
    format!("ztrs demo echo {seq}").into_bytes()
}

fn echo_sequence(payload: &[u8]) -> Option<u32> {
    std::str::from_utf8(payload)
        .ok()?
        .strip_prefix("ztrs demo echo ")?
        .parse()
        .ok()
}

/// A one-root private planet signed by a fresh key.
fn private_planet(root: &Identity, endpoint: SocketAddr, id: u64) -> World {
    let (public, secret) = generate_keypair();
    let mut planet = World {
        world_type: WorldType::Planet,
        id,
        timestamp: 1_700_000_000_000,
        updates_must_be_signed_by: public,
        signature: [0; SIGNATURE_LEN],
        roots: vec![Root {
            identity: root.to_public(),
            stable_endpoints: vec![InetAddress::Ip(endpoint.ip(), endpoint.port())],
        }],
    };
    planet.sign(&secret);
    planet
}

/// Starts a service and forwards its events, stamped, into the demo's one stream.
fn start(
    who: Who,
    config: NodeConfig,
    socket: UdpUnderlay,
    merged: &mpsc::Sender<Observed>,
) -> Result<ServiceHandle, String> {
    let (handle, mut events) = service::spawn(config, socket, ServiceOptions::default())
        .map_err(|e| format!("cannot start the {who:?} service: {e}"))?;
    let merged = merged.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let observed = Observed {
                who,
                at: Instant::now(),
                event,
            };
            if merged.send(observed).await.is_err() {
                break;
            }
        }
    });
    Ok(handle)
}

fn open_loopback() -> Result<UdpUnderlay, String> {
    UdpUnderlay::open(UdpConfig::ip(LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a UDP socket on 127.0.0.1: {e}"))
}

async fn scenario(
    args: &DemoArgs,
    [root_id, alice_id, bob_id]: [Identity; 3],
    progress: &impl Fn(String),
) -> Result<(), String> {
    // The root's socket is bound first: its port goes into the planet.
    let root_socket = open_loopback()?;
    let root_endpoint = root_socket.local_addr();
    let planet_id = 0x7a74_7273_0000_0000 | args.seed.unwrap_or(1) & 0xffff_ffff;
    let planet = private_planet(&root_id, root_endpoint, planet_id);
    progress(format!(
        "private planet {planet_id:016x} signed; its only root is {} at {root_endpoint}",
        root_id.address()
    ));
    let config = |identity: Identity, relay: bool, salt: u64| NodeConfig {
        allow_loopback_paths: true,
        relay,
        rng_seed: args
            .seed
            .map(|seed| seed.wrapping_mul(3).wrapping_add(salt)),
        ..NodeConfig::new(identity, planet.clone())
    };
    let (merged, events) = mpsc::channel(4096);
    let started = Instant::now();
    let root_config = NodeConfig {
        controller: Some(Controller::new(
            root_id.clone(),
            Box::new(MemoryStore::new()),
        )),
        ..config(root_id, true, 0)
    };
    let root = start(Who::Root, root_config, root_socket, &merged)?;
    let alice = start(
        Who::Alice,
        config(alice_id, false, 1),
        open_loopback()?,
        &merged,
    )?;
    let bob = start(
        Who::Bob,
        config(bob_id, false, 2),
        open_loopback()?,
        &merged,
    )?;
    drop(merged);
    progress("started 3 services (root relays and runs the controller; all on 127.0.0.1)".into());
    let mut demo = Demo {
        root,
        alice,
        bob,
        events,
        seen: Seen::default(),
        pace: EchoPace::new(),
        next_echo: 0,
    };
    let outcome = match talk(&mut demo, started).await {
        Ok(mut lines) => private_network(&mut demo, progress).await.map(|more| {
            lines.extend(more);
            lines
        }),
        Err(missing) => Err(missing),
    };
    let stopped = shutdown(&demo).await;
    // Let the event forwarders see their streams end.
    while demo.events.recv().await.is_some() {}
    let report = outcome?;
    for line in report {
        println!("{line}");
    }
    let stopped = stopped?;
    println!("shutdown: 3 services stopped cleanly in {stopped} ms");
    Ok(())
}

/// Stops all three services at once; the time it took in ms, or what did not stop.
async fn shutdown(demo: &Demo) -> Result<u128, String> {
    let begun = Instant::now();
    let all = async {
        tokio::join!(
            demo.root.shutdown(),
            demo.alice.shutdown(),
            demo.bob.shutdown()
        )
    };
    let (r, a, b) = tokio::time::timeout(SHUTDOWN_BOUND, all)
        .await
        .map_err(|_| "timed out waiting for the services to stop".to_owned())?;
    for (name, outcome) in [("root", r), ("alice", a), ("bob", b)] {
        if !outcome.is_clean() {
            return Err(format!("{name} did not stop cleanly: {outcome:?}"));
        }
    }
    Ok(begun.elapsed().as_millis())
}

/// The scenario proper; returns the report lines.
async fn talk(demo: &mut Demo, started: Instant) -> Result<Vec<String>, String> {
    demo.wait(
        started + ONLINE_BOUND,
        "alice and bob to come online (a HELLO answered by the root)",
        |seen| seen.alice_online.is_some() && seen.bob_online.is_some(),
    )
    .await?;

    // First contact: one message and a few echoes, sent together before any RENDEZVOUS can
    // exist, so all of them travel through the root (alice and bob first look each other up
    // with WHOIS, so their round trips include that).
    let relayed_before = demo.relayed_by_root().await?;
    let first_sent = Instant::now();
    let deadline = first_sent + FIRST_CONTACT_BOUND;
    let hello: &[u8] = b"hello bob, via the root";
    let mut relayed_echoes: Vec<(u32, Instant)> = Vec::new();
    demo.send_message(hello).await;
    for _ in 0..RELAYED_ECHOES {
        relayed_echoes.push(demo.send_echo().await);
    }
    let mut attempt_end = Instant::now() + RETRY;
    while !demo.seen.messages.contains_key(hello) {
        if !demo.observe(attempt_end.min(deadline)).await {
            if Instant::now() >= deadline {
                return Err("timed out waiting for bob to receive alice's first message".into());
            }
            // Lost while bob was being looked up: send it again.
            demo.send_message(hello).await;
            attempt_end = Instant::now() + RETRY;
        }
    }
    let delivered = demo.seen.messages.get(hello).copied().unwrap_or(first_sent);
    let relayed = demo.relayed_by_root().await?.saturating_sub(relayed_before);
    if relayed == 0 {
        return Err("the root relayed nothing: the first contact did not go through it".into());
    }
    // The relayed echoes answered by now (or soon); lost ones are not retried, since a
    // retry would take the direct path.
    let wanted: Vec<u32> = relayed_echoes.iter().map(|(seq, _)| *seq).collect();
    let _ = demo
        .wait(Instant::now() + RETRY, "relayed echo replies", |seen| {
            wanted.iter().all(|seq| seen.echo_replies.contains_key(seq))
        })
        .await;
    let relay_rtts: Vec<Duration> = relayed_echoes
        .iter()
        .filter_map(|(seq, sent)| Some(*demo.seen.echo_replies.get(seq)? - *sent))
        .collect();

    // The root introduced them (RENDEZVOUS); wait for both direct paths, nudging with a
    // message now and then as ordinary traffic would.
    let deadline = Instant::now() + DIRECT_PATH_BOUND;
    let mut nudges = 0u32;
    while demo.seen.alice_direct.is_none() || demo.seen.bob_direct.is_none() {
        let attempt_end = (Instant::now() + RETRY).min(deadline);
        if !demo.observe(attempt_end).await {
            if Instant::now() >= deadline {
                let missing = match (demo.seen.alice_direct, demo.seen.bob_direct) {
                    (None, None) => "alice -> bob and bob -> alice",
                    (None, _) => "alice -> bob",
                    _ => "bob -> alice",
                };
                return Err(format!(
                    "timed out waiting for a direct path {missing} after RENDEZVOUS"
                ));
            }
            nudges += 1;
            demo.send_message(format!("nudge {nudges}").as_bytes())
                .await;
        }
    }

    // Direct echoes, one at a time; each is classified by whether the root relayed anything
    // meanwhile.
    let deadline = Instant::now() + ECHO_SERIES_BOUND;
    let mut direct_rtts = Vec::with_capacity(DIRECT_ECHOES);
    let mut late_relayed = 0usize;
    while direct_rtts.len() < DIRECT_ECHOES {
        let counter_before = demo.relayed_by_root().await?;
        let (seq, sent) = demo.send_echo().await;
        let attempt_end = (Instant::now() + RETRY).min(deadline);
        let answered = demo
            .wait(attempt_end, "an echo reply", |seen| {
                seen.echo_replies.contains_key(&seq)
            })
            .await;
        if answered.is_err() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out waiting for direct echo replies ({} of {DIRECT_ECHOES})",
                    direct_rtts.len()
                ));
            }
            continue;
        }
        if demo.relayed_by_root().await? > counter_before {
            late_relayed += 1;
        } else if let Some(at) = demo.seen.echo_replies.get(&seq) {
            direct_rtts.push(*at - sent);
        }
    }
    let measured = Measured {
        started,
        first_sent,
        delivered,
        relay_rtts,
        direct_rtts,
        late_relayed,
        nudges,
    };
    report(demo, measured).await
}

/// Node counters and driver counters of one service.
async fn snapshot(handle: &ServiceHandle, name: &str) -> Result<(Counters, ServiceStats), String> {
    let counters = handle
        .inspect(|node| node.counters().clone())
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    Ok((counters, handle.stats()))
}

/// Datagrams dropped for any reason (node and driver), by name, when not zero.
fn drops(counters: &Counters, stats: &ServiceStats) -> Vec<(&'static str, u64)> {
    const NODE_DROPS: [&str; 17] = [
        "malformed_header",
        "bad_mac",
        "unsupported_cipher",
        "decompress_failed",
        "malformed_payload",
        "queue_full",
        "rx_queue_expired",
        "tx_queue_full",
        "tx_queue_expired",
        "transmit_queue_full",
        "transmit_bulk_dropped",
        "events_dropped",
        "relay_hop_limit",
        "relay_refused",
        "relay_no_route",
        "no_route",
        "echo_rate_limited",
    ];
    let node = counters
        .iter()
        .filter(|(name, _)| NODE_DROPS.contains(name) || name.starts_with("fragment_timed"));
    let driver = stats.iter().filter(|(name, _)| {
        matches!(
            *name,
            "receive_errors"
                | "oversized_dropped"
                | "send_errors"
                | "transmit_queue_full"
                | "events_dropped"
        )
    });
    node.chain(driver).filter(|(_, value)| *value > 0).collect()
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    samples.sort();
    let mid = samples.len() / 2;
    match samples.len() {
        0 => None,
        n if n % 2 == 1 => samples.get(mid).copied(),
        _ => Some((*samples.get(mid - 1)? + *samples.get(mid)?) / 2),
    }
}

/// What the scenario measured, for the report.
struct Measured {
    started: Instant,
    first_sent: Instant,
    delivered: Instant,
    relay_rtts: Vec<Duration>,
    direct_rtts: Vec<Duration>,
    late_relayed: usize,
    nudges: u32,
}

async fn report(demo: &Demo, measured: Measured) -> Result<Vec<String>, String> {
    let since = |at: Option<Instant>, from: Instant| {
        at.map_or("-".to_owned(), |t| format!("{} ms", (t - from).as_millis()))
    };
    let Measured {
        started,
        first_sent,
        delivered,
        relay_rtts,
        direct_rtts,
        late_relayed,
        nudges,
    } = measured;
    let seen = &demo.seen;
    let mut lines = vec![
        String::new(),
        format!(
            "{:<6} {:<10} {:<7} {:<16} {:>10} {:>6} {:>6} {:>6}",
            "node", "address", "role", "udp", "online", "in", "out", "drops"
        ),
    ];
    let nodes = [
        ("root", &demo.root, "root", None),
        ("alice", &demo.alice, "member", seen.alice_online),
        ("bob", &demo.bob, "member", seen.bob_online),
    ];
    let mut root_counters = None;
    let mut dropped = Vec::new();
    for (name, handle, role, online) in nodes {
        let (counters, stats) = snapshot(handle, name).await?;
        let node_drops = drops(&counters, &stats);
        let total: u64 = node_drops.iter().map(|(_, v)| v).sum();
        dropped.extend(
            node_drops
                .into_iter()
                .map(|(n, v)| format!("{name}.{n}={v}")),
        );
        let online = if role == "root" {
            "always".to_owned()
        } else {
            since(online, started)
        };
        lines.push(format!(
            "{:<6} {:<10} {:<7} {:<16} {:>10} {:>6} {:>6} {:>6}",
            name,
            Address::to_string(&handle.address()),
            role,
            handle.local_addr().to_string(),
            online,
            stats.datagrams_received,
            stats.datagrams_sent,
            total
        ));
        if role == "root" {
            root_counters = Some(counters);
        }
    }
    let root_counters = root_counters.unwrap_or_default();
    lines.push(String::new());
    lines.push(format!(
        "first contact alice -> bob: relayed by the root, delivered in {} ms",
        (delivered - first_sent).as_millis()
    ));
    lines.push(format!(
        "root: relayed {} packets, sent {} RENDEZVOUS",
        root_counters.relay_forwarded, root_counters.rendezvous_sent
    ));
    lines.push(format!(
        "direct path alice -> bob after {}, bob -> alice after {} (from the first message{})",
        since(seen.alice_direct, first_sent),
        since(seen.bob_direct, first_sent),
        if nudges > 0 {
            format!(", {nudges} nudges")
        } else {
            String::new()
        }
    ));
    let relayed_count = 1 + relay_rtts.len() + late_relayed;
    lines.push(format!(
        "messages alice -> bob: relayed {relayed_count}, direct {}",
        direct_rtts.len()
    ));
    let relay_median = median(relay_rtts.clone());
    lines.push(format!(
        "echo rtt relayed: median {} over {} (first contact, includes the WHOIS lookups)",
        relay_median.map_or("-".to_owned(), millis),
        relay_rtts.len()
    ));
    lines.push(format!(
        "echo rtt direct:  median {} over {}",
        median(direct_rtts.clone()).map_or("-".to_owned(), millis),
        direct_rtts.len()
    ));
    if dropped.is_empty() {
        lines.push("drops: 0".to_owned());
    } else {
        lines.push(format!("drops: {}", dropped.join(" ")));
    }
    Ok(lines)
}

/// The controller's clock: node time in ms, as the signed timestamp it wants.
fn controller_time(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// A managed address as `ip/bits`.
fn managed(address: &InetAddress) -> Option<String> {
    match address {
        InetAddress::Ip(ip, bits) => Some(format!("{ip}/{bits}")),
        _ => None,
    }
}

/// The private network part; returns its report lines.
async fn private_network(
    demo: &mut Demo,
    progress: &impl Fn(String),
) -> Result<Vec<String>, String> {
    let nwid = demo
        .change(Who::Root, |node, now| -> Result<NetworkId, String> {
            let controller = node.controller_mut().ok_or("the root runs no controller")?;
            let network = controller
                .create_network(
                    controller_time(now),
                    json!({
                        "name": "demo",
                        "private": true,
                        "enableBroadcast": true,
                        "v4AssignMode": {"zt": true},
                        "v6AssignMode": {"rfc4193": true},
                        "ipAssignmentPools": [{"ipRangeStart": "10.147.17.10",
                                               "ipRangeEnd": "10.147.17.100"}],
                        "routes": [{"target": "10.147.17.0/24", "via": null}],
                    }),
                )
                .map_err(|e| format!("cannot create the network: {e}"))?;
            network
                .network_id()
                .ok_or_else(|| "the new network has no id".to_owned())
        })
        .await??;
    progress(format!(
        "network {nwid} \"demo\" created on the root's controller (private, 10.147.17.10-100, rfc4193)"
    ));

    let joined = Instant::now();
    for who in [Who::Alice, Who::Bob] {
        demo.change(who, move |node, now| node.join(now, nwid))
            .await?
            .map_err(|e| format!("{who:?} cannot join {nwid}: {e}"))?;
    }
    demo.wait(
        joined + DENIED_BOUND,
        "the controller to refuse alice and bob (ACCESS_DENIED) before authorization",
        |seen| seen.alice_net.denied.is_some() && seen.bob_net.denied.is_some(),
    )
    .await?;

    let (alice, bob) = (demo.alice.address(), demo.bob.address());
    demo.change(Who::Root, move |node, now| -> Result<(), String> {
        let controller = node.controller_mut().ok_or("the root runs no controller")?;
        for member in [alice, bob] {
            controller
                .update_member(
                    controller_time(now),
                    nwid,
                    member,
                    &json!({"authorized": true}),
                )
                .map_err(|e| format!("cannot authorize {member}: {e}"))?;
        }
        // Push the new configs now instead of waiting for the members' next request.
        node.controller_changed(now, nwid);
        Ok(())
    })
    .await??;
    progress(
        "alice and bob joined: both refused (ACCESS_DENIED); authorized them on the controller"
            .into(),
    );
    demo.wait(
        Instant::now() + CONFIGURE_BOUND,
        "alice and bob to be configured after authorization",
        |seen| seen.alice_net.configured.is_some() && seen.bob_net.configured.is_some(),
    )
    .await?;

    let mut ipv4 = Vec::with_capacity(2);
    for who in [Who::Alice, Who::Bob] {
        let addresses = demo
            .handle(who)
            .inspect(move |node| {
                node.network(nwid)
                    .and_then(|n| n.config)
                    .map(|c| c.static_ips)
                    .unwrap_or_default()
            })
            .await
            .map_err(|e| format!("{who:?}: {e}"))?;
        let v4 = addresses.iter().find_map(|a| match a {
            InetAddress::Ip(IpAddr::V4(v4), bits) => Some((*v4, *bits)),
            _ => None,
        });
        let Some(v4) = v4 else {
            return Err(format!("{who:?} was configured without an IPv4 address"));
        };
        let configured = demo
            .seen
            .member(who)
            .and_then(|m| m.configured)
            .unwrap_or(joined);
        let list: Vec<String> = addresses.iter().filter_map(managed).collect();
        progress(format!(
            "  {} configured {:.1} ms after joining: {}",
            format!("{who:?}").to_lowercase(),
            (configured - joined).as_secs_f64() * 1000.0,
            list.join(" ")
        ));
        ipv4.push(v4);
    }
    let [(alice_ip, alice_bits), (bob_ip, bob_bits)]: [(Ipv4Addr, u16); 2] = ipv4
        .try_into()
        .map_err(|_| "managed addresses".to_owned())?;

    // ARP: alice asks (a broadcast, i.e. multicast to the ARP group of bob's address), bob's
    // node delivers the request, the demo answers for bob, alice's node delivers the reply.
    let (alice_mac, bob_mac) = (Mac::from_address(alice, nwid), Mac::from_address(bob, nwid));
    let request = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: alice_mac,
        sender_ip: alice_ip,
        target_mac: Mac::ZERO,
        target_ip: bob_ip,
    };
    let mut request_frame = Vec::new();
    request.emit_frame(&mut request_frame);
    let arp_started = Instant::now();
    let deadline = arp_started + ARP_BOUND;
    let is_request = move |f: &[u8]| arp_of(f).is_some_and(|a| a == request);
    let asked = demo
        .deliver(
            nwid,
            (Who::Alice, request_frame),
            Who::Bob,
            is_request,
            deadline,
        )
        .await?
        .ok_or("timed out waiting for bob to receive alice's ARP request")?;
    let reply = arp_of(&asked.1)
        .and_then(|a| a.reply(bob_mac))
        .ok_or("bob received something other than an ARP request")?;
    let mut reply_frame = Vec::new();
    reply.emit_frame(&mut reply_frame);
    let is_reply = move |f: &[u8]| arp_of(f).is_some_and(|a| a == reply);
    let (answered, _) = demo
        .deliver(
            nwid,
            (Who::Bob, reply_frame),
            Who::Alice,
            is_reply,
            deadline,
        )
        .await?
        .ok_or("timed out waiting for alice to receive bob's ARP reply")?;
    let arp_time = answered - arp_started;

    // ICMP echo, one at a time; the demo turns each request bob receives into his reply.
    let deadline = Instant::now() + FRAME_ECHO_BOUND;
    let mut rtts = Vec::with_capacity(usize::from(FRAME_ECHOES));
    for seq in 1..=FRAME_ECHOES {
        let ping = icmp_echo_frame(
            (alice_mac, alice_ip),
            (bob_mac, bob_ip),
            ICMP_ECHO_REQUEST,
            seq,
        );
        let sent = Instant::now();
        let is_ping = move |f: &[u8]| icmp_echo_of(f) == Some((ICMP_ECHO_REQUEST, seq));
        let (_, received) = demo
            .deliver(nwid, (Who::Alice, ping), Who::Bob, is_ping, deadline)
            .await?
            .ok_or_else(|| format!("timed out waiting for bob to receive echo request {seq}"))?;
        let pong = icmp_echo_reply(&received).ok_or("bob cannot answer an echo request")?;
        let is_pong = move |f: &[u8]| icmp_echo_of(f) == Some((ICMP_ECHO_REPLY, seq));
        let (answered, _) = demo
            .deliver(nwid, (Who::Bob, pong), Who::Alice, is_pong, deadline)
            .await?
            .ok_or_else(|| format!("timed out waiting for alice to receive echo reply {seq}"))?;
        rtts.push(answered - sent);
    }

    let seen = &demo.seen;
    let row = |name: &str, ip: Ipv4Addr, bits: u16, member: &MemberSeen| {
        format!(
            "{:<6} {:<16} {:<14} {:>9} {:>6} {:>6}",
            name,
            format!("{ip}/{bits}"),
            if member.denied.is_some() {
                "ACCESS_DENIED"
            } else {
                "-"
            },
            member.configured.map_or("-".to_owned(), |t| format!(
                "{:.1} ms",
                (t - joined).as_secs_f64() * 1000.0
            )),
            member.frames_sent,
            member.frames_received
        )
    };
    let frames = seen.alice_net.frames_sent + seen.bob_net.frames_sent;
    Ok(vec![
        String::new(),
        format!(
            "{:<6} {:<16} {:<14} {:>9} {:>6} {:>6}   network {nwid}",
            "member", "managed ipv4", "before auth", "joined->ok", "sent", "recv"
        ),
        row("alice", alice_ip, alice_bits, &seen.alice_net),
        row("bob", bob_ip, bob_bits, &seen.bob_net),
        format!(
            "arp: {bob_ip} is-at {bob_mac} (bob), answered in {}",
            millis(arp_time)
        ),
        format!(
            "frame rtt (icmp echo alice -> bob): median {} over {}, {frames} frames exchanged",
            median(rtts.clone()).map_or("-".to_owned(), millis),
            rtts.len()
        ),
    ])
}

/// The ARP packet of an ARP frame.
fn arp_of(frame: &[u8]) -> Option<ArpRepr> {
    let (header, payload) = EthernetHeader::parse(frame).ok()?;
    (header.ethertype == ethertype::ARP)
        .then(|| ArpRepr::parse(payload).ok())
        .flatten()
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => u32::from(u16::from_be_bytes([*high, *low])),
            [high] => u32::from(u16::from_be_bytes([*high, 0])),
            _ => 0,
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame with an IPv4 ICMP echo (request or reply) from `src` to `dst`.
fn icmp_echo_frame(
    (src_mac, src_ip): (Mac, Ipv4Addr),
    (dst_mac, dst_ip): (Mac, Ipv4Addr),
    icmp_type: u8,
    seq: u16,
) -> Vec<u8> {
    let mut icmp = vec![icmp_type, 0, 0, 0, 0x7a, 0x74];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"ztrs demo ping over a private network");
    ipv4_frame((src_mac, src_ip), (dst_mac, dst_ip), icmp)
}

/// Wraps an ICMP message (checksum field zero) into IPv4 and Ethernet, filling in both
/// checksums.
fn ipv4_frame(
    (src_mac, src_ip): (Mac, Ipv4Addr),
    (dst_mac, dst_ip): (Mac, Ipv4Addr),
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    let checksum = internet_checksum(&icmp).to_be_bytes();
    if let Some(field) = icmp.get_mut(2..4) {
        field.copy_from_slice(&checksum);
    }
    let total = u16::try_from(20 + icmp.len()).unwrap_or(u16::MAX);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, IP_PROTOCOL_ICMP, 0, 0]);
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&dst_ip.octets());
    let checksum = internet_checksum(&ip).to_be_bytes();
    if let Some(field) = ip.get_mut(10..12) {
        field.copy_from_slice(&checksum);
    }
    ip.extend_from_slice(&icmp);
    let mut frame = Vec::with_capacity(14 + ip.len());
    EthernetHeader {
        dst: dst_mac,
        src: src_mac,
        ethertype: ethertype::IPV4,
    }
    .emit_frame(&ip, &mut frame);
    frame
}

/// The parts of an IPv4 ICMP frame: Ethernet header, source and destination IPv4, and the
/// ICMP message (bounded by the IPv4 total length).
fn icmp_of(frame: &[u8]) -> Option<(EthernetHeader, Ipv4Addr, Ipv4Addr, &[u8])> {
    let (header, ip) = EthernetHeader::parse(frame).ok()?;
    if header.ethertype != ethertype::IPV4 {
        return None;
    }
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || *ip.get(9)? != IP_PROTOCOL_ICMP {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
    let icmp = ip.get(header_len..total)?;
    Some((header, src.into(), dst.into(), icmp))
}

/// Type and sequence number of an ICMP echo request or reply frame.
fn icmp_echo_of(frame: &[u8]) -> Option<(u8, u16)> {
    let (_, _, _, icmp) = icmp_of(frame)?;
    let icmp_type = *icmp.first()?;
    if icmp_type != ICMP_ECHO_REQUEST && icmp_type != ICMP_ECHO_REPLY {
        return None;
    }
    Some((
        icmp_type,
        u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]),
    ))
}

/// The echo reply to an echo request frame, as an IP stack answers it: addresses swapped,
/// identifier, sequence and data kept.
fn icmp_echo_reply(request: &[u8]) -> Option<Vec<u8>> {
    let (header, src, dst, icmp) = icmp_of(request)?;
    if *icmp.first()? != ICMP_ECHO_REQUEST || icmp.len() < 8 {
        return None;
    }
    let mut reply = icmp.to_vec();
    if let Some(fields) = reply.get_mut(0..4) {
        // Type echo reply, code 0, checksum recomputed.
        fields.copy_from_slice(&[ICMP_ECHO_REPLY, 0, 0, 0]);
    }
    Some(ipv4_frame((header.dst, dst), (header.src, src), reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_payload_round_trips() {
        assert_eq!(echo_sequence(&echo_payload(17)), Some(17));
        assert_eq!(echo_sequence(b"other"), None);
        assert_eq!(echo_sequence(b"ztrs demo echo x"), None);
    }

    #[test]
    fn icmp_echo_reply_is_built_from_the_request() {
        let alice = (Mac([0x02, 1, 2, 3, 4, 5]), Ipv4Addr::new(10, 147, 17, 10));
        let bob = (Mac([0x02, 6, 7, 8, 9, 10]), Ipv4Addr::new(10, 147, 17, 11));
        let request = icmp_echo_frame(alice, bob, ICMP_ECHO_REQUEST, 7);
        assert_eq!(icmp_echo_of(&request), Some((ICMP_ECHO_REQUEST, 7)));
        let reply = icmp_echo_reply(&request).expect("a request");
        assert_eq!(reply, icmp_echo_frame(bob, alice, ICMP_ECHO_REPLY, 7));
        assert_eq!(icmp_echo_of(&reply), Some((ICMP_ECHO_REPLY, 7)));
        assert_eq!(icmp_echo_reply(&reply), None);
        // Valid checksums sum to zero.
        let (_, _, _, icmp) = icmp_of(&reply).expect("icmp");
        assert_eq!(internet_checksum(icmp), 0);
        assert_eq!(internet_checksum(&reply[14..34]), 0);
        for cut in 0..request.len() {
            assert_eq!(icmp_echo_reply(&request[..cut]), None);
        }
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(vec![ms(4), ms(1), ms(2), ms(3)]),
            Some(ms(2) + ms(1) / 2)
        );
    }
}
