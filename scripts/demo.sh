#!/usr/bin/env bash
# The main job on an embedded default: a self-contained run that needs no internet and no
# privileges. Today it shows the foundation (identities, signatures, a private planet and a
# moon made and checked with `ztrs idtool`); later milestones grow it into `ztrs demo`
# (root + controller + members exchanging traffic).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
ztrs="$PWD/target/release/ztrs"
work="$(mktemp -d "${TMPDIR:-/tmp}/ztrs-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n== %s\n' "$*"; }

step "generate a root identity (memory-hard proof of work)"
"$ztrs" idtool generate root.secret root.public
echo "root address: $(cut -d: -f1 root.public)"
"$ztrs" idtool validate root.secret

step "sign and verify a file"
echo "hello from ztrs" > message.txt
sig="$("$ztrs" idtool sign root.secret message.txt)"
echo "signature: ${sig:0:32}..."
"$ztrs" idtool verify root.public message.txt "$sig"
echo "tampered" >> message.txt
if "$ztrs" idtool verify root.public message.txt "$sig"; then
    echo "ERROR: a tampered file verified" >&2
    exit 1
fi

step "make a private planet whose only root is that identity"
"$ztrs" idtool initmoon root.public > world.json
python3 - <<'PY'
import json
w = json.load(open("world.json"))
w["worldType"] = "planet"
w["id"] = "000000000000abcd"
w["roots"][0]["stableEndpoints"] = ["10.200.0.1/9993"]
json.dump(w, open("world.json", "w"), indent=1)
PY
"$ztrs" idtool genmoon world.json
ls -l ./*.moon

step "and a moon"
"$ztrs" idtool initmoon root.public > moon.json
"$ztrs" idtool genmoon moon.json
ls -l ./*.moon
echo
echo "demo finished: identities, signatures, planet and moon made and verified locally"
