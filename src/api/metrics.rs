//! `GET /metrics`: Prometheus text. The reference's metric names where we hold the value
//! (`zt_num_networks`, `zt_network_multicast_groups_subscribed`, `zt_peer_path_count`,
//! `controller_network_count`, `controller_member_count`), then our own as `ztrs_*`: peer
//! latency as a gauge, and every counter of `/ztrs/counters` (one family per section, the
//! counter's name as the `counter` label), plus the controller's request counters.
//! Accepted with the API token or with `metricstoken.secret` (see `routes`).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;
use super::prometheus::{self, Exposition, Kind, Sample};
use super::routes::App;
use super::status::counters_json;
use crate::controller::{Controller, ControllerCounters};
use crate::node::{Node, PeerInfo};

/// The `/ztrs/counters` sections that hold only counters, with their help text.
const COUNTER_SECTIONS: [(&str, &str); 5] = [
    ("node", "node counters (drops by reason, reassembly)"),
    ("frames", "virtual Ethernet layer counters"),
    (
        "networks",
        "network config counters (requests, chunks, answers)",
    ),
    ("service", "UDP driver counters"),
    ("api", "control API counters"),
];

/// What the driver task hands out for the metrics (besides the counters).
struct NodeLook {
    /// `(network id, multicast groups subscribed)`.
    networks: Vec<(String, usize)>,
    peers: Vec<PeerInfo>,
    controller: Option<ControllerLook>,
}

struct ControllerLook {
    networks: usize,
    members: usize,
    counters: ControllerCounters,
}

fn look(node: &Node) -> NodeLook {
    NodeLook {
        networks: node
            .networks()
            .map(|info| {
                let groups = node.multicast_groups(info.nwid).len();
                (info.nwid.to_string(), groups)
            })
            .collect(),
        peers: node.peers().collect(),
        controller: node.controller().map(controller_look),
    }
}

/// Network and member counts; a store that cannot be read counts what it could read.
fn controller_look(controller: &Controller) -> ControllerLook {
    let ids = controller.list_networks().unwrap_or_default();
    let members = ids
        .iter()
        .map(|nwid| controller.list_members(*nwid).map_or(0, |m| m.len()))
        .sum();
    ControllerLook {
        networks: ids.len(),
        members,
        counters: controller.counters(),
    }
}

fn count(value: usize) -> f64 {
    // Counts of objects in memory: far below 2^53, so exact.
    value as f64
}

pub(crate) async fn metrics(State(app): State<App>) -> Result<Response, ApiError> {
    let node = app.daemon.handle.inspect(look).await?;
    let counters = counters_json(&app).await?;
    let text = render(&node, &counters);
    Ok(([(CONTENT_TYPE, prometheus::CONTENT_TYPE)], text).into_response())
}

fn render(node: &NodeLook, counters: &Value) -> String {
    let mut out = Exposition::default();
    out.family(
        "zt_num_networks",
        Kind::Gauge,
        "number of networks this instance is joined to",
        [(vec![], count(node.networks.len()))],
    );
    out.family(
        "zt_network_multicast_groups_subscribed",
        Kind::Gauge,
        "number of multicast groups networks are subscribed to",
        node.networks
            .iter()
            .map(|(nwid, groups)| (vec![("network_id", nwid.clone())], count(*groups))),
    );
    out.family(
        "zt_peer_path_count",
        Kind::Gauge,
        "number of paths to peer",
        node.peers.iter().flat_map(path_counts),
    );
    out.family(
        "ztrs_peer_latency_ms",
        Kind::Gauge,
        "last measured latency to the peer (ms); peers without a measurement are left out",
        node.peers.iter().filter_map(|peer| {
            let latency = peer.latency_ms?;
            Some((
                vec![("node_id", peer.address.to_string())],
                f64::from(latency),
            ))
        }),
    );
    if let Some(controller) = &node.controller {
        render_controller(&mut out, controller);
    }
    for (section, help) in COUNTER_SECTIONS {
        out.family(
            &format!("ztrs_{section}_total"),
            Kind::Counter,
            help,
            section_samples(counters.get(section), "counter"),
        );
    }
    out.family(
        "ztrs_attachment",
        Kind::Untyped,
        "the network interfaces as a whole (ports open, frames without a port, failures)",
        section_samples(counters.get("attachment"), "key"),
    );
    out.finish()
}

fn path_counts(peer: &PeerInfo) -> [Sample; 2] {
    let alive = peer.paths.iter().filter(|p| p.alive).count();
    let dead = peer.paths.len().saturating_sub(alive);
    let id = peer.address.to_string();
    [
        (
            vec![("node_id", id.clone()), ("status", "alive".into())],
            count(alive),
        ),
        (
            vec![("node_id", id), ("status", "dead".into())],
            count(dead),
        ),
    ]
}

fn render_controller(out: &mut Exposition, controller: &ControllerLook) {
    out.family(
        "controller_network_count",
        Kind::Gauge,
        "number of networks the controller is serving",
        [(vec![], count(controller.networks))],
    );
    out.family(
        "controller_member_count",
        Kind::Gauge,
        "number of network members the controller is serving",
        [(vec![], count(controller.members))],
    );
    let ControllerCounters {
        requests,
        issued,
        rate_limited,
        not_found,
        denied,
        invalid,
    } = controller.counters;
    out.family(
        "ztrs_controller_total",
        Kind::Counter,
        "controller answers to config requests, by outcome",
        [
            ("requests", requests),
            ("issued", issued),
            ("rate_limited", rate_limited),
            ("not_found", not_found),
            ("denied", denied),
            ("invalid", invalid),
        ]
        .map(|(name, value)| (vec![("counter", name.to_string())], value as f64)),
    );
}

/// The numeric leaves of one `/ztrs/counters` section, each labelled with its name.
fn section_samples(section: Option<&Value>, label: &'static str) -> Vec<Sample> {
    section
        .map(prometheus::numeric_leaves)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (vec![(label, name)], value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{PathInfo, PeerRole};
    use crate::wire::Address;
    use serde_json::json;

    fn peer(latency: Option<u32>, alive: &[bool]) -> PeerInfo {
        PeerInfo {
            address: Address::from_u64(0x01_0203_0405),
            protocol_version: 12,
            software_version: None,
            latency_ms: latency,
            role: PeerRole::Leaf,
            paths: alive
                .iter()
                .map(|&alive| PathInfo {
                    local: "0.0.0.0:9993".parse().unwrap(),
                    remote: "192.0.2.1:9993".parse().unwrap(),
                    last_receive: 0,
                    latency_ms: None,
                    alive,
                    preferred: false,
                })
                .collect(),
        }
    }

    #[test]
    fn values_land_in_their_families() {
        let node = NodeLook {
            networks: vec![("8056c2e21c000001".into(), 3)],
            peers: vec![peer(Some(12), &[true, false, true]), peer(None, &[])],
            controller: Some(ControllerLook {
                networks: 2,
                members: 5,
                counters: ControllerCounters {
                    denied: 4,
                    ..ControllerCounters::default()
                },
            }),
        };
        let counters = json!({
            "node": {"bad_mac": 7}, "frames": {}, "networks": {"configs_accepted": 1},
            "service": {"datagrams_sent": 9}, "api": {"requests": 2},
            "attachment": {"ports": 1, "framesWithoutPort": 0},
        });
        let text = render(&node, &counters);
        for line in [
            "zt_num_networks 1",
            "zt_network_multicast_groups_subscribed{network_id=\"8056c2e21c000001\"} 3",
            "zt_peer_path_count{node_id=\"0102030405\",status=\"alive\"} 2",
            "zt_peer_path_count{node_id=\"0102030405\",status=\"dead\"} 1",
            "ztrs_peer_latency_ms{node_id=\"0102030405\"} 12",
            "controller_network_count 2",
            "controller_member_count 5",
            "ztrs_controller_total{counter=\"denied\"} 4",
            "ztrs_node_total{counter=\"bad_mac\"} 7",
            "ztrs_service_total{counter=\"datagrams_sent\"} 9",
            "ztrs_attachment{key=\"ports\"} 1",
            "# TYPE ztrs_node_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // An empty section writes no header.
        assert!(!text.contains("ztrs_frames_total"));
        assert_eq!(text.matches("ztrs_peer_latency_ms{").count(), 1);
    }
}
