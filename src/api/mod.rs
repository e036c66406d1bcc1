//! `api`: the local control API, the zerotier-one compatible subset that `zerotier-cli` style
//! tools and controller UIs use (see `docs/api.md`): `/status`, `/network[/{nwid}]` (list,
//! show, join, leave), `/peer[/{address}]`, `/moon[/{id}]` (orbit, deorbit), `/health`,
//! `/metrics`, the controller's `/controller/network/...`, and our `/ztrs/counters`.
//!
//! It listens on 127.0.0.1 (and [::1] when possible), answers only requests that carry the
//! token of `authtoken.secret`, reaches the node only through the [`ServiceHandle`] (so a
//! request never blocks the driver for more than a quick look), and persists joins and
//! leaves in the home. Bounded: 32 connections, 64 KiB bodies, idle connections closed, and
//! [`ApiServer::stop`] ends within a few seconds whatever clients do.
//!
//! Rooms: `routes` (router, token check), `auth` (the token), `status`, `health`,
//! `networks`, `peers`, `moons`, `metrics`, `controller`, `controller_members` (handlers),
//! `network_json`, `counter_maps`, `prometheus` (output shapes), `controller_input` (body
//! checks), `error` (failures as JSON), `listener` (connection bounds), `counters` (the
//! API's own counters).
//!
//! [`ServiceHandle`]: crate::service::ServiceHandle

mod auth;
mod controller;
mod controller_input;
mod controller_members;
mod counter_maps;
mod counters;
mod error;
mod health;
mod listener;
mod metrics;
mod moons;
mod network_json;
mod networks;
mod peers;
mod prometheus;
mod routes;
mod status;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tracing::{info, warn};

use crate::service::daemon::Daemon;
use auth::Token;
use counters::ApiCounters;
use listener::{BoundedListener, IDLE_LIMIT, Limits, MAX_CONNECTIONS, Phase};
use routes::App;

pub use counters::ApiStats;

/// How long requests in progress may take to finish once [`ApiServer::stop`] is called.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long the server tasks get to notice cut connections before they are aborted.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// A running control API; stop it with [`ApiServer::stop`] (dropping it cuts everything at
/// once).
pub struct ApiServer {
    local_addr: SocketAddr,
    phase: watch::Sender<Phase>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<ApiCounters>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("local_addr", &self.local_addr)
            .field("listeners", &self.tasks.len())
            .finish()
    }
}

/// Serves the API of `daemon` on 127.0.0.1:`port` (required) and [::1] on the same port
/// (best effort). Port 0 picks a free port ([`ApiServer::local_addr`] tells which). Creates
/// `authtoken.secret` if the home has none; reads `metricstoken.secret` if it has one.
pub async fn start(daemon: Daemon, port: u16) -> io::Result<ApiServer> {
    let home = daemon.home.clone();
    let (secret, metrics_secret) = tokio::task::spawn_blocking(move || {
        let secret = home.auth_token()?;
        let metrics_secret = home.read("metricstoken.secret")?;
        Ok::<_, crate::store::HomeError>((secret, metrics_secret))
    })
    .await
    .map_err(io::Error::other)?
    .map_err(io::Error::other)?;
    let metrics_token = metrics_secret
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .filter(|text| !text.is_empty())
        .map(|text| Arc::new(Token::new(&text)));
    let ipv4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let local_addr = ipv4.local_addr()?;
    let mut listeners = vec![ipv4];
    match TcpListener::bind((Ipv6Addr::LOCALHOST, local_addr.port())).await {
        Ok(ipv6) => listeners.push(ipv6),
        Err(err) => warn!(%err, port = local_addr.port(), "control API: not listening on [::1]"),
    }

    let counters = Arc::new(ApiCounters::default());
    let (phase, phase_rx) = watch::channel(Phase::Running);
    let limits = Limits {
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        phase: phase_rx,
        counters: Arc::clone(&counters),
        idle_limit: IDLE_LIMIT,
    };
    let router = routes::router(App {
        daemon,
        token: Arc::new(Token::new(&secret)),
        metrics_token,
        counters: Arc::clone(&counters),
    });
    let tasks = listeners
        .into_iter()
        .map(|tcp| {
            let mut draining = limits.phase.clone();
            let serve = axum::serve(BoundedListener::new(tcp, limits.clone()), router.clone())
                .with_graceful_shutdown(async move {
                    // A dropped sender (the server is gone) also ends serving.
                    let _ = draining.wait_for(|p| *p != Phase::Running).await;
                });
            tokio::spawn(async move {
                if let Err(err) = serve.await {
                    warn!(%err, "control API listener ended");
                }
            })
        })
        .collect();
    info!(%local_addr, "control API listening");
    Ok(ApiServer {
        local_addr,
        phase,
        tasks,
        counters,
    })
}

impl ApiServer {
    /// The IPv4 address served (the real port when started with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The API's counters now.
    pub fn stats(&self) -> ApiStats {
        self.counters.snapshot()
    }

    /// Stops serving: no new connections; requests in progress get [`STOP_GRACE`] to
    /// finish, then every connection still open is cut and the listeners are aborted if
    /// they have not ended after [`KILL_GRACE`] more.
    pub async fn stop(mut self) {
        self.phase.send_replace(Phase::Draining);
        let pending = wait_all(std::mem::take(&mut self.tasks), Instant::now() + STOP_GRACE).await;
        if pending.is_empty() {
            info!("control API stopped");
            return;
        }
        self.phase.send_replace(Phase::Killed);
        let stuck = wait_all(pending, Instant::now() + KILL_GRACE).await;
        for task in &stuck {
            task.abort();
        }
        warn!(
            aborted = stuck.len(),
            stats = ?self.counters.snapshot(),
            "control API stopped after cutting connections"
        );
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // After `stop` this cuts connections that outlived it; without `stop`, everything.
        self.phase.send_replace(Phase::Killed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Waits for every task until `deadline`; returns those still running.
async fn wait_all(tasks: Vec<JoinHandle<()>>, deadline: Instant) -> Vec<JoinHandle<()>> {
    let mut pending = Vec::new();
    for mut task in tasks {
        if timeout_at(deadline, &mut task).await.is_err() {
            pending.push(task);
        }
    }
    pending
}
