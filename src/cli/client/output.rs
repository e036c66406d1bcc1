//! Output conventions shared by the CLI verbs, taken from the reference `zerotier-cli`:
//! JSON fields rendered as text the way it renders them (`"-"` for missing ones, booleans
//! as `1`/`0`), raw JSON dumped with a one-space indent, the `<status> <verb> <body>` error
//! line, and the connection-failure text. Writes ignore a closed stdout/stderr (a pipe into
//! `head` must not turn into a panic).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

/// The exit status of a verb. The reference uses 0 (done), 1 (the service answered with an
/// error or not at all) and 2 (bad arguments or no port/token to talk with).
pub(crate) type Status = u8;
pub(crate) const OK: Status = 0;
pub(crate) const FAILED: Status = 1;
pub(crate) const BAD_ARGUMENTS: Status = 2;

/// Prints `text` to stdout as is.
pub(crate) fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Prints an API answer's body, ending it with a line break if it has none (the API's JSON
/// has none, and the shell prompt should not follow it on the same line).
pub(crate) fn out_body(body: &str) {
    if body.ends_with('\n') {
        out(body);
    } else {
        out(&format!("{body}\n"));
    }
}

/// Prints `text` to stderr as is.
pub(crate) fn err(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// A JSON value as the reference's text rendering: strings as they are, numbers in
/// decimal, booleans as `1`/`0`, anything else (missing, null, arrays, objects) `default`.
pub(crate) fn json_text(value: Option<&Value>, default: &str) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.to_owned(),
        _ => default.to_owned(),
    }
}

/// A JSON value as an integer (numbers, decimal strings, booleans), else `default`.
pub(crate) fn json_int(value: Option<&Value>, default: i64) -> i64 {
    match value {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(default),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(default),
        Some(Value::Bool(b)) => i64::from(*b),
        _ => default,
    }
}

/// True for JSON `true`, non-zero numbers and strings starting with t/T/1.
pub(crate) fn json_bool(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => s.starts_with(['t', 'T', '1']),
        _ => false,
    }
}

/// `value` pretty-printed with a one-space indent, as the reference's `-j` output.
pub(crate) fn dump(value: &Value) -> String {
    let mut buffer = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, formatter);
    // Serializing a `Value` into memory cannot fail.
    let _ = value.serialize(&mut serializer);
    String::from_utf8_lossy(&buffer).into_owned()
}

/// The reference's error line for an HTTP answer other than 200: `<status> <verb> <body>`.
pub(crate) fn http_error_line(status: u16, verb: &str, body: &str) -> String {
    format!("{status} {verb} {}\n", body.trim_end())
}

/// The reference's text when the service cannot be reached at all.
pub(crate) fn connect_error_text(port: u16, reason: &io::Error) -> String {
    format!(
        "Error connecting to the ZeroTier service: {reason}\n\nPlease check that the service is running and that TCP port {port} can be contacted via 127.0.0.1.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_rendering_follows_the_reference() {
        let v = json!({"s": "x", "n": 42, "t": true, "f": false, "a": [1], "z": null});
        assert_eq!(json_text(v.get("s"), "-"), "x");
        assert_eq!(json_text(v.get("n"), "-"), "42");
        assert_eq!(json_text(v.get("t"), "-"), "1");
        assert_eq!(json_text(v.get("f"), "-"), "0");
        assert_eq!(json_text(v.get("a"), "-"), "-");
        assert_eq!(json_text(v.get("z"), "-"), "-");
        assert_eq!(json_text(v.get("missing"), "-"), "-");
        assert_eq!(json_int(Some(&json!(-1)), 0), -1);
        assert_eq!(json_int(Some(&json!("17")), 0), 17);
        assert_eq!(json_int(Some(&json!([])), 5), 5);
        assert!(json_bool(Some(&json!("true"))));
        assert!(!json_bool(Some(&json!("no"))));
        assert!(!json_bool(None));
    }

    #[test]
    fn dump_uses_a_one_space_indent() {
        assert_eq!(dump(&json!({"a": [1]})), "{\n \"a\": [\n  1\n ]\n}");
        assert_eq!(dump(&json!([])), "[]");
    }

    #[test]
    fn error_line() {
        assert_eq!(
            http_error_line(401, "info", "{\"error\":\"no\"}\n"),
            "401 info {\"error\":\"no\"}\n"
        );
    }
}
