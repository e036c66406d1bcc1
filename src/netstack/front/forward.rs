//! Port forwards in the manner of `ssh -L` / `ssh -R`: the [`ForwardSpec`] syntax and the
//! two loops. A local forward listens on the host and dials through the network's
//! [`Dialer`]; a remote forward accepts on the network through an [`Acceptor`] and connects
//! with the host's own sockets.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::address::{self, AddressError};
use super::{Acceptor, Dialer, FrontCounters, FrontLimits, Target, accept, bump, relay};

/// A forward: where connections are accepted and where they are carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardSpec {
    /// `-L`: accept on the host at `bind`, dial `target` on the network.
    Local { bind: SocketAddr, target: Target },
    /// `-R`: accept on the network at `listen` (an unspecified IP meaning every managed
    /// address), connect to `target` from the host.
    Remote { listen: SocketAddr, target: Target },
}

/// A forward spec that does not parse, with the problem named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardSpecError {
    pub spec: String,
    pub problem: String,
}

impl fmt::Display for ForwardSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid forward {:?}: {}", self.spec, self.problem)
    }
}

impl std::error::Error for ForwardSpecError {}

impl ForwardSpec {
    /// `-L` syntax: `[bind_addr:]local_port:host:port`; the bind address defaults to
    /// 127.0.0.1 and may be an IP (IPv6 in brackets), `localhost`, or `*` / empty for every
    /// interface. Example: `[::1]:8080:[fd00::1]:80`.
    pub fn parse_local(spec: &str) -> Result<Self, ForwardSpecError> {
        let (listen, target) = parse_fields(spec, BindKind::Host)?;
        Ok(Self::Local {
            bind: listen,
            target,
        })
    }

    /// `-R` syntax: `[zt_bind_addr:]zt_port:host:port`; the network-side address defaults
    /// to 0.0.0.0 (every managed address) and may be an IP or `*` / empty.
    pub fn parse_remote(spec: &str) -> Result<Self, ForwardSpecError> {
        let (listen, target) = parse_fields(spec, BindKind::Network)?;
        Ok(Self::Remote { listen, target })
    }

    pub fn target(&self) -> &Target {
        match self {
            Self::Local { target, .. } | Self::Remote { target, .. } => target,
        }
    }
}

impl FromStr for ForwardSpec {
    type Err = ForwardSpecError;

    /// `L:<-L spec>` or `R:<-R spec>`: the form [`ForwardSpec`]'s `Display` writes, for
    /// configuration files and logs.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(spec) = text.strip_prefix("L:") {
            Self::parse_local(spec)
        } else if let Some(spec) = text.strip_prefix("R:") {
            Self::parse_remote(spec)
        } else {
            Err(spec_error(
                text,
                "expected L:<local forward> or R:<remote forward>",
            ))
        }
    }
}

impl fmt::Display for ForwardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { bind, target } => write!(f, "L:{bind}:{target}"),
            Self::Remote { listen, target } => write!(f, "R:{listen}:{target}"),
        }
    }
}

/// Which side the accepting address is on (they accept different words).
#[derive(Clone, Copy)]
enum BindKind {
    Host,
    Network,
}

fn parse_fields(spec: &str, kind: BindKind) -> Result<(SocketAddr, Target), ForwardSpecError> {
    let fields = split_fields(spec).map_err(|problem| spec_error(spec, &problem))?;
    let (bind, port, host, host_port) = match fields.as_slice() {
        [port, host, host_port] => (None, *port, *host, *host_port),
        [bind, port, host, host_port] => (Some(*bind), *port, *host, *host_port),
        _ => {
            let shape = match kind {
                BindKind::Host => "[bind_address:]port:host:hostport",
                BindKind::Network => "[network_address:]port:host:hostport",
            };
            let problem = format!(
                "expected {shape} (IPv6 addresses in brackets), found {} ':'-separated fields",
                fields.len()
            );
            return Err(spec_error(spec, &problem));
        }
    };
    let bind_ip = parse_bind(bind, kind).map_err(|problem| spec_error(spec, &problem))?;
    let listen_port =
        address::parse_port(port).map_err(|error| address_error(spec, "listening port", &error))?;
    let target_port = address::parse_port(host_port)
        .map_err(|error| address_error(spec, "target port", &error))?;
    let target = Target::from_host(host, target_port)
        .map_err(|error| address_error(spec, "target host", &error))?;
    Ok((SocketAddr::new(bind_ip, listen_port), target))
}

/// Splits on ':' outside brackets, so `[fd00::1]` stays one field.
fn split_fields(spec: &str) -> Result<Vec<&str>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut in_brackets = false;
    for (at, c) in spec.char_indices() {
        match c {
            '[' if !in_brackets => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            ':' if !in_brackets => {
                fields.push(spec.get(start..at).unwrap_or_default());
                start = at + 1;
            }
            _ => {}
        }
    }
    if in_brackets {
        return Err("unclosed '['".to_owned());
    }
    fields.push(spec.get(start..).unwrap_or_default());
    Ok(fields)
}

fn parse_bind(bind: Option<&str>, kind: BindKind) -> Result<IpAddr, String> {
    let every_address = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let Some(text) = bind else {
        return Ok(match kind {
            BindKind::Host => IpAddr::V4(Ipv4Addr::LOCALHOST),
            BindKind::Network => every_address,
        });
    };
    if text.is_empty() || text == "*" {
        return Ok(every_address);
    }
    if matches!(kind, BindKind::Host) && text.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if let Some(inner) = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return inner
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("bind address {text}: only IPv6 addresses go in brackets"));
    }
    text.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| match kind {
            BindKind::Host => {
                format!("bind address {text:?} must be an IP address, localhost or '*'")
            }
            BindKind::Network => format!("network address {text:?} must be an IP address or '*'"),
        })
}

fn spec_error(spec: &str, problem: &str) -> ForwardSpecError {
    ForwardSpecError {
        spec: spec.to_owned(),
        problem: problem.to_owned(),
    }
}

fn address_error(spec: &str, what: &str, error: &AddressError) -> ForwardSpecError {
    spec_error(spec, &format!("{what}: {error}"))
}

/// Runs a `-L` forward: each connection accepted on `listener` (on the host) is dialed to
/// `target` through `dialer` and relayed. Returns only when the listener fails fatally.
pub async fn run_local_forward<D: Dialer>(
    listener: TcpListener,
    dialer: Arc<D>,
    target: Target,
    limits: FrontLimits,
    counters: Arc<FrontCounters>,
) -> io::Result<()> {
    let target = Arc::new(target);
    let connect_timeout = limits.connect_timeout;
    accept::serve_connections(listener, &limits, &counters, |client, _peer| {
        let dialer = Arc::clone(&dialer);
        let target = Arc::clone(&target);
        let counters = Arc::clone(&counters);
        async move {
            let dialed = timeout(connect_timeout, dialer.connect(&target)).await;
            if let Some(stream) = dial_outcome(dialed, &target, &counters) {
                let _ = relay::relay(client, stream, &[], &counters).await;
            }
        }
    })
    .await
}

/// Runs a `-R` forward: each connection `acceptor` takes on the network side is connected to
/// `target` with the host's sockets and relayed. Returns only when the acceptor fails.
pub async fn run_remote_forward<A: Acceptor>(
    acceptor: A,
    target: Target,
    limits: FrontLimits,
    counters: Arc<FrontCounters>,
) -> io::Result<()> {
    let target = Arc::new(target);
    let connect_timeout = limits.connect_timeout;
    accept::serve_connections(acceptor, &limits, &counters, |peer_stream, _peer| {
        let target = Arc::clone(&target);
        let counters = Arc::clone(&counters);
        async move {
            let dialed = connect_from_host(&target, connect_timeout).await;
            if let Some(stream) = dial_outcome(dialed, &target, &counters) {
                let _ = relay::relay(peer_stream, stream, &[], &counters).await;
            }
        }
    })
    .await
}

/// Connects with the host's sockets, names resolved by the host's resolver.
async fn connect_from_host(
    target: &Target,
    limit: Duration,
) -> Result<io::Result<TcpStream>, tokio::time::error::Elapsed> {
    timeout(limit, async {
        let candidates: Vec<SocketAddr> = match target {
            Target::Addr(addr) => vec![*addr],
            Target::Name(host, port) => tokio::net::lookup_host((host.as_str(), *port))
                .await?
                .collect(),
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "name resolved to nothing");
        for candidate in candidates {
            match TcpStream::connect(candidate).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    })
    .await
}

/// Counts a failed or timed-out dial; the caller then drops the accepted connection, which
/// is how a forward tells its client the target is unreachable.
fn dial_outcome<S>(
    dialed: Result<io::Result<S>, tokio::time::error::Elapsed>,
    target: &Target,
    counters: &FrontCounters,
) -> Option<S> {
    match dialed {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%target, %error, "forward could not reach its target");
            bump(&counters.connect_failures);
            None
        }
        Err(_elapsed) => {
            bump(&counters.connect_timeouts);
            None
        }
    }
}
