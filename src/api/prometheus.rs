//! The Prometheus text exposition format (version 0.0.4), written by hand: one `# HELP` and
//! one `# TYPE` line per family, then its samples `name{label="value",...} number`, label
//! values escaped. Pure text building, so the format is tested without a server.

use std::fmt::Write;

use serde_json::Value;

/// The content type of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family's values mean.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// One sample: label pairs and the value.
pub(crate) type Sample = (Vec<(&'static str, String)>, f64);

/// The text being built.
#[derive(Default)]
pub(crate) struct Exposition {
    text: String,
}

impl Exposition {
    /// Writes a family: its header, then every sample (a family without samples is left
    /// out, as exporters do).
    pub(crate) fn family(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
        for (labels, value) in samples {
            self.text.push_str(name);
            if !labels.is_empty() {
                self.text.push('{');
                for (i, (label, text)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    let _ = write!(self.text, "{label}=\"{}\"", escape_label(text));
                }
                self.text.push('}');
            }
            let _ = writeln!(self.text, " {value}");
        }
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

/// Label values: backslash, double quote and newline escaped.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Help text: backslash and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Nesting followed at most (the JSON comes from our own counters; this bounds the walk).
const MAX_DEPTH: usize = 8;

/// The numeric leaves of a JSON value as `(path, number)`, nested keys joined with `_`
/// (booleans count as 0 and 1; strings and nulls are not numbers and are left out).
pub(crate) fn numeric_leaves(value: &Value) -> Vec<(String, f64)> {
    let mut leaves = Vec::new();
    collect_leaves(value, String::new(), 0, &mut leaves);
    leaves
}

fn collect_leaves(value: &Value, path: String, depth: usize, leaves: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(number) => {
            if let Some(number) = number.as_f64() {
                leaves.push((path, number));
            }
        }
        Value::Bool(flag) => leaves.push((path, f64::from(u8::from(*flag)))),
        Value::Object(object) if depth < MAX_DEPTH => {
            for (key, inner) in object {
                let inner_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}_{key}")
                };
                collect_leaves(inner, inner_path, depth + 1, leaves);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn families_have_a_header_and_samples() {
        let mut out = Exposition::default();
        out.family(
            "zt_num_networks",
            Kind::Gauge,
            "networks joined",
            [(vec![], 2.0)],
        );
        out.family(
            "ztrs_node_total",
            Kind::Counter,
            "node counters",
            [
                (vec![("counter", "bad_mac".to_string())], 3.0),
                (vec![("counter", "a\"b\\c\nd".to_string())], 0.0),
            ],
        );
        out.family("empty", Kind::Untyped, "nothing", Vec::<Sample>::new());
        let text = out.finish();
        assert_eq!(
            text,
            "# HELP zt_num_networks networks joined\n# TYPE zt_num_networks gauge\n\
             zt_num_networks 2\n\
             # HELP ztrs_node_total node counters\n# TYPE ztrs_node_total counter\n\
             ztrs_node_total{counter=\"bad_mac\"} 3\n\
             ztrs_node_total{counter=\"a\\\"b\\\\c\\nd\"} 0\n"
        );
    }

    #[test]
    fn nested_numbers_are_flattened() {
        let mut leaves = numeric_leaves(&json!({
            "ports": 2, "tun": {"rx": 5, "name": "zt0"}, "up": true, "none": null
        }));
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [("ports", 2.0), ("tun_rx", 5.0), ("up", 1.0)]
            .map(|(k, v)| (k.to_string(), v))
            .to_vec();
        assert_eq!(leaves, expected);
    }
}
