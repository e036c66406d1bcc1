#!/usr/bin/env bash
# The main job on an embedded default, self-contained: no internet, no privileges, nothing
# outside 127.0.0.1. First a short tour of `ztrs idtool` (an identity, a signature, a private
# planet and a moon), then `ztrs demo`: a root and two members on loopback UDP, whose first
# contact goes through the root and then switches to a direct path (RENDEZVOUS); then a
# private network on the root's controller that the members join, are refused on until the
# controller authorizes them, and run real TCP over (user-space stacks: a SHA-256-checked
# transfer with a progress bar, then round trips), ending with a summary table. Extra
# arguments go to `ztrs demo` (e.g. --bytes 256M, --seed 7, --quiet, --json).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
ztrs="$PWD/target/release/ztrs"
work="$(mktemp -d "${TMPDIR:-/tmp}/ztrs-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }

(
    cd "$work"
    step "idtool: an identity (memory-hard proof of work), a signature, a planet and a moon"
    "$ztrs" idtool generate id.secret id.public >/dev/null
    "$ztrs" idtool validate id.secret
    echo "hello from ztrs" > message.txt
    sig="$("$ztrs" idtool sign id.secret message.txt)"
    "$ztrs" idtool verify id.public message.txt "$sig"
    echo "tampered" >> message.txt
    if "$ztrs" idtool verify id.public message.txt "$sig" 2>/dev/null; then
        echo "ERROR: a tampered file verified" >&2
        exit 1
    fi
    echo "a tampered copy is rejected"
    # A private planet is a world of type planet; initmoon's template is edited into one.
    "$ztrs" idtool initmoon id.public \
        | sed -e 's/"worldType": "moon"/"worldType": "planet"/' \
              -e 's/"id": "[0-9a-f]*"/"id": "000000000000abcd"/' \
              -e 's|"stableEndpoints": \[\]|"stableEndpoints": ["127.0.0.1/9993"]|' \
        > planet.json
    "$ztrs" idtool genmoon planet.json >/dev/null
    "$ztrs" idtool initmoon id.public > moon.json
    "$ztrs" idtool genmoon moon.json >/dev/null
    ls ./*.moon
)

step "demo: root + alice + bob on 127.0.0.1, TCP over user-space stacks"
"$ztrs" demo "$@"
