//! The network verbs: `listnetworks` (`200 listnetworks <nwid> <name> <mac> <status> <type>
//! <dev> <ZT assigned ips>`), `join <nwid>` / `leave <nwid>` (`200 join OK`,
//! `200 leave OK`), `set <nwid> <setting>=<value>` for the four local settings, and
//! `get <nwid> <property>` for any field of the network object plus the address shorthands
//! `ip`, `ip4`, `ip6`, `ip6plane` and `ip6prefix`.

use serde_json::{Value, json};

use super::http::Method;
use super::output::{self, BAD_ARGUMENTS, FAILED, OK, Status, json_bool, json_int, json_text};
use super::session::Session;

/// The settings `set` may change (the API's local settings).
const SETTINGS: [&str; 4] = ["allowManaged", "allowGlobal", "allowDefault", "allowDNS"];

/// True for exactly 16 hex digits.
pub(crate) fn is_network_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `listnetworks`.
pub(crate) fn listnetworks(session: &Session) -> Status {
    match session.get_json("listnetworks", "/network") {
        Ok(networks) => {
            if session.json {
                output::out(&format!("{}\n", output::dump(&networks)));
            } else {
                output::out(&format_listnetworks(&networks, unix_ms_now()));
            }
            OK
        }
        Err(code) => code,
    }
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `listnetworks` text for a `/network` array (with the reference's SSO lines).
pub(crate) fn format_listnetworks(networks: &Value, now: i64) -> String {
    let mut text = String::from(
        "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n",
    );
    for network in networks.as_array().map_or(&[][..], Vec::as_slice) {
        if !network.is_object() {
            continue;
        }
        let addresses: Vec<&str> = network
            .get("assignedAddresses")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let addresses = if addresses.is_empty() {
            "-".to_owned()
        } else {
            addresses.join(",")
        };
        let status = json_text(network.get("status"), "-");
        text.push_str(&format!(
            "200 listnetworks {} {} {} {status} {} {} {addresses}\n",
            json_text(network.get("nwid"), "-"),
            json_text(network.get("name"), "-"),
            json_text(network.get("mac"), "-"),
            json_text(network.get("type"), "-"),
            json_text(network.get("portDeviceName"), "-"),
        ));
        if json_bool(network.get("ssoEnabled")) {
            if status == "AUTHENTICATION_REQUIRED" {
                text.push_str(&format!(
                    "    AUTH EXPIRED, URL: {}\n",
                    json_text(network.get("authenticationURL"), "(null)")
                ));
            } else if status == "OK" {
                let expiry = json_int(network.get("authenticationExpiryTime"), 0);
                let expires_in = expiry.saturating_sub(now) / 1000;
                if expires_in >= 0 {
                    text.push_str(&format!("    AUTH OK, expires in: {expires_in} seconds\n"));
                }
            }
        }
    }
    text
}

/// `join <nwid>` (`POST /network/<nwid>` with `{}`).
pub(crate) fn join(session: &Session, nwid: &str) -> Status {
    membership_change(session, "join", Method::Post, nwid)
}

/// `leave <nwid>` (`DELETE /network/<nwid>`).
pub(crate) fn leave(session: &Session, nwid: &str) -> Status {
    membership_change(session, "leave", Method::Delete, nwid)
}

fn membership_change(session: &Session, verb: &str, method: Method, nwid: &str) -> Status {
    if !is_network_id(nwid) {
        output::out("invalid network id\n");
        return BAD_ARGUMENTS;
    }
    let body = (method == Method::Post).then_some("{}");
    match session.call(verb, method, &format!("/network/{nwid}"), body) {
        Ok(response) => {
            if session.json {
                output::out_body(&response.body);
            } else {
                output::out(&format!("200 {verb} OK\n"));
            }
            OK
        }
        Err(code) => code,
    }
}

/// The JSON body for `set`'s `<setting>=<value>`: a value starting with `t` or `1` is
/// true, anything else false (as the reference). `None` for an unknown setting.
pub(crate) fn setting_body(setting: &str, value: &str) -> Option<String> {
    SETTINGS.contains(&setting).then(|| {
        let on = value.starts_with(['t', '1']);
        json!({ setting: on }).to_string()
    })
}

/// `set <nwid> <setting>=<value>`: prints the updated network object.
pub(crate) fn set(session: &Session, nwid: &str, assignment: &str) -> Status {
    if !is_network_id(nwid) {
        output::err("invalid format: must be a 16-digit (network) ID\n");
        return BAD_ARGUMENTS;
    }
    let Some((setting, value)) = assignment.split_once('=') else {
        output::err("invalid format: use <setting>=<value>, e.g. allowDNS=1\n");
        return BAD_ARGUMENTS;
    };
    let Some(body) = setting_body(setting, value) else {
        output::err(&format!(
            "unknown setting {setting}: one of {}\n",
            SETTINGS.join(", ")
        ));
        return BAD_ARGUMENTS;
    };
    match session.call(
        "set",
        Method::Post,
        &format!("/network/{nwid}"),
        Some(&body),
    ) {
        Ok(response) => {
            output::out_body(&response.body);
            OK
        }
        Err(code) => code,
    }
}

/// What `get` found: a value to print, or why it could not.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(String),
    UnknownProperty,
    UnknownNetwork,
}

/// `property` of network `nwid` in a `/network` array.
pub(crate) fn lookup(networks: &Value, nwid: &str, property: &str) -> Lookup {
    let Some(network) = networks.as_array().and_then(|list| {
        list.iter()
            .find(|n| n.get("id").and_then(Value::as_str) == Some(nwid))
    }) else {
        return Lookup::UnknownNetwork;
    };
    let wants_addresses = matches!(property, "ip" | "ip4" | "ip6" | "ip6plane" | "ip6prefix");
    if !wants_addresses {
        return match json_text(network.get(property), "-") {
            text if text == "-" => Lookup::UnknownProperty,
            text => Lookup::Found(text),
        };
    }
    let addresses = network
        .get("assignedAddresses")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(Value::as_str);
    let mut lines = Vec::new();
    for with_bits in addresses {
        let ip = with_bits.split('/').next().unwrap_or(with_bits);
        let is_v6 = ip.contains(':');
        let selected = match property {
            "ip" => Some(ip),
            "ip4" => (!is_v6).then_some(ip),
            "ip6" => is_v6.then_some(ip),
            // 6PLANE addresses are the fc00::/8 ones; the prefix is their first 24 characters.
            "ip6plane" => (is_v6 && ip.starts_with("fc")).then_some(ip),
            _ => (is_v6 && ip.starts_with("fc")).then(|| ip.get(..24).unwrap_or(ip)),
        };
        lines.extend(selected);
    }
    Lookup::Found(lines.join("\n"))
}

/// `get <nwid> <property>`.
pub(crate) fn get(session: &Session, nwid: &str, property: &str) -> Status {
    if !is_network_id(nwid) {
        output::err("invalid format: must be a 16-digit (network) ID\n");
        return BAD_ARGUMENTS;
    }
    if property.is_empty() {
        output::err("invalid format: include a property name to get\n");
        return BAD_ARGUMENTS;
    }
    let networks = match session.get_json("get", "/network") {
        Ok(networks) => networks,
        Err(code) => return code,
    };
    match lookup(&networks, nwid, property) {
        Lookup::Found(text) => {
            output::out(&format!("{text}\n"));
            OK
        }
        Lookup::UnknownProperty => {
            output::out("error, unknown property name\n");
            FAILED
        }
        Lookup::UnknownNetwork => {
            output::err("unknown network ID, check that you are a member of the network\n");
            FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!([{
            "id": "8056c2e21c000001", "nwid": "8056c2e21c000001", "name": "home",
            "mac": "02:11:22:33:44:55", "status": "OK", "type": "PRIVATE",
            "portDeviceName": "ztabcdef12", "mtu": 2800, "allowDNS": false,
            "assignedAddresses": ["10.147.17.5/24", "fd80:56c2:e21c::1/88",
                                  "fc11:2233:4455:6677:8899::1/40"],
            "routes": []
        }, {
            "id": "8056c2e21c000002", "nwid": "8056c2e21c000002", "name": "",
            "mac": "02:11:22:33:44:66", "status": "REQUESTING_CONFIGURATION",
            "type": "PRIVATE", "portDeviceName": "", "assignedAddresses": []
        }])
    }

    #[test]
    fn network_ids() {
        assert!(is_network_id("8056c2e21c000001"));
        assert!(is_network_id("8056C2E21C000001"));
        assert!(!is_network_id("8056c2e21c00000"));
        assert!(!is_network_id("8056c2e21c00000g"));
        assert!(!is_network_id("8056c2e21c0000011"));
    }

    #[test]
    fn listnetworks_lines() {
        assert_eq!(
            format_listnetworks(&sample(), 0),
            "200 listnetworks <nwid> <name> <mac> <status> <type> <dev> <ZT assigned ips>\n\
             200 listnetworks 8056c2e21c000001 home 02:11:22:33:44:55 OK PRIVATE ztabcdef12 \
             10.147.17.5/24,fd80:56c2:e21c::1/88,fc11:2233:4455:6677:8899::1/40\n\
             200 listnetworks 8056c2e21c000002  02:11:22:33:44:66 REQUESTING_CONFIGURATION \
             PRIVATE  -\n"
        );
        let mut sso = sample();
        sso[0]["ssoEnabled"] = json!(true);
        sso[0]["authenticationExpiryTime"] = json!(61_000);
        assert!(format_listnetworks(&sso, 1000).contains("    AUTH OK, expires in: 60 seconds\n"));
    }

    #[test]
    fn settings() {
        assert_eq!(
            setting_body("allowDNS", "1").unwrap(),
            r#"{"allowDNS":true}"#
        );
        assert_eq!(
            setting_body("allowGlobal", "true").unwrap(),
            r#"{"allowGlobal":true}"#
        );
        assert_eq!(
            setting_body("allowManaged", "0").unwrap(),
            r#"{"allowManaged":false}"#
        );
        assert_eq!(
            setting_body("allowDefault", "yes").unwrap(),
            r#"{"allowDefault":false}"#
        );
        assert_eq!(setting_body("mtu", "1"), None);
    }

    #[test]
    fn get_properties() {
        let n = sample();
        let id = "8056c2e21c000001";
        let found = |p: &str| match lookup(&n, id, p) {
            Lookup::Found(text) => text,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(found("name"), "home");
        assert_eq!(found("mtu"), "2800");
        assert_eq!(found("allowDNS"), "0");
        assert_eq!(
            found("ip"),
            "10.147.17.5\nfd80:56c2:e21c::1\nfc11:2233:4455:6677:8899::1"
        );
        assert_eq!(found("ip4"), "10.147.17.5");
        assert_eq!(
            found("ip6"),
            "fd80:56c2:e21c::1\nfc11:2233:4455:6677:8899::1"
        );
        assert_eq!(found("ip6plane"), "fc11:2233:4455:6677:8899::1");
        assert_eq!(found("ip6prefix"), "fc11:2233:4455:6677:8899");
        assert_eq!(lookup(&n, id, "routes"), Lookup::UnknownProperty);
        assert_eq!(lookup(&n, id, "nosuch"), Lookup::UnknownProperty);
        assert_eq!(
            lookup(&n, "0000000000000000", "name"),
            Lookup::UnknownNetwork
        );
        assert_eq!(
            lookup(&n, "8056c2e21c000002", "ip"),
            Lookup::Found(String::new())
        );
    }
}
