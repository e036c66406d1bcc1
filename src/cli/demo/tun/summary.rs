//! What `ztrs demo --tun` measured and its two renderings: the `measurement | value | detail`
//! table (the user-space demo's rows where they apply, plus the TUN interfaces and their
//! packet counts) and the `--json` object, whose field names follow the user-space demo's.

use std::time::Duration;

use serde_json::{Value, json};

use super::network::{Membership, TunPackets};
use super::traffic::Transfer;
use crate::cli::demo::traffic::{PINGS, RoundTrips};
use crate::cli::demo::ui::{Table, format_bytes, format_duration, format_rate};

/// One node's identity: name, address, generation time.
pub(super) struct IdentityTime {
    pub(super) name: &'static str,
    pub(super) address: String,
    pub(super) took: Duration,
}

/// One member on the network, with its TUN counters after the traffic.
pub(super) struct Member {
    pub(super) name: &'static str,
    pub(super) address: String,
    pub(super) membership: Membership,
    pub(super) tun: TunPackets,
}

/// Everything the summary shows.
pub(super) struct Summary {
    /// Prefix of every namespace and interface of the run.
    pub(super) prefix: String,
    pub(super) identities: Vec<IdentityTime>,
    pub(super) network: String,
    /// Alice first, then bob.
    pub(super) members: Vec<Member>,
    pub(super) transfer: Transfer,
    pub(super) round_trips: RoundTrips,
    /// Daemons stopped and namespaces removed, and how long that took.
    pub(super) teardown: (usize, usize, Duration),
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Summary {
    pub(super) fn digest_match(&self) -> bool {
        self.transfer.sent_digest == self.transfer.received_digest
    }

    fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub(super) fn table(&self) -> String {
        let mut table = Table::new(&["measurement", "value", "detail"]);
        let slowest = self.identities.iter().map(|i| i.took).max();
        let named: Vec<String> = self
            .identities
            .iter()
            .map(|i| format!("{} {}", i.name, i.address))
            .collect();
        table.row(vec![
            "identities (proof of work)".into(),
            slowest.map_or_else(|| "-".into(), format_duration),
            format!("in parallel: {}", named.join(", ")),
        ]);
        for m in &self.members {
            table.row(vec![
                format!("join -> refused ({})", m.name),
                format_duration(m.membership.denied_after),
                format!("ACCESS_DENIED on private network {}", self.network),
            ]);
        }
        for m in &self.members {
            table.row(vec![
                format!("join -> configured ({})", m.name),
                format_duration(m.membership.configured_after),
                format!(
                    "{} after authorization by the controller",
                    format_duration(m.membership.authorized_to_configured)
                ),
            ]);
        }
        for m in &self.members {
            table.row(vec![
                format!("TUN interface ({})", m.name),
                m.membership.interface.clone(),
                format!(
                    "mtu {}, {}",
                    m.membership.mtu,
                    m.membership.addresses.join(" ")
                ),
            ]);
        }
        let transfer = &self.transfer;
        table.row(vec![
            "TCP alice -> bob".into(),
            format_rate(transfer.bytes, transfer.elapsed),
            format!(
                "{} to {}, sha256 {}",
                format_bytes(transfer.bytes),
                self.transfer.peer,
                if self.digest_match() {
                    "match"
                } else {
                    "MISMATCH"
                }
            ),
        ]);
        if let (Some(alice), Some(bob)) = (self.member("alice"), self.member("bob")) {
            table.row(vec![
                "TUN packets alice -> bob".into(),
                alice.tun.read.to_string(),
                format!(
                    "read from alice's {}; {} written to bob's",
                    alice.membership.interface, bob.tun.written
                ),
            ]);
        }
        let (median, p99) = (self.round_trips.median(), self.round_trips.p99());
        table.row(vec![
            "TCP RTT alice <-> bob".into(),
            median.map_or_else(|| "-".into(), format_duration),
            format!(
                "median of {}, p99 {}",
                self.round_trips.samples.len(),
                p99.map_or_else(|| "-".into(), format_duration)
            ),
        ]);
        let (daemons, namespaces, took) = self.teardown;
        table.row(vec![
            "teardown".into(),
            format_duration(took),
            format!(
                "{daemons} daemons stopped, {namespaces} namespaces {}-* removed",
                self.prefix
            ),
        ]);
        table.render()
    }

    pub(super) fn json(&self) -> Value {
        let identities: serde_json::Map<String, Value> = self
            .identities
            .iter()
            .map(|i| {
                let identity = json!({"address": i.address, "generated_ms": millis(i.took)});
                (i.name.to_owned(), identity)
            })
            .collect();
        let members: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|m| {
                let joined = &m.membership;
                let member = json!({
                    "address": m.address,
                    "denied_ms": millis(joined.denied_after),
                    "configured_ms": millis(joined.configured_after),
                    "authorized_to_configured_ms": millis(joined.authorized_to_configured),
                    "addresses": joined.addresses,
                    "configured": true,
                    "interface": joined.interface,
                    "mtu": joined.mtu,
                    "ipv4": joined.ipv4.to_string(),
                    "tun_packets_read": m.tun.read,
                    "tun_packets_written": m.tun.written,
                });
                (m.name.to_owned(), member)
            })
            .collect();
        let transfer = &self.transfer;
        let seconds = transfer.elapsed.as_secs_f64();
        // Precision loss above 2^53 bytes is irrelevant for a rate.
        #[allow(clippy::cast_precision_loss)]
        let bits_per_second = if seconds > 0.0 {
            transfer.bytes as f64 * 8.0 / seconds
        } else {
            0.0
        };
        let (daemons, namespaces, took) = self.teardown;
        json!({
            "mode": "tun",
            "prefix": self.prefix,
            "identities": identities,
            "network": self.network,
            "members": members,
            "tcp": {
                "peer": self.transfer.peer.to_string(),
                "bytes": transfer.bytes,
                "seconds": seconds,
                "bits_per_second": bits_per_second,
                "sha256_sent": transfer.sent_digest,
                "sha256_received": transfer.received_digest,
                "digest_match": self.digest_match(),
            },
            "rtt": {
                "pings": PINGS,
                "samples": self.round_trips.samples.len(),
                "median_us": self.round_trips.median().map(micros),
                "p99_us": self.round_trips.p99().map(micros),
            },
            "teardown": {"daemons": daemons, "namespaces": namespaces, "ms": millis(took)},
        })
    }
}
