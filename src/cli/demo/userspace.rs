//! The default demo: an in-process [`Lab`] on 127.0.0.1 (a root that relays and runs the
//! controller, members alice and bob on user-space TCP/IP stacks), played as a story with
//! a deadline on every wait:
//! 1. identities and the private planet; both members come online;
//! 2. first contact alice -> bob relayed by the root, then the direct path (RENDEZVOUS);
//! 3. the private network "demo": refused (ACCESS_DENIED) until the controller authorizes
//!    the members, then configured with managed IPv4 and IPv6 addresses;
//! 4. TCP: a bulk transfer to `<bob>.zt` checked with SHA-256, then 64-byte round trips;
//! 5. the summary ([`Summary`]) and a bounded shutdown.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::time::timeout;

use super::DemoArgs;
use super::report::{MemberTimes, Summary};
use super::traffic;
use crate::crypto::Identity;
use crate::lab::{Authorize, Lab, LabMember, LabOptions, Milestones};

/// Bound on starting the services and joining.
const START_BOUND: Duration = Duration::from_secs(10);
/// Bound on both members reaching the root.
const ONLINE_BOUND: Duration = Duration::from_secs(15);
/// Bound on the first message reaching bob through the root.
const FIRST_CONTACT_BOUND: Duration = Duration::from_secs(15);
/// Bound on both direct paths after the first contact.
const DIRECT_PATH_BOUND: Duration = Duration::from_secs(15);
/// Bound on the controller refusing both members.
const DENIED_BOUND: Duration = Duration::from_secs(10);
/// Bound on a member being configured after its authorization.
const CONFIGURE_BOUND: Duration = Duration::from_secs(20);
/// Bound on stopping the three services (each has its own 5 s bound).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);
/// A message that got no answer within this is sent again.
const RETRY: Duration = Duration::from_millis(250);
/// USER_MESSAGE type of the demo's messages (types up to 65535 are reserved).
const MESSAGE_TYPE: u64 = 0x7a74_7273_6465_6d6f;
/// Seed of the data sent when `--seed` is not given.
const DEFAULT_SEED: u64 = 0x7a74_7273;
const NAMES: [&str; 3] = ["root", "alice", "bob"];

/// Narrative lines: on stdout, or stderr with `--json` (stdout is the JSON object), none
/// with `--quiet`.
struct Narrator {
    quiet: bool,
    json: bool,
}

impl Narrator {
    fn say(&self, line: &str) {
        match (self.quiet, self.json) {
            (true, _) => {}
            (false, true) => eprintln!("{line}"),
            (false, false) => println!("{line}"),
        }
    }
}

pub(super) fn run(args: &DemoArgs) -> Result<(), String> {
    let narrator = Narrator {
        quiet: args.quiet,
        json: args.json,
    };
    narrator.say("ztrs demo: a private ZeroTier network on 127.0.0.1 (no privileges, no internet)");
    let mut identities = Vec::with_capacity(NAMES.len());
    let mut generated = Vec::with_capacity(NAMES.len());
    for (i, name) in NAMES.iter().enumerate() {
        let started = Instant::now();
        let identity = Identity::generate();
        let took = started.elapsed();
        narrator.say(&format!(
            "identity {}/3: {name} = {} ({:.2} s of proof of work)",
            i + 1,
            identity.address(),
            took.as_secs_f64()
        ));
        generated.push((*name, identity.address().to_string(), took));
        identities.push(identity);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut summary = runtime.block_on(async {
        let options = LabOptions {
            members: 2,
            network: demo_network(),
            authorize: Authorize::Manual,
            identities,
            rng_seed: args.seed,
            ..LabOptions::default()
        };
        let lab = timeout(START_BOUND, Lab::start(options))
            .await
            .map_err(|_| format!("timed out after {START_BOUND:?} starting the services"))??;
        let outcome = scenario(&lab, args, &narrator).await;
        // Stop everything whatever happened; a failed step is reported before the shutdown.
        let stopping = Instant::now();
        let stopped = match timeout(SHUTDOWN_BOUND, lab.shutdown_checked()).await {
            Ok(stopped) => stopped,
            Err(_) => Err(format!(
                "timed out after {SHUTDOWN_BOUND:?} stopping the services"
            )),
        };
        let mut summary = outcome?;
        stopped?;
        summary.shutdown = stopping.elapsed();
        Ok::<_, String>(summary)
    })?;
    summary.identities = generated;
    if args.json {
        println!("{}", summary.json());
    } else {
        if !args.quiet {
            println!();
        }
        print!("{}", summary.table());
    }
    if summary.digest_match() {
        Ok(())
    } else {
        Err("TCP alice -> bob: the SHA-256 of what bob received differs from what was sent".into())
    }
}

/// The private network the controller creates: managed IPv4 from a pool, RFC 4193 IPv6.
fn demo_network() -> serde_json::Value {
    json!({
        "name": "demo",
        "private": true,
        "enableBroadcast": true,
        "v4AssignMode": {"zt": true},
        "v6AssignMode": {"rfc4193": true},
        "ipAssignmentPools": [{"ipRangeStart": "10.147.17.10", "ipRangeEnd": "10.147.17.100"}],
        "routes": [{"target": "10.147.17.0/24", "via": null}],
    })
}

fn members(lab: &Lab) -> Result<(&LabMember, &LabMember), String> {
    match lab.members.as_slice() {
        [alice, bob] => Ok((alice, bob)),
        _ => Err("the lab should have two members".into()),
    }
}

fn elapsed(from: Option<Instant>, to: Option<Instant>) -> Duration {
    match (from, to) {
        (Some(from), Some(to)) => to.saturating_duration_since(from),
        _ => Duration::ZERO,
    }
}

/// Steps 1-4; the summary without identities and shutdown time.
async fn scenario(lab: &Lab, args: &DemoArgs, narrator: &Narrator) -> Result<Summary, String> {
    let (alice, bob) = members(lab)?;
    let (alice_address, bob_address) = (alice.handle.address(), bob.handle.address());
    narrator.say(&format!(
        "root {} at {} relays and runs the controller; private planet, nothing else",
        lab.root.address(),
        lab.root.local_addr()
    ));
    for (name, member) in [("alice", alice), ("bob", bob)] {
        let at = member
            .wait_for(&format!("{name} to come online"), ONLINE_BOUND, |m| {
                m.online.is_some()
            })
            .await?;
        narrator.say(&format!(
            "{name} online after {:.1} ms",
            ms(elapsed(Some(at.started), at.online))
        ));
    }

    // Step 2: messages until bob has one (relayed: no direct path exists yet), then until
    // both know the direct path the root's RENDEZVOUS told them about.
    let relayed_before = lab.relayed_by_root().await?;
    let first_sent = Instant::now();
    let delivered = repeat_until(
        alice,
        bob,
        "bob to receive alice's first message (relayed by the root)",
        FIRST_CONTACT_BOUND,
        |m| m.user_messages > 0,
    )
    .await?;
    let delivered = bob.milestones().first_user_message.unwrap_or(delivered);
    let first_contact = delivered.saturating_duration_since(first_sent);
    repeat_until(
        alice,
        bob,
        "a direct path alice <-> bob after RENDEZVOUS",
        DIRECT_PATH_BOUND,
        |_| {
            alice.milestones().direct_path_to(bob_address).is_some()
                && bob.milestones().direct_path_to(alice_address).is_some()
        },
    )
    .await?;
    let direct = [
        alice.milestones().direct_path_to(bob_address),
        bob.milestones().direct_path_to(alice_address),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(first_sent);
    let relayed_first_contact = lab.relayed_by_root().await?.saturating_sub(relayed_before);
    if relayed_first_contact == 0 {
        return Err("first contact: the root relayed nothing".into());
    }
    let direct_path = direct.saturating_duration_since(first_sent);
    narrator.say(&format!(
        "first contact alice -> bob relayed by the root in {:.1} ms; direct path after {:.1} ms",
        ms(first_contact),
        ms(direct_path)
    ));

    // Step 3: refused, authorized, configured.
    let mut times = Vec::with_capacity(2);
    for (name, member) in [("alice", alice), ("bob", bob)] {
        let what = format!("the controller to refuse {name} (ACCESS_DENIED)");
        let refused = member
            .wait_for(&what, DENIED_BOUND, |m| m.denied.is_some())
            .await?;
        narrator.say(&format!(
            "{name} joined {} and was refused (ACCESS_DENIED) after {:.1} ms",
            lab.nwid,
            ms(elapsed(refused.joined, refused.denied))
        ));
    }
    // Both at once: see `Lab::authorize` on revocations of members still refused.
    let authorized = Instant::now();
    lab.authorize(&[0, 1]).await?;
    for (name, member) in [("alice", alice), ("bob", bob)] {
        let what = format!("{name} to be configured after authorization");
        let done = member
            .wait_for(&what, CONFIGURE_BOUND, |m| m.configured.is_some())
            .await?;
        member
            .wait_for_addresses(CONFIGURE_BOUND)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let mut addresses: Vec<String> = member
            .netstack
            .addresses()
            .into_iter()
            .map(|(_, ip, bits)| format!("{ip}/{bits}"))
            .collect();
        addresses.sort();
        let configured = elapsed(done.joined, done.configured);
        narrator.say(&format!(
            "the controller authorized {name}: configured {:.1} ms after joining, {}",
            ms(configured),
            addresses.join(" ")
        ));
        times.push(MemberTimes {
            name,
            address: member.handle.address().to_string(),
            online: elapsed(Some(done.started), done.online),
            denied: elapsed(done.joined, done.denied),
            configured,
            authorized_to_configured: elapsed(Some(authorized), done.configured),
            addresses,
        });
    }

    // Step 4: TCP over the user-space stacks, by name.
    traffic::serve(traffic::listen(&bob.netstack)?);
    let name = format!("{bob_address}.zt");
    let relayed_before = lab.relayed_by_root().await?;
    let datagrams_before = alice.handle.stats().datagrams_sent;
    narrator.say(&format!(
        "bob listens; alice resolves {name} (bob) to {} and sends {} bytes",
        alice
            .netstack
            .resolve(&name)
            .map(|ips| ips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_else(|e| e.to_string()),
        args.bytes
    ));
    let seed = args.seed.unwrap_or(DEFAULT_SEED);
    let transfer = traffic::transfer(&alice.netstack, &name, args.bytes, seed, args.quiet).await?;
    let round_trips = traffic::ping_pong(&alice.netstack, &name).await?;
    let relayed_during_tcp = lab.relayed_by_root().await?.saturating_sub(relayed_before);
    let datagrams_during_tcp = alice
        .handle
        .stats()
        .datagrams_sent
        .saturating_sub(datagrams_before);
    Ok(Summary {
        identities: Vec::new(),
        network: lab.nwid.to_string(),
        members: times,
        first_contact,
        relayed_first_contact,
        direct_path,
        transfer,
        relayed_during_tcp,
        datagrams_during_tcp,
        round_trips,
        shutdown: Duration::ZERO,
    })
}

/// Sends alice -> bob USER_MESSAGEs, one per [`RETRY`], until `reached` holds for bob's
/// milestones; when it did. Sends can be refused while bob is being looked up: that is a
/// loss like any other, and the next attempt follows.
async fn repeat_until(
    alice: &LabMember,
    bob: &LabMember,
    what: &str,
    bound: Duration,
    mut reached: impl FnMut(&Milestones) -> bool,
) -> Result<Instant, String> {
    let deadline = Instant::now() + bound;
    let bob_address = bob.handle.address();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let text = format!("hello bob ({attempt})").into_bytes();
        let _ = alice
            .handle
            .send_user_message(bob_address, MESSAGE_TYPE, text)
            .await;
        let wait = RETRY.min(deadline.saturating_duration_since(Instant::now()));
        if bob.wait_for(what, wait, &mut reached).await.is_ok() {
            return Ok(Instant::now());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {bound:?} waiting for {what}"));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
