//! `ztrs root`: runs a planet or moon root from a home directory.
//!
//! The home directory holds `identity.secret` (generated, with `identity.public`, when
//! missing) and by default the world file `planet`; `--world` names another world file
//! (binary, as `ztrs idtool genmoon` writes it). Our identity must be one of that world's
//! roots. For a moon, the node's planet is `<home>/planet` when present, else the built-in
//! one. Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`); SIGINT
//! and SIGTERM stop the root cleanly (bounded shutdown).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::sync::mpsc;
use tracing::{error, info, warn};
use zeroize::Zeroize;
use ztrs_platform::udp::{UdpConfig, UdpUnderlay};

use super::files::{read_bounded, write_file};
use crate::crypto::Identity;
use crate::node::{Event, NodeConfig};
use crate::service::{self, ServiceOptions};
use crate::wire::world::{MAX_SERIALIZED_LEN, World, WorldType};

/// Identity files are ~270 bytes; anything far larger is not one.
const IDENTITY_FILE_CAP: u64 = 64 * 1024;

/// Arguments of `ztrs root`.
#[derive(Debug, clap::Args)]
pub(crate) struct RootArgs {
    /// Home directory (identity.secret is created in it when missing).
    #[arg(long)]
    home: PathBuf,
    /// UDP port to listen on (all addresses, dual-stack when available).
    #[arg(long, default_value_t = 9993)]
    port: u16,
    /// World file (planet or moon) listing this node as a root [default: <home>/planet].
    #[arg(long)]
    world: Option<PathBuf>,
}

/// Runs the root until SIGINT/SIGTERM. Exit status 0 after a clean stop, 1 on any failure.
pub(crate) fn run(args: RootArgs) -> ExitCode {
    init_logging();
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, honouring `RUST_LOG`; a subscriber installed earlier is kept.
pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn execute(args: RootArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.home)
        .map_err(|e| format!("cannot create home {}: {e}", args.home.display()))?;
    let identity = load_or_create_identity(&args.home)?;
    let world_path = match args.world {
        Some(path) => path,
        None => {
            let planet = args.home.join("planet");
            if !planet.exists() {
                return Err(format!(
                    "no world file: pass --world <planet or moon file> or put the planet at {}",
                    planet.display()
                ));
            }
            planet
        }
    };
    let world = load_world(&world_path)?;
    if !world
        .roots
        .iter()
        .any(|root| root.identity.public_key() == identity.public_key())
    {
        return Err(format!(
            "{} is not a root of world {:016x} ({}); add it with `ztrs idtool initmoon` / \
             `genmoon`, or pick the world made for this identity",
            identity.address(),
            world.id,
            world_path.display()
        ));
    }
    let (planet, moons) = match world.world_type {
        WorldType::Planet => (world, Vec::new()),
        WorldType::Moon => {
            let home_planet = args.home.join("planet");
            let planet = if home_planet.exists() && home_planet != world_path {
                load_world(&home_planet)?
            } else {
                World::default_planet()
            };
            (planet, vec![world])
        }
    };
    info!(
        address = %identity.address(),
        planet = format_args!("{:016x}", planet.id),
        moons = moons.len(),
        port = args.port,
        "starting root"
    );
    let config = NodeConfig {
        moons,
        ..NodeConfig::new(identity, planet)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(config, args.port))
}

/// Runs the service until a stop signal (or until the service ends by itself).
async fn serve(config: NodeConfig, port: u16) -> Result<(), String> {
    let stop = stop_signal();
    let socket = UdpUnderlay::open(UdpConfig::wildcard(port))
        .map_err(|e| format!("cannot open UDP port {port}: {e}"))?;
    let (handle, mut events) = service::spawn(config, socket, ServiceOptions::default())
        .map_err(|e| format!("cannot start the service: {e}"))?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            reason = &mut stop => {
                info!("{reason}: stopping");
                break;
            }
            event = events.recv() => match event {
                Some(event) => log_event(event),
                None => {
                    warn!("the service ended on its own");
                    break;
                }
            },
        }
    }
    drain_events(&mut events);
    let outcome = handle.shutdown().await;
    let stats = handle.stats();
    info!(?outcome, ?stats, "root stopped");
    if outcome.is_clean() {
        Ok(())
    } else {
        Err(format!("unclean shutdown: {outcome:?}"))
    }
}

/// Logs what events are left without waiting.
fn drain_events(events: &mut mpsc::Receiver<Event>) {
    while let Ok(event) = events.try_recv() {
        log_event(event);
    }
}

fn log_event(event: Event) {
    info!(?event, "node event");
}

/// Resolves on SIGINT or SIGTERM with the signal's name. The handlers are installed when
/// this is called, not when first polled, so a signal arriving while the service starts is
/// not lost to the default action. A handler that cannot be installed is logged and that
/// signal is simply not awaited.
#[cfg(unix)]
pub(super) fn stop_signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let install = |kind: SignalKind, name: &str| -> Option<Signal> {
        signal(kind)
            .inspect_err(|err| warn!(%err, "cannot listen for {name}"))
            .ok()
    };
    let interrupt = install(SignalKind::interrupt(), "SIGINT");
    let terminate = install(SignalKind::terminate(), "SIGTERM");
    async fn next(signal: Option<Signal>, name: &'static str) -> &'static str {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
                name
            }
            None => std::future::pending().await,
        }
    }
    async move {
        tokio::select! {
            name = next(interrupt, "SIGINT") => name,
            name = next(terminate, "SIGTERM") => name,
        }
    }
}

/// Resolves on Ctrl-C (other systems).
#[cfg(not(unix))]
pub(super) fn stop_signal() -> impl std::future::Future<Output = &'static str> {
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(err) => {
                warn!(%err, "cannot listen for Ctrl-C");
                std::future::pending().await
            }
        }
    }
}

/// Reads `<home>/identity.secret`, or generates one (writing `identity.secret` 0600 and
/// `identity.public`) when it does not exist.
fn load_or_create_identity(home: &Path) -> Result<Identity, String> {
    let secret_path = home.join("identity.secret");
    match read_bounded(&secret_path, IDENTITY_FILE_CAP) {
        Ok(mut bytes) => {
            let parsed = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.trim().parse::<Identity>().ok());
            bytes.zeroize();
            let identity =
                parsed.ok_or_else(|| format!("{} is not an identity", secret_path.display()))?;
            if !identity.has_secret() {
                return Err(format!("{} has no secret key", secret_path.display()));
            }
            if !identity.locally_validate() {
                return Err(format!("{} fails its proof of work", secret_path.display()));
            }
            Ok(identity)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            info!("no identity in {}: generating one", home.display());
            let identity = Identity::generate();
            let mut secret = identity.to_secret_string();
            let written = write_file(&secret_path, secret.as_bytes(), true);
            secret.zeroize();
            written.map_err(|e| format!("cannot write {}: {e}", secret_path.display()))?;
            let public_path = home.join("identity.public");
            write_file(&public_path, identity.to_public_string().as_bytes(), false)
                .map_err(|e| format!("cannot write {}: {e}", public_path.display()))?;
            info!(address = %identity.address(), "identity generated");
            Ok(identity)
        }
        Err(err) => Err(format!("cannot read {}: {err}", secret_path.display())),
    }
}

/// Reads and parses a binary world file.
fn load_world(path: &Path) -> Result<World, String> {
    let bytes = read_bounded(path, MAX_SERIALIZED_LEN as u64)
        .map_err(|e| format!("cannot read world file {}: {e}", path.display()))?;
    World::parse(&bytes).map_err(|e| format!("{} is not a usable world: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_and_reloaded() {
        let home = std::env::temp_dir().join(format!("ztrs-root-test-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let created = load_or_create_identity(&home).unwrap();
        assert!(created.has_secret());
        assert!(home.join("identity.public").exists());
        let reloaded = load_or_create_identity(&home).unwrap();
        assert_eq!(reloaded.address(), created.address());
        std::fs::write(home.join("planet"), b"not a world").unwrap();
        assert!(load_world(&home.join("planet")).is_err());
        assert!(load_world(&home.join("missing")).is_err());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
