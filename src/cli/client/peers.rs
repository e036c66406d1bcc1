//! `listpeers` (one `200 listpeers <ztaddr> <path> <latency> <version> <role>` line per
//! peer) and `peers` (the reference's aligned table), both from `GET /peer`. The path shown
//! is the peer's preferred one, with the ms since the last send and receive (-1 when the
//! service does not report them).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::output::{self, OK, Status, json_bool, json_int, json_text};
use super::session::Session;

/// `listpeers`.
pub(crate) fn listpeers(session: &Session) -> Status {
    show_peers(session, "listpeers", format_listpeers)
}

/// `peers`.
pub(crate) fn peers(session: &Session) -> Status {
    show_peers(session, "peers", format_peers)
}

fn show_peers(session: &Session, verb: &str, format: fn(&Value, i64) -> String) -> Status {
    match session.get_json(verb, "/peer") {
        Ok(peers) => {
            if session.json {
                output::out(&format!("{}\n", output::dump(&peers)));
            } else {
                output::out(&format(&peers, unix_ms_now()));
            }
            OK
        }
        Err(code) => code,
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The peer's preferred path: its address and the ms since its last send and receive.
struct PreferredPath {
    address: String,
    since_send: i64,
    since_receive: i64,
}

fn preferred_path(peer: &Value, now: i64) -> Option<PreferredPath> {
    let path = peer
        .get("paths")?
        .as_array()?
        .iter()
        .find(|path| json_bool(path.get("preferred")))?;
    let age = |field: &str| match json_int(path.get(field), 0) {
        0 => -1,
        at => now.saturating_sub(at),
    };
    Some(PreferredPath {
        address: json_text(path.get("address"), "-"),
        since_send: age("lastSend"),
        since_receive: age("lastReceive"),
    })
}

/// `major.minor.rev`, or `-` when the version is not known (major < 0).
fn version(peer: &Value) -> String {
    let major = json_int(peer.get("versionMajor"), -1);
    if major < 0 {
        return "-".to_owned();
    }
    format!(
        "{major}.{}.{}",
        json_int(peer.get("versionMinor"), -1),
        json_int(peer.get("versionRev"), -1)
    )
}

fn peer_list(peers: &Value) -> &[Value] {
    peers.as_array().map_or(&[], Vec::as_slice)
}

/// The `listpeers` text for a `/peer` array.
pub(crate) fn format_listpeers(peers: &Value, now: i64) -> String {
    let mut text = String::from("200 listpeers <ztaddr> <path> <latency> <version> <role>\n");
    for peer in peer_list(peers) {
        let path = preferred_path(peer, now).map_or_else(
            || "-".to_owned(),
            |p| format!("{};{};{}", p.address, p.since_send, p.since_receive),
        );
        text.push_str(&format!(
            "200 listpeers {} {path} {} {} {}\n",
            json_text(peer.get("address"), "-"),
            json_int(peer.get("latency"), 0),
            version(peer),
            json_text(peer.get("role"), "-"),
        ));
    }
    text
}

/// The `peers` table for a `/peer` array.
pub(crate) fn format_peers(peers: &Value, now: i64) -> String {
    let mut text = String::from(
        "200 peers\n<ztaddr>   <ver>  <role> <lat> <link>   <lastTX> <lastRX> <path>\n",
    );
    let mut any_tunneled = false;
    for peer in peer_list(peers) {
        let tunneled = json_bool(peer.get("tunneled"));
        any_tunneled |= tunneled;
        let link = match preferred_path(peer, now) {
            Some(p) => format!(
                "{}{:<8} {:<8} {}",
                if tunneled { "RELAY " } else { "DIRECT   " },
                p.since_send,
                p.since_receive,
                p.address
            ),
            None => "RELAY".to_owned(),
        };
        text.push_str(&format!(
            "{} {:<6} {:<6} {:>5} {link}\n",
            json_text(peer.get("address"), "-"),
            version(peer),
            json_text(peer.get("role"), "-"),
            json_int(peer.get("latency"), 0),
        ));
    }
    if any_tunneled {
        text.push_str(
            "NOTE: Currently tunneling through a TCP relay. Ensure that UDP is not blocked.\n",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!([
            {"address": "89e92ceee5", "versionMajor": 1, "versionMinor": 14, "versionRev": 1,
             "latency": 12, "role": "PLANET", "tunneled": false,
             "paths": [
                {"address": "10.0.0.1/9993", "preferred": false, "lastReceive": 900},
                {"address": "127.0.0.1/9993", "preferred": true, "lastReceive": 900}
             ]},
            {"address": "a1b2c3d4e5", "versionMajor": -1, "versionMinor": -1, "versionRev": -1,
             "latency": -1, "role": "LEAF", "paths": []}
        ])
    }

    #[test]
    fn listpeers_lines() {
        assert_eq!(
            format_listpeers(&sample(), 1000),
            "200 listpeers <ztaddr> <path> <latency> <version> <role>\n\
             200 listpeers 89e92ceee5 127.0.0.1/9993;-1;100 12 1.14.1 PLANET\n\
             200 listpeers a1b2c3d4e5 - -1 - LEAF\n"
        );
        assert_eq!(
            format_listpeers(&json!({}), 0),
            "200 listpeers <ztaddr> <path> <latency> <version> <role>\n"
        );
    }

    #[test]
    fn peers_table() {
        assert_eq!(
            format_peers(&sample(), 1000),
            "200 peers\n<ztaddr>   <ver>  <role> <lat> <link>   <lastTX> <lastRX> <path>\n\
             89e92ceee5 1.14.1 PLANET    12 DIRECT   -1       100      127.0.0.1/9993\n\
             a1b2c3d4e5 -      LEAF      -1 RELAY\n"
        );
        let mut tunneled = sample();
        tunneled[0]["tunneled"] = json!(true);
        let table = format_peers(&tunneled, 1000);
        assert!(table.contains("PLANET    12 RELAY -1       100      127.0.0.1/9993\n"));
        assert!(table.ends_with("Ensure that UDP is not blocked.\n"));
    }
}
