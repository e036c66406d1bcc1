//! What the user-space demo measured ([`Summary`]) and its two renderings: the
//! `measurement | value | detail` table and the `--json` object (field names are part of
//! the interface: `tests/demo_cli.rs` and scripts read them).

use std::time::Duration;

use serde_json::{Value, json};

use super::traffic::{PINGS, RoundTrips, Transfer};
use super::ui::{Table, format_bytes, format_duration, format_rate};

/// One member's timings on the private network, each from the member's join.
pub(super) struct MemberTimes {
    pub name: &'static str,
    pub address: String,
    /// Service start -> online (a root answered).
    pub online: Duration,
    /// Join -> refused by the controller (ACCESS_DENIED).
    pub denied: Duration,
    /// Join -> first config accepted.
    pub configured: Duration,
    /// Authorization -> first config accepted.
    pub authorized_to_configured: Duration,
    /// Managed addresses, `ip/bits`.
    pub addresses: Vec<String>,
}

/// Everything the summary shows.
pub(super) struct Summary {
    /// (name, address, generation time), root first.
    pub identities: Vec<(&'static str, String, Duration)>,
    pub network: String,
    pub members: Vec<MemberTimes>,
    /// First USER_MESSAGE alice -> bob sent -> received.
    pub first_contact: Duration,
    /// Packets the root relayed until both direct paths existed.
    pub relayed_first_contact: u64,
    /// First message sent -> both direct paths learned.
    pub direct_path: Duration,
    pub transfer: Transfer,
    /// Packets the root relayed during the TCP traffic (0 when it all went direct).
    pub relayed_during_tcp: u64,
    /// UDP datagrams alice's service sent during the TCP traffic.
    pub datagrams_during_tcp: u64,
    pub round_trips: RoundTrips,
    pub shutdown: Duration,
}

fn packets(n: u64) -> String {
    if n == 1 {
        "1 packet".to_owned()
    } else {
        format!("{n} packets")
    }
}

impl Summary {
    pub(super) fn digest_match(&self) -> bool {
        self.transfer.sent_digest == self.transfer.received_digest
    }

    pub(super) fn table(&self) -> String {
        let mut table = Table::new(&["measurement", "value", "detail"]);
        let total: Duration = self.identities.iter().map(|(_, _, d)| *d).sum();
        let named: Vec<String> = self
            .identities
            .iter()
            .map(|(name, address, _)| format!("{name} {address}"))
            .collect();
        table.row(vec![
            "identities (proof of work)".into(),
            format_duration(total),
            named.join(", "),
        ]);
        for member in &self.members {
            table.row(vec![
                format!("start -> online ({})", member.name),
                format_duration(member.online),
                "HELLO answered by the root".into(),
            ]);
        }
        table.row(vec![
            "first contact alice -> bob".into(),
            format_duration(self.first_contact),
            format!(
                "relayed by the root ({})",
                packets(self.relayed_first_contact)
            ),
        ]);
        table.row(vec![
            "direct path alice <-> bob".into(),
            format_duration(self.direct_path),
            "after RENDEZVOUS from the root".into(),
        ]);
        for member in &self.members {
            table.row(vec![
                format!("join -> refused ({})", member.name),
                format_duration(member.denied),
                format!("ACCESS_DENIED on private network {}", self.network),
            ]);
        }
        for member in &self.members {
            table.row(vec![
                format!("join -> configured ({})", member.name),
                format_duration(member.configured),
                format!(
                    "{} after authorization: {}",
                    format_duration(member.authorized_to_configured),
                    member.addresses.join(" ")
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
                transfer.peer,
                if self.digest_match() {
                    "match"
                } else {
                    "MISMATCH"
                }
            ),
        ]);
        table.row(vec![
            "relayed during TCP".into(),
            packets(self.relayed_during_tcp),
            format!(
                "{} datagrams from alice went direct",
                self.datagrams_during_tcp
            ),
        ]);
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
        table.row(vec![
            "shutdown".into(),
            format_duration(self.shutdown),
            "3 services stopped cleanly".into(),
        ]);
        table.render()
    }

    pub(super) fn json(&self) -> Value {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let millis = |d: Duration| d.as_secs_f64() * 1e3;
        let members: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|m| {
                let times = json!({
                    "address": m.address,
                    "online_ms": millis(m.online),
                    "denied_ms": millis(m.denied),
                    "configured_ms": millis(m.configured),
                    "authorized_to_configured_ms": millis(m.authorized_to_configured),
                    "addresses": m.addresses,
                });
                (m.name.to_owned(), times)
            })
            .collect();
        let identities: serde_json::Map<String, Value> = self
            .identities
            .iter()
            .map(|(name, address, d)| {
                let identity = json!({"address": address, "generated_ms": millis(*d)});
                ((*name).to_owned(), identity)
            })
            .collect();
        let transfer = &self.transfer;
        #[allow(clippy::cast_precision_loss)]
        let bits_per_second = transfer.bytes as f64 * 8.0 / transfer.elapsed.as_secs_f64();
        json!({
            "identities": identities,
            "network": self.network,
            "members": members,
            "first_contact_ms": millis(self.first_contact),
            "relayed_first_contact": self.relayed_first_contact,
            "direct_path_ms": millis(self.direct_path),
            "tcp": {
                "name": transfer.name,
                "resolved": transfer.resolved.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "peer": transfer.peer.to_string(),
                "bytes": transfer.bytes,
                "seconds": transfer.elapsed.as_secs_f64(),
                "bits_per_second": bits_per_second,
                "sha256_sent": transfer.sent_digest,
                "sha256_received": transfer.received_digest,
                "digest_match": self.digest_match(),
                "relayed_by_root": self.relayed_during_tcp,
                "datagrams_sent_by_alice": self.datagrams_during_tcp,
            },
            "rtt": {
                "pings": PINGS,
                "samples": self.round_trips.samples.len(),
                "median_us": self.round_trips.median().map(micros),
                "p99_us": self.round_trips.p99().map(micros),
            },
            "shutdown_ms": millis(self.shutdown),
        })
    }
}
