#!/usr/bin/env bash
# Measures the bt-download lab with its reference client: the swarm case
# (a 1 MiB torrent from four peers, one slow) as its own run, netgrade's
# own overhead per run (each case is a whole run: namespace, five torrents
# made and hashed, the tracker and ten peers, the program, the checks), the
# wall time and peak memory of a whole graded submission (five cases), and
# of a batch.
#
#   bash bench/bt-download.sh [SUBMISSIONS] [JOBS]   (defaults: 10, 1 at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
jobs=${2:-1}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/env time -f '%M %e' -o "$out/one" \
  target/release/netgrade run bt-download fixtures/bt-download/reference --quiet \
  --json "$out/one.json" >/dev/null || true
subs=()
for _ in $(seq "$n"); do subs+=(fixtures/bt-download/reference); done
/usr/bin/env time -f '%M %e' -o "$out/time" \
  target/release/netgrade run bt-download "${subs[@]}" -j "$jobs" --quiet \
  --json "$out/report.json" >/dev/null || true
python3 - "$out" "$jobs" <<'PY'
import json, statistics, sys
out, jobs = sys.argv[1], sys.argv[2]
def usage(name):
    rss_kib, wall = open(f"{out}/{name}").read().split("\n")[-2].split()
    return float(wall), int(rss_kib) / 1024
def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
runs = json.load(open(f"{out}/report.json"))["runs"]
cases = [c for r in runs for c in r["cases"]]
full = sum(r["score"] == r["max_score"] for r in runs)
wall, rss = usage("one")
print(f"one submission (5 cases): {wall:.2f} s wall, peak RSS {rss:.1f} MiB")
swarm = [c for c in cases if c["id"] == "swarm"]
prog = [c["timing"]["program_ms"] for c in swarm]
total = [c["timing"]["total_ms"] for c in swarm]
over = [c["timing"]["overhead_ms"] for c in swarm]
print(f"swarm case (1 MiB, 4 peers): whole run median {statistics.median(total):.0f} ms "
      f"(p95 {p95(total):.0f}), the client {statistics.median(prog):.0f} ms, "
      f"netgrade's overhead {statistics.median(over):.1f} ms (p95 {p95(over):.1f})")
allover = [c["timing"]["overhead_ms"] for c in cases]
print(f"{len(runs)} submissions (-j {jobs}), {len(cases)} runs, full marks: {full}")
print(f"overhead per run: median {statistics.median(allover):.1f} ms, mean {statistics.mean(allover):.1f} ms, "
      f"p95 {p95(allover):.1f} ms, max {max(allover):.1f} ms")
wall, rss = usage("time")
print(f"whole batch: {wall:.2f} s wall, peak RSS {rss:.1f} MiB")
PY
