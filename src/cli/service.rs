//! `ztrs service` (and the binary invoked as `zerotier-one`): runs the daemon from a home
//! directory until SIGINT/SIGTERM. The arguments are the reference daemon's, so existing
//! service files and scripts run it unchanged:
//!
//! ```text
//! zerotier-one [-p<port>] [-U] [home directory]
//! ```
//!
//! `-U` (run without dropping privileges) is accepted; ztrs never drops privileges itself,
//! so it changes nothing. `-d` (fork into the background) is refused with a hint: run under
//! a service manager instead. Logs go to stderr through `tracing` (`RUST_LOG`, default
//! `info`). `ztrs service` also takes `--userspace` and the front ends of user-space mode
//! (`--socks5`, `--http-proxy`, `--proxy-auth`, `-L`, `-R`; `docs/userspace.md`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::error;

use super::root::{init_logging, stop_signal};
use crate::netstack::front::ForwardSpec;
use crate::service::daemon::{self, DaemonOptions};
use crate::service::userspace::UserspaceOptions;

/// The reference's default home on Linux.
pub(crate) const DEFAULT_HOME: &str = "/var/lib/zerotier-one";

/// Arguments of `ztrs service` / `zerotier-one`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServiceArgs {
    /// UDP port (also the control API's TCP port on 127.0.0.1) [default: local.conf
    /// primaryPort, else 9993]
    #[arg(short = 'p')]
    port: Option<u16>,
    /// Accepted for compatibility (run without dropping privileges); ztrs never drops them.
    #[arg(short = 'U')]
    no_privilege_drop: bool,
    /// Refused: run under a service manager (systemd) instead of forking.
    #[arg(short = 'd', hide = true)]
    daemonize: bool,
    /// Do not create TUN interfaces (a root or controller without CAP_NET_ADMIN).
    #[arg(long)]
    no_tun: bool,
    /// Control API port on 127.0.0.1 [default: the UDP port]
    #[arg(long)]
    api_port: Option<u16>,
    /// Accept loopback underlay paths (several nodes on one host without namespaces).
    #[arg(long)]
    allow_loopback: bool,
    /// User-space mode: run joined networks on the built-in TCP/IP stack instead of TUN
    /// interfaces (no privileges needed); reach them with the proxies and forwards below.
    #[arg(long)]
    userspace: bool,
    /// SOCKS5 proxy into the networks on this host address (implies --userspace)
    #[arg(long, value_name = "ADDR:PORT")]
    socks5: Option<SocketAddr>,
    /// HTTP proxy (CONNECT and plain requests) on this host address (implies --userspace)
    #[arg(long, value_name = "ADDR:PORT")]
    http_proxy: Option<SocketAddr>,
    /// Require USER:PASSWORD on both proxies (or set ZTRS_PROXY_AUTH to keep it off the
    /// command line)
    #[arg(long, value_name = "USER:PASSWORD")]
    proxy_auth: Option<String>,
    /// Forward a host port into a network: [bind_addr:]port:host:port (implies --userspace)
    #[arg(short = 'L', value_name = "SPEC", value_parser = parse_local_forward)]
    local_forward: Vec<ForwardSpec>,
    /// Publish a host service on the networks: [zt_addr:]port:host:port (implies --userspace)
    #[arg(short = 'R', value_name = "SPEC", value_parser = parse_remote_forward)]
    remote_forward: Vec<ForwardSpec>,
    /// Home directory
    #[arg(default_value = DEFAULT_HOME)]
    home: PathBuf,
}

/// Runs the daemon. Exit status 0 after a clean stop, 1 on any failure.
pub(crate) fn run(args: ServiceArgs) -> ExitCode {
    init_logging();
    if args.daemonize {
        error!(
            "-d (fork into the background) is not supported: run ztrs under systemd or another service manager"
        );
        return ExitCode::FAILURE;
    }
    let _ = args.no_privilege_drop;
    let userspace = match userspace_options(&args) {
        Ok(userspace) => userspace,
        Err(message) => {
            error!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let options = DaemonOptions {
        home: args.home,
        port: args.port,
        tun: !args.no_tun,
        api_port: args.api_port,
        allow_loopback_paths: args.allow_loopback,
        userspace,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(%err, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    // The signal handlers need the runtime; they are installed before anything starts.
    let result = runtime.block_on(async {
        let stop = stop_signal();
        daemon::run(options, stop).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_local_forward(spec: &str) -> Result<ForwardSpec, String> {
    ForwardSpec::parse_local(spec).map_err(|e| e.to_string())
}

fn parse_remote_forward(spec: &str) -> Result<ForwardSpec, String> {
    ForwardSpec::parse_remote(spec).map_err(|e| e.to_string())
}

/// The user-space front ends asked for, if any (any of them implies user-space mode).
fn userspace_options(args: &ServiceArgs) -> Result<Option<UserspaceOptions>, String> {
    let wanted = args.userspace
        || args.socks5.is_some()
        || args.http_proxy.is_some()
        || !args.local_forward.is_empty()
        || !args.remote_forward.is_empty();
    if !wanted {
        return Ok(None);
    }
    let auth = match args
        .proxy_auth
        .clone()
        .or_else(|| std::env::var("ZTRS_PROXY_AUTH").ok())
    {
        None => None,
        Some(pair) => {
            let (user, pass) = pair
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
                .ok_or("--proxy-auth / ZTRS_PROXY_AUTH must be USER:PASSWORD")?;
            Some((user.to_owned(), pass.to_owned()))
        }
    };
    Ok(Some(UserspaceOptions {
        socks5: args.socks5,
        http_proxy: args.http_proxy,
        proxy_auth: auth,
        forwards: args
            .local_forward
            .iter()
            .chain(&args.remote_forward)
            .cloned()
            .collect(),
    }))
}

/// `zerotier-one [args]`: the same as `ztrs service [args]`; `-v` prints the version.
pub(crate) fn main_standalone(argv: Vec<OsString>) -> ExitCode {
    if argv.get(1).is_some_and(|a| a == "-v") {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    #[derive(Debug, Parser)]
    #[command(name = "zerotier-one", version, about = "ztrs running as zerotier-one")]
    struct Standalone {
        #[command(flatten)]
        args: ServiceArgs,
    }
    match Standalone::try_parse_from(argv) {
        Ok(parsed) => run(parsed.args),
        Err(err) => super::usage_error(err),
    }
}
