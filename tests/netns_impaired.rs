//! Traffic under impairment still completes byte for byte: 2% random loss on the underlay
//! (`nft` with `numgen random`, this kernel has no `netem`), and reordering, duplication and
//! delay from the fault-injecting layer of our UDP transport (`ZTRS_IMPAIR`).

mod rig;

use rig::{Rig, finish};

const TRAFFIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/traffic.py");

#[test]
fn tcp_and_ping_survive_loss_reordering_duplication_and_delay() {
    let rig = Rig::up(
        2,
        &[(
            "ZTRS_IMPAIR",
            "duplicate=0.01,reorder=0.03,reorder_ms=4,delay_ms=1,seed=11",
        )],
    );
    // 2% of the underlay's UDP dropped on arrival at both members.
    for n in [1, 2] {
        rig.ok(
            n,
            "nft add table inet ztrs_impair && \
             nft add chain inet ztrs_impair input '{ type filter hook input priority 0; }' && \
             nft add rule inet ztrs_impair input udp dport 9993 numgen random mod 100 '<' 2 counter drop",
        );
    }
    let ip2 = rig.zt_ip(2);
    let ping = rig.ok(1, &format!("ping -c 50 -i 0.02 -W 2 {ip2} || true"));
    let received: u32 = ping
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" received").map(str::to_owned))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        received >= 40,
        "too few pings answered under 2% loss: {ping}"
    );

    let receiver = rig.spawn(2, "python3", &[TRAFFIC, "tcp-recv", &ip2, "5004"]);
    let sent = rig.ok(1, &format!("python3 {TRAFFIC} tcp-send {ip2} 5004 50"));
    let got = finish(receiver, "receiver");
    assert_eq!(sent.trim(), got.trim(), "transfer differs under impairment");
    // The impairment really happened: nft dropped packets on both members, and both
    // daemons ran with the fault injector.
    for n in [1, 2] {
        let rules = rig.ok(n, "nft list table inet ztrs_impair");
        let dropped = rules
            .split("packets ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(dropped > 0, "nothing dropped on member {n}: {rules}");
        assert!(
            rig.log(n).contains("ZTRS_IMPAIR"),
            "member {n} ran without the fault injector"
        );
    }
}
