#!/usr/bin/env bash
# Measures the dns-resolver lab with its reference solution: netgrade's own
# overhead per DNS run (each case is a whole run: namespace, the hierarchy's
# five servers, the program, the checks), the wall time and peak memory of a
# whole graded submission (eight cases), and of a batch.
#
#   bash bench/dns-resolver.sh [SUBMISSIONS] [JOBS]   (defaults: 10, 1 at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
jobs=${2:-1}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/env time -f '%M %e' -o "$out/one" \
  target/release/netgrade run dns-resolver fixtures/dns-resolver/reference --quiet \
  --json "$out/one.json" >/dev/null || true
subs=()
for _ in $(seq "$n"); do subs+=(fixtures/dns-resolver/reference); done
/usr/bin/env time -f '%M %e' -o "$out/time" \
  target/release/netgrade run dns-resolver "${subs[@]}" -j "$jobs" --quiet \
  --json "$out/report.json" >/dev/null || true
python3 - "$out" "$jobs" <<'PY'
import json, statistics, sys
out, jobs = sys.argv[1], sys.argv[2]
def usage(name):
    rss_kib, wall = open(f"{out}/{name}").read().split("\n")[-2].split()
    return float(wall), int(rss_kib) / 1024
runs = json.load(open(f"{out}/report.json"))["runs"]
cases = [c for r in runs for c in r["cases"]]
over = sorted(c["timing"]["overhead_ms"] for c in cases)
p95 = over[min(len(over) - 1, int(round(0.95 * (len(over) - 1))))]
full = sum(r["score"] == r["max_score"] for r in runs)
wall, rss = usage("one")
print(f"one submission (8 cases): {wall:.2f} s wall, peak RSS {rss:.1f} MiB")
lost = [c["timing"]["program_ms"] for c in cases if c["id"] == "lost-query"]
print(f"  of which the lost-query case's program waits its 2 s timeout: median {statistics.median(lost):.0f} ms")
print(f"{len(runs)} submissions (-j {jobs}), {len(cases)} DNS runs, full marks: {full}")
print(f"overhead per DNS run: median {statistics.median(over):.1f} ms, mean {statistics.mean(over):.1f} ms, p95 {p95:.1f} ms, max {over[-1]:.1f} ms")
wall, rss = usage("time")
print(f"whole batch: {wall:.2f} s wall, peak RSS {rss:.1f} MiB")
PY
