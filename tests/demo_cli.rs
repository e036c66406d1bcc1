//! `ztrs demo` as a process: root, alice and bob on 127.0.0.1 with user-space stacks. With
//! `--json` its summary must show the first contact relayed by the root and a direct path
//! after it, both members refused (ACCESS_DENIED) before authorization and configured after
//! it, a TCP transfer whose SHA-256 matches at both ends with a positive throughput and no
//! relaying, and TCP round trips; without it, the summary table. The demo bounds every step
//! itself (a missed deadline exits 1), so these tests need no timer of their own.

use std::process::{Command, Output};

use serde_json::Value;

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run ztrs demo")
}

fn succeeded(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "ztrs demo failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

fn number(summary: &Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {summary:#}"))
}

#[test]
fn json_summary_tells_the_whole_story() {
    let output = demo(&["--quiet", "--json", "--bytes", "8M", "--seed", "42"]);
    let (stdout, stderr) = succeeded(&output);
    assert!(
        stderr.is_empty(),
        "--quiet prints nothing on stderr:\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");

    // Relayed first, then direct.
    assert!(
        number(&summary, "/relayed_first_contact") >= 1.0,
        "{summary:#}"
    );
    assert!(number(&summary, "/first_contact_ms") > 0.0, "{summary:#}");
    assert!(number(&summary, "/direct_path_ms") > 0.0, "{summary:#}");
    assert_eq!(
        number(&summary, "/tcp/relayed_by_root"),
        0.0,
        "the TCP traffic went direct: {summary:#}"
    );
    assert!(number(&summary, "/tcp/datagrams_sent_by_alice") > 0.0);

    // Refused before authorization, configured after, with IPv4 and IPv6.
    for member in ["alice", "bob"] {
        let at = |field: &str| number(&summary, &format!("/members/{member}/{field}"));
        assert!(at("online_ms") > 0.0, "{member}: {summary:#}");
        assert!(at("denied_ms") > 0.0, "{member}: {summary:#}");
        assert!(
            at("denied_ms") < at("configured_ms"),
            "{member} refused before being configured: {summary:#}"
        );
        let addresses = summary
            .pointer(&format!("/members/{member}/addresses"))
            .and_then(Value::as_array)
            .expect("addresses");
        let has = |family: char| {
            addresses
                .iter()
                .filter_map(Value::as_str)
                .any(|a| a.contains(family))
        };
        assert!(
            has('.') && has(':'),
            "{member} IPv4 and IPv6: {addresses:?}"
        );
    }

    // TCP: every byte arrived intact, by name.
    assert_eq!(number(&summary, "/tcp/bytes"), f64::from(8u32 << 20));
    assert_eq!(
        summary.pointer("/tcp/digest_match"),
        Some(&Value::Bool(true))
    );
    let sent = summary.pointer("/tcp/sha256_sent").and_then(Value::as_str);
    let received = summary
        .pointer("/tcp/sha256_received")
        .and_then(Value::as_str);
    assert!(sent.is_some_and(|s| s.len() == 64), "{summary:#}");
    assert_eq!(sent, received);
    assert!(number(&summary, "/tcp/bits_per_second") > 0.0);
    let name = summary.pointer("/tcp/name").and_then(Value::as_str);
    assert!(name.is_some_and(|n| n.ends_with(".zt")), "{summary:#}");

    // Round trips.
    assert_eq!(number(&summary, "/rtt/samples"), 200.0);
    let median = number(&summary, "/rtt/median_us");
    assert!(median > 0.0 && median <= number(&summary, "/rtt/p99_us"));
}

#[test]
fn table_summary_renders() {
    let output = demo(&["--bytes", "1M"]);
    let (stdout, stderr) = succeeded(&output);
    assert!(
        stdout.contains("identity 1/3: root"),
        "narrative:\n{stdout}"
    );
    assert!(stderr.contains("TCP alice -> bob ["), "progress:\n{stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("measurement"))
        .collect();
    let header = table.first().copied().unwrap_or_default();
    assert!(
        header.starts_with("measurement")
            && header.contains("| value")
            && header.contains("| detail"),
        "{stdout}"
    );
    assert!(
        table
            .get(1)
            .is_some_and(|rule| rule.starts_with("---") && rule.contains("-+-"))
    );
    for row in [
        "first contact alice -> bob",
        "direct path alice <-> bob",
        "join -> refused (alice)",
        "join -> configured (bob)",
        "TCP alice -> bob",
        "TCP RTT alice <-> bob",
    ] {
        assert!(
            table.iter().any(|l| l.starts_with(row)),
            "row {row}:\n{stdout}"
        );
    }
    assert!(stdout.contains("sha256 match"), "{stdout}");
    let widths: Vec<usize> = table.iter().map(|l| l.find('|').unwrap_or(0)).collect();
    assert!(
        widths.iter().all(|w| *w == widths[0] || *w == 0),
        "columns aligned:\n{stdout}"
    );
}

#[test]
fn bad_byte_counts_are_usage_errors() {
    let output = demo(&["--bytes", "12X"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bytes"), "{stderr}");
}
