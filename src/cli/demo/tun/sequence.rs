//! The steps of `ztrs demo --tun` in order (identities and planet, underlay, daemons,
//! network, join and authorization, traffic) and the run's outcome: the summary is printed
//! after the teardown, and any failure comes back with the end of the daemons' logs.

use std::time::{Duration, Instant};

use super::lab::{self, Host, Lab};
use super::network;
use super::summary::{IdentityTime, Member, Summary};
use super::traffic::{self, Ends};
use super::wait::{self, Stop};
use crate::cli::demo::DemoArgs;
use crate::cli::demo::traffic::PINGS;
use crate::cli::demo::ui::format_bytes;

/// Runs the demo; `Err` names the step that failed (with the end of the daemons' logs).
pub(super) fn run(args: &DemoArgs) -> Result<(), String> {
    lab::check_privileges()?;
    let (stop, _signals) = wait::watch_signals()?;
    let mut lab = Lab::create()?;
    let outcome = scenario(args, &mut lab, &stop).map_err(|failed| {
        let logs = lab.log_tails();
        if stop.requested() || logs.is_empty() {
            failed
        } else {
            format!("{failed}\n{logs}")
        }
    });
    say(args, &format!("removing namespaces {}-* ...", lab.prefix));
    let started = Instant::now();
    let teardown = lab.teardown();
    let (daemons, namespaces) = lab.created();
    match (outcome, teardown) {
        (Ok(mut summary), teardown) => {
            summary.teardown = (daemons, namespaces, started.elapsed());
            if args.json {
                println!("{}", summary.json());
            } else {
                print!("{}", summary.table());
            }
            teardown?;
            if summary.digest_match() {
                Ok(())
            } else {
                Err("the SHA-256 of what bob received differs from what alice sent".to_owned())
            }
        }
        (Err(failed), Ok(())) => Err(failed),
        (Err(failed), Err(left)) => Err(format!("{failed}\n{left}")),
    }
}

/// A progress line on stderr (stdout carries only the summary), unless `--quiet`.
fn say(args: &DemoArgs, line: &str) {
    if !args.quiet {
        eprintln!("{line}");
    }
}

fn scenario(args: &DemoArgs, lab: &mut Lab, stop: &Stop) -> Result<Summary, String> {
    say(
        args,
        &format!(
            "ztrs demo --tun: a root + controller, alice and bob as `ztrs service` daemons in \
             network namespaces {}-*, kernel TCP over their TUN interfaces",
            lab.prefix
        ),
    );
    say(
        args,
        "generating 3 identities in parallel (memory-hard proof of work) ...",
    );
    let planet_id = 0x7a74_7273_0000_0000 | args.seed.unwrap_or(1) & 0xffff_ffff;
    let hosts = lab.prepare_hosts(planet_id)?;
    stop.check()?;
    let [root, alice, bob] = hosts.as_slice() else {
        return Err("expected three hosts".to_owned());
    };
    for host in [root, alice, bob] {
        say(args, &format!("  {:<5} = {}", host.name, host.address));
    }
    lab.build_underlay(&hosts)?;
    say(
        args,
        &format!(
            "underlay: bridge br0 in {}; root {}, alice {}, bob {} on veth pairs",
            lab.switch, root.underlay_ip, alice.underlay_ip, bob.underlay_ip
        ),
    );
    lab.start_daemon(root, false)?;
    network::wait_online(lab, root, stop)?;
    say(
        args,
        &format!(
            "root + controller up in {} (private planet {planet_id:016x}, UDP {})",
            root.namespace,
            lab::PORT
        ),
    );
    lab.start_daemon(alice, true)?;
    lab.start_daemon(bob, true)?;
    network::wait_online(lab, alice, stop)?;
    network::wait_online(lab, bob, stop)?;
    say(args, "alice and bob are online (reached the root)");
    let nwid = network::create_network(root)?;
    say(
        args,
        &format!("network {nwid} created on the controller: private, 10.147.17.0/24 + RFC 4193"),
    );
    say(
        args,
        "alice and bob join; the controller refuses them until it authorizes them ...",
    );
    let memberships = network::join_and_authorize(lab, root, &[alice, bob], &nwid, stop)?;
    let [alice_joined, bob_joined] = memberships.as_slice() else {
        return Err("expected two memberships".to_owned());
    };
    for (host, joined) in [(alice, alice_joined), (bob, bob_joined)] {
        say(
            args,
            &format!(
                "  {:<5} {} mtu {}, {}",
                host.name,
                joined.interface,
                joined.mtu,
                joined.addresses.join(" ")
            ),
        );
    }
    say(
        args,
        &format!(
            "kernel TCP alice -> bob ({}): {} checked with SHA-256, then {PINGS} ping-pongs",
            bob_joined.ipv4,
            format_bytes(args.bytes)
        ),
    );
    let ends = Ends {
        alice_namespace: &alice.namespace,
        bob_namespace: &bob.namespace,
        bob_ip: bob_joined.ipv4,
    };
    let seed = args.seed.unwrap_or(0);
    let mut daemons_run = || {
        ["root", "alice", "bob"]
            .into_iter()
            .try_for_each(|name| lab.check_daemon(name))
    };
    let (transfer, round_trips) =
        traffic::measure(&ends, args.bytes, seed, args.quiet, stop, &mut daemons_run)?;
    let mut members = Vec::with_capacity(memberships.len());
    for (host, membership) in [alice, bob].into_iter().zip(memberships) {
        members.push(Member {
            name: host.name,
            address: host.address.to_string(),
            tun: network::tun_packets(host, &nwid)?,
            membership,
        });
    }
    Ok(Summary {
        prefix: lab.prefix.clone(),
        identities: hosts.iter().map(identity_time).collect(),
        network: nwid,
        members,
        transfer,
        round_trips,
        teardown: (0, 0, Duration::ZERO),
    })
}

fn identity_time(host: &Host) -> IdentityTime {
    IdentityTime {
        name: host.name,
        address: host.address.to_string(),
        took: host.identity_took,
    }
}
