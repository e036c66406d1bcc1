//! The daemon's user-space mode: the front ends that let host programs reach the joined
//! networks through the [`Netstack`] without privileges: a SOCKS5 proxy, an HTTP proxy and
//! `-L` / `-R` port forwards, each a task with its own counters (reported by the control
//! API under the attachment's `fronts`).
//!
//! Host-side listeners are bound before the daemon reports ready, so a port in use fails
//! the start with a message naming it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::netstack::Netstack;
use crate::netstack::front::{
    ForwardSpec, FrontCounters, FrontLimits, HttpProxyConfig, Socks5Config, run_local_forward,
    run_remote_forward, serve_http_proxy, serve_socks5,
};

/// What to run in front of the stacks.
#[derive(Clone, Debug, Default)]
pub struct UserspaceOptions {
    /// SOCKS5 proxy (CONNECT, UDP ASSOCIATE) on this host address.
    pub socks5: Option<SocketAddr>,
    /// HTTP proxy (CONNECT and absolute-form requests) on this host address.
    pub http_proxy: Option<SocketAddr>,
    /// Username and password both proxies require (`None`: no authentication).
    pub proxy_auth: Option<(String, String)>,
    /// `-L` and `-R` forwards.
    pub forwards: Vec<ForwardSpec>,
}

/// The running front ends; dropping it stops them.
pub struct Fronts {
    tasks: JoinSet<()>,
}

impl Fronts {
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

async fn bind_host(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} for the {what}: {e}"))
}

/// Binds every listener, then starts the front ends as tasks.
pub async fn start(netstack: &Netstack, options: &UserspaceOptions) -> Result<Fronts, String> {
    let mut tasks = JoinSet::new();
    let dialer = Arc::new(netstack.clone());
    let limits = FrontLimits::default();
    if let Some(addr) = options.socks5 {
        let listener = bind_host(addr, "SOCKS5 proxy").await?;
        let counters = register(netstack, format!("socks5 {addr}"));
        let config = Socks5Config {
            auth: options.proxy_auth.clone(),
            limits: limits.clone(),
        };
        let dialer = dialer.clone();
        tasks.spawn(ended(
            "SOCKS5 proxy",
            serve_socks5(listener, dialer, config, counters),
        ));
        info!(%addr, "SOCKS5 proxy listening");
    }
    if let Some(addr) = options.http_proxy {
        let listener = bind_host(addr, "HTTP proxy").await?;
        let counters = register(netstack, format!("http {addr}"));
        let config = HttpProxyConfig {
            auth: options.proxy_auth.clone(),
            limits: limits.clone(),
        };
        let dialer = dialer.clone();
        tasks.spawn(ended(
            "HTTP proxy",
            serve_http_proxy(listener, dialer, config, counters),
        ));
        info!(%addr, "HTTP proxy listening");
    }
    for spec in &options.forwards {
        match spec {
            ForwardSpec::Local { bind, target } => {
                let listener = bind_host(*bind, "-L forward").await?;
                let counters = register(netstack, format!("-L {bind} -> {target}"));
                let run = run_local_forward(
                    listener,
                    dialer.clone(),
                    target.clone(),
                    limits.clone(),
                    counters,
                );
                tasks.spawn(ended("-L forward", run));
                info!(%bind, %target, "-L forward listening on the host");
            }
            ForwardSpec::Remote { listen, target } => {
                let listener = netstack
                    .bind_tcp(*listen)
                    .map_err(|e| format!("cannot listen on {listen} on the network for -R: {e}"))?;
                let counters = register(netstack, format!("-R {listen} -> {target}"));
                let run = run_remote_forward(listener, target.clone(), limits.clone(), counters);
                tasks.spawn(ended("-R forward", run));
                info!(%listen, %target, "-R forward listening on the network");
            }
        }
    }
    Ok(Fronts { tasks })
}

fn register(netstack: &Netstack, name: String) -> Arc<FrontCounters> {
    let counters = Arc::new(FrontCounters::default());
    netstack.register_front(name, counters.clone());
    counters
}

async fn ended(what: &'static str, run: impl Future<Output = std::io::Result<()>>) {
    if let Err(err) = run.await {
        warn!(%err, "{what} stopped");
    }
}
