//! `info` (alias `status`): the node's address, version and reachability as
//! `200 info <address> <version> ONLINE|OFFLINE|TUNNELED`, and the raw `GET /<path>`
//! pass-through (`zerotier-cli /status`) that prints the answer's body untouched.

use serde_json::Value;

use super::http::Method;
use super::output::{self, OK, Status, json_bool, json_text};
use super::session::Session;

/// `info`: one summary line, or the whole `/status` object with `-j`.
pub(crate) fn info(session: &Session) -> Status {
    match session.get_json("info", "/status") {
        Ok(status) => {
            if session.json {
                output::out(&format!("{}\n", output::dump(&status)));
            } else {
                output::out(&info_line(&status));
            }
            OK
        }
        Err(code) => code,
    }
}

/// The `info` line; nothing for an answer that is not an object (as the reference).
pub(crate) fn info_line(status: &Value) -> String {
    if !status.is_object() {
        return String::new();
    }
    let reachability = if json_bool(status.get("tcpFallbackActive")) {
        "TUNNELED"
    } else if json_bool(status.get("online")) {
        "ONLINE"
    } else {
        "OFFLINE"
    };
    format!(
        "200 info {} {} {reachability}\n",
        json_text(status.get("address"), "-"),
        json_text(status.get("version"), "-"),
    )
}

/// `/<path>`: prints the body of a 200 as it came; anything else is an error line.
pub(crate) fn raw_get(session: &Session, path: &str) -> Status {
    match session.call(path, Method::Get, path, None) {
        Ok(response) => {
            output::out(&response.body);
            OK
        }
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn info_lines() {
        let base = json!({"address": "89e92ceee5", "version": "1.14.1", "online": true, "tcpFallbackActive": false});
        assert_eq!(info_line(&base), "200 info 89e92ceee5 1.14.1 ONLINE\n");
        let mut offline = base.clone();
        offline["online"] = json!(false);
        assert_eq!(info_line(&offline), "200 info 89e92ceee5 1.14.1 OFFLINE\n");
        let mut tunneled = base.clone();
        tunneled["tcpFallbackActive"] = json!(true);
        assert_eq!(
            info_line(&tunneled),
            "200 info 89e92ceee5 1.14.1 TUNNELED\n"
        );
        assert_eq!(info_line(&json!({})), "200 info - - OFFLINE\n");
        assert_eq!(info_line(&json!([])), "");
    }
}
