#!/usr/bin/env bash
# Grades many copies of a correct program at once and reports every copy
# that did not get full marks (a wrong verdict: the program is correct), the
# regrades netgrade did, and the throughput.
#
#   bash bench/load.sh [COPIES] [JOBS] [LAB] [PROGRAM]
#   (defaults: 100 copies, -j 50, udp-pinger, fixtures/udp-pinger/reference)
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${1:-100}
jobs=${2:-50}
lab=${3:-udp-pinger}
program=${4:-fixtures/udp-pinger/reference}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
subs=()
for i in $(seq "$copies"); do
  mkdir -p "$out/subs/s$i"
  cp -r "$program"/. "$out/subs/s$i/"
  subs+=("$out/subs/s$i")
done
start=$(date +%s.%N)
/usr/bin/env time -f '%M %e' -o "$out/time" \
  target/release/netgrade run "$lab" "${subs[@]}" -j "$jobs" --quiet \
  --json "$out/report.json" >/dev/null || true
python3 - "$out/report.json" "$out/time" "$jobs" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
rss_kib, wall = open(sys.argv[2]).read().split("\n")[-2].split()
wrong = [r for r in runs if r["score"] != r["max_score"]]
regraded = [r for r in runs if any("regraded" in n for n in r.get("notes", []))]
print(f"copies: {len(runs)} at -j {sys.argv[3]}: full marks {len(runs) - len(wrong)}, wrong verdicts {len(wrong)}, regraded {len(regraded)}")
for r in wrong[:10]:
    bad = [c["id"] + ": " + (c["message"] or "")[:160] for c in r["checks"] if c["status"] != "pass"]
    print("  " + r["submission"].rsplit("/", 1)[-1] + " " + " | ".join(bad))
print(f"whole batch: {float(wall):.1f} s wall ({len(runs) / float(wall):.2f} runs/s), peak RSS {int(rss_kib) / 1024:.1f} MiB")
PY
