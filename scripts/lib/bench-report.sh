# shellcheck shell=bash
# The bench's output: medians of every metric per target (veth, ztrs, wireguard-go) from the
# results file, one table with ztrs's ratios to the baselines, and the final RESULT line.
# Sourced by bench.sh.

# bench_report <results file> <runs> <seconds>: prints the table, then the RESULT line last.
bench_report() {
    python3 - "$@" <<'PY'
import statistics, sys
from collections import defaultdict

path, runs, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
samples = defaultdict(list)
with open(path) as f:
    for line in f:
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 3:
            samples[(parts[0], parts[1])].append(float(parts[2]))

TARGETS = ["veth", "ztrs", "wireguard-go"]
EXTRA = ["userspace"]

def median(target, metric):
    values = samples.get((target, metric))
    return statistics.median(values) if values else None

def total(target, metric):
    values = samples.get((target, metric))
    return sum(values) if values else None

def measured(target):
    return any(t == target for t, _ in samples)

def scaling(target):
    one, four = median(target, "tcp1_gbps"), median(target, "tcp4_gbps")
    return four / one if one and four is not None else None

ROWS = [
    ("TCP 1 stream h1->h2, Gbit/s", lambda t: median(t, "tcp1_gbps"), "{:.2f}"),
    ("TCP 1 stream h2->h1, Gbit/s", lambda t: median(t, "tcp1r_gbps"), "{:.2f}"),
    ("TCP 4 streams h1->h2, Gbit/s", lambda t: median(t, "tcp4_gbps"), "{:.2f}"),
    ("TCP 4 streams h2->h1, Gbit/s", lambda t: median(t, "tcp4r_gbps"), "{:.2f}"),
    ("TCP 4 streams / 1 stream", scaling, "{:.2f}"),
    ("retransmits 1 stream h1->h2", lambda t: median(t, "tcp1_retrans"), "{:.0f}"),
    ("retransmits 1 stream h2->h1", lambda t: median(t, "tcp1r_retrans"), "{:.0f}"),
    ("retransmits 4 streams h1->h2", lambda t: median(t, "tcp4_retrans"), "{:.0f}"),
    ("retransmits 4 streams h2->h1", lambda t: median(t, "tcp4r_retrans"), "{:.0f}"),
    ("ping RTT avg, us", lambda t: median(t, "rtt_us"), "{:.1f}"),
    ("join, ms", lambda t: median(t, "join_ms"), "{:.0f}"),
    ("RSS idle member, MiB", lambda t: median(t, "rss_idle_mib"), "{:.1f}"),
    ("RSS member after load, MiB", lambda t: median(t, "rss_loaded_mib"), "{:.1f}"),
    ("failed measurements", lambda t: (total(t, "failures") or 0) if measured(t) else None, "{:.0f}"),
]

def fmt(value, spec):
    return "-" if value is None else spec.format(value)

def ratio(a, b):
    return "-" if a is None or not b else "{:.2f}".format(a / b)

header = ["metric (median of %s runs, %s s)" % (runs, seconds)] + TARGETS + ["ztrs/veth", "ztrs/wg-go"]
table = [header]
for label, get, spec in ROWS:
    values = [get(t) for t in TARGETS]
    table.append([label] + [fmt(v, spec) for v in values]
                 + [ratio(values[1], values[0]), ratio(values[1], values[2])])
widths = [max(len(row[i]) for row in table) for i in range(len(header))]
for row in table:
    print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                    for i, cell in enumerate(row)))
if measured("userspace"):
    print()
    print("user-space mode (h1 on the built-in stack, through a -L forward; h2 on TUN):")
    for label, metric, spec in [
        ("TCP 1 stream h1->h2, Gbit/s", "tcp1_gbps", "{:.2f}"),
        ("TCP 1 stream h2->h1, Gbit/s", "tcp1r_gbps", "{:.2f}"),
        ("retransmits 1 stream h1->h2", "tcp1_retrans", "{:.0f}"),
        ("ping RTT avg (h2 -> h1's stack), us", "rtt_us", "{:.1f}"),
    ]:
        value = median("userspace", metric)
        print("  %-40s %10s   vs TUN %s" % (label, fmt(value, spec),
              ratio(value, median("ztrs", metric))))
    print("  %-40s %10s" % ("failed measurements", fmt(total("userspace", "failures") or 0, "{:.0f}")))
for method in ("api", "restart"):
    if samples.get(("ztrs", "join_method_" + method)):
        print("join measured by:", "POST /network/<nwid> on an online member" if method == "api"
              else "starting a member whose networks.d has the network")

def result_ratio(a, b):
    return "na" if a is None or not b else "{:.2f}".format(a / b)

def result_int(value):
    return "na" if value is None else str(int(round(value)))

tcp = {t: median(t, "tcp1_gbps") for t in TARGETS}
rtt_ztrs, rtt_veth = median("ztrs", "rtt_us"), median("veth", "rtt_us")
rtt_added = None if rtt_ztrs is None or rtt_veth is None else rtt_ztrs - rtt_veth
rtt_user = median("userspace", "rtt_us")
user_added = None if rtt_user is None or rtt_veth is None else rtt_user - rtt_veth
print("RESULT tun_vs_veth=%s tun_vs_wireguard_go=%s rtt_added_us=%s join_ms=%s rss_idle_mib=%s"
      " userspace_vs_tun=%s userspace_rtt_added_us=%s" % (
    result_ratio(tcp["ztrs"], tcp["veth"]),
    result_ratio(tcp["ztrs"], tcp["wireguard-go"]),
    result_int(rtt_added),
    result_int(median("ztrs", "join_ms")),
    result_int(median("ztrs", "rss_idle_mib")),
    result_ratio(median("userspace", "tcp1_gbps"), tcp["ztrs"]),
    result_int(user_added),
))
PY
}
