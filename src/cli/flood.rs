//! `ztrs flood` (hidden): sends hostile traffic (see [`crate::flood`]) at one node for a
//! while and prints how many datagrams of each kind it sent. For hardening checks against a
//! node you run; it needs the target's public identity to address and authenticate packets.
//!
//! `ztrs flood --target 127.0.0.1:9993 --target-identity @home/identity.public \
//!   --rate 5000 --kinds random,bad-mac --seconds 10`

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::files::read_bounded;
use crate::crypto::Identity;
use crate::flood::{Flood, Kind, Target};
use crate::wire::{Address, NetworkId};

/// Identity files are ~270 bytes; anything far larger is not one.
const IDENTITY_FILE_CAP: u64 = 64 * 1024;
/// Longest flood one command runs.
const MAX_SECONDS: u64 = 24 * 3600;

/// Arguments of `ztrs flood`.
#[derive(Debug, clap::Args)]
pub(crate) struct FloodArgs {
    /// The node's UDP endpoint.
    #[arg(long)]
    target: SocketAddr,
    /// The node's public identity (`addr:0:public`), or `@file` to read it from a file.
    #[arg(long = "target-identity")]
    identity: String,
    /// Datagrams per second, all kinds together.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Comma-separated kinds (`all` = every kind).
    #[arg(long, default_value = "all")]
    kinds: String,
    /// How long to flood.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Addresses the target knows (claimed as sources by bad-mac and spoofed); repeatable.
    #[arg(long = "known-peer")]
    known_peers: Vec<Address>,
    /// A network the target belongs to (NETWORK_CONFIG chunks name it).
    #[arg(long)]
    network: Option<NetworkId>,
    /// The target relays for others (a root).
    #[arg(long)]
    relays: bool,
}

/// Runs `ztrs flood`.
pub(crate) fn run(args: FloodArgs) -> ExitCode {
    match flood(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ztrs flood: {message}");
            ExitCode::FAILURE
        }
    }
}

fn flood(args: FloodArgs) -> Result<(), String> {
    let kinds = Kind::parse_list(&args.kinds)?;
    if args.rate == 0 || args.seconds == 0 || args.seconds > MAX_SECONDS {
        return Err(format!(
            "--rate must be above 0 and --seconds within 1..={MAX_SECONDS}"
        ));
    }
    let identity = read_identity(&args.identity)?;
    let mut target = Target::new(args.target, identity);
    target.known_peers = args.known_peers;
    target.network = args.network;
    target.relays = args.relays;
    let mut flood = Flood::new(kinds.clone(), args.rate, vec![target])
        .map_err(|e| format!("cannot open the flood's sockets: {e}"))?;
    flood.run_until(&AtomicBool::new(false), Duration::from_secs(args.seconds));
    let report = flood.report();
    for kind in kinds {
        println!("{kind} {}", report.sent_of(kind));
    }
    println!("total {}", report.total());
    println!("send_errors {}", report.send_errors);
    println!("replies {}", report.replies);
    Ok(())
}

fn read_identity(arg: &str) -> Result<Identity, String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => {
            let bytes = read_bounded(Path::new(path), IDENTITY_FILE_CAP)
                .map_err(|e| format!("cannot read {path}: {e}"))?;
            String::from_utf8(bytes).map_err(|_| format!("{path} is not text"))?
        }
        None => arg.to_owned(),
    };
    text.trim()
        .parse()
        .map_err(|e| format!("not a public identity: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_argument_forms() {
        assert!(read_identity("not an identity").is_err());
        assert!(read_identity("@/nonexistent/identity.public").is_err());
    }
}
