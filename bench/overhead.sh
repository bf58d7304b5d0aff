#!/usr/bin/env bash
# Measures netgrade's own overhead per run: the wall time of a run minus the
# time the student's program was alive (both from the JSON report's `timing`),
# plus the peak memory of the whole netgrade process.
#
#   bash bench/overhead.sh [RUNS] [JOBS]     (defaults: 40 runs, 1 at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-40}
jobs=${2:-1}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
subs=()
for _ in $(seq "$runs"); do subs+=(fixtures/udp-pinger/reference); done
/usr/bin/env time -f '%M %e' -o "$out/time" \
  target/release/netgrade run bench/instant.yaml "${subs[@]}" -j "$jobs" --quiet \
  --json "$out/report.json" >/dev/null || true
python3 - "$out/report.json" "$out/time" "$jobs" <<'PY'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))["runs"]
rss_kib, wall = open(sys.argv[2]).read().split("\n")[-2].split()
over = sorted(r["timing"]["overhead_ms"] for r in runs)
prog = [r["timing"]["program_ms"] for r in runs]
full = sum(r["score"] == r["max_score"] for r in runs)
p95 = over[min(len(over) - 1, int(round(0.95 * (len(over) - 1))))]
print(f"runs: {len(runs)} (-j {sys.argv[3]}), full marks: {full}")
print(f"overhead per run: median {statistics.median(over):.1f} ms, mean {statistics.mean(over):.1f} ms, p95 {p95:.1f} ms, max {over[-1]:.1f} ms")
print(f"program time per run: median {statistics.median(prog):.1f} ms")
print(f"whole batch: {float(wall):.2f} s wall, peak RSS {int(rss_kib) / 1024:.1f} MiB")
PY
