//! `ztrs demo` as a process: it runs root, alice and bob on 127.0.0.1, exits 0, and its report
//! shows traffic relayed by the root first and a direct path afterwards; then, on the private
//! network the root's controller runs, both members refused (ACCESS_DENIED) before
//! authorization, configured with an address of the pool after it, an ARP exchange and every
//! ICMP echo answered. The demo bounds every one of its own steps, so this test needs no timer
//! of its own.

use std::process::Command;

/// The number after `key` on the report line starting with `prefix`.
fn number_after(report: &str, prefix: &str, key: &str) -> Option<u64> {
    let line = report.lines().find(|l| l.starts_with(prefix))?;
    let rest = line.split_once(key)?.1.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[test]
fn demo_relays_first_then_goes_direct() {
    let output = Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .args(["demo", "--quiet", "--seed", "42"])
        .output()
        .expect("run ztrs demo");
    let report = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ztrs demo failed ({:?})\nstdout:\n{report}\nstderr:\n{errors}",
        output.status
    );
    assert!(
        !report.contains("generating identity"),
        "--quiet prints no progress:\n{report}"
    );
    assert!(
        report.lines().count() < 30,
        "the report stays short:\n{report}"
    );

    let relayed = number_after(&report, "messages alice -> bob:", "relayed");
    let direct = number_after(&report, "messages alice -> bob:", "direct");
    assert!(relayed.is_some_and(|n| n > 0), "relayed count:\n{report}");
    assert!(direct.is_some_and(|n| n > 0), "direct count:\n{report}");
    let forwarded = number_after(&report, "root:", "relayed");
    assert!(
        forwarded.is_some_and(|n| n > 0),
        "root relay counter:\n{report}"
    );
    assert!(
        number_after(&report, "direct path alice -> bob", "after").is_some(),
        "direct path alice -> bob:\n{report}"
    );
    assert!(
        number_after(&report, "direct path alice -> bob", "bob -> alice after").is_some(),
        "direct path bob -> alice:\n{report}"
    );
    assert!(report.contains("echo rtt direct:  median"), "{report}");
    assert!(
        report.lines().any(|l| l == "drops: 0"),
        "no drops:\n{report}"
    );

    for member in ["alice ", "bob "] {
        // The network table's row (the underlay table has one per member too).
        let row = report
            .lines()
            .find(|l| l.starts_with(member) && l.contains("/24"));
        assert!(
            row.is_some_and(|r| r.contains(" 10.147.17.") && r.contains("ACCESS_DENIED")),
            "{member}: managed IPv4 of the pool, refused before authorization:\n{report}"
        );
        assert!(
            row.and_then(|r| r.split_once("ACCESS_DENIED"))
                .is_some_and(|(_, rest)| rest
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit())),
            "{member}: time from join to configured:\n{report}"
        );
    }
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("arp: 10.147.17.") && l.contains(" is-at ")),
        "ARP answered:\n{report}"
    );
    assert_eq!(
        number_after(&report, "frame rtt", "over"),
        Some(20),
        "every ICMP echo answered:\n{report}"
    );
    assert!(
        number_after(&report, "frame rtt", ",").is_some_and(|n| n >= 42),
        "frames exchanged (ARP and 20 echoes both ways):\n{report}"
    );
    assert!(report.contains("3 services stopped cleanly"), "{report}");
}

#[test]
fn demo_rejects_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_ztrs"))
        .args(["demo", "--no-such-flag"])
        .output()
        .expect("run ztrs demo");
    assert_eq!(output.status.code(), Some(1));
}
