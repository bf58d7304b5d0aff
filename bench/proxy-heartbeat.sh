#!/usr/bin/env bash
# Measures the webproxy and udp-heartbeat-server labs: one graded reference
# submission of each (its wall time, CPU time and peak memory, and
# netgrade's own overhead), and a batch of each with every verdict.
#
#   bash bench/proxy-heartbeat.sh [SUBMISSIONS] [JOBS]   (defaults: 8, 4 at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
jobs=${2:-4}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for lab in webproxy udp-heartbeat-server; do
  /usr/bin/env time -f '%M %e %U %S' -o "$out/$lab" \
    target/release/netgrade run "$lab" "fixtures/$lab/reference" --quiet \
    --json "$out/$lab.json" >/dev/null || true
  subs=()
  for _ in $(seq "$n"); do subs+=("fixtures/$lab/reference"); done
  /usr/bin/env time -f '%M %e %U %S' -o "$out/$lab-batch" \
    target/release/netgrade run "$lab" "${subs[@]}" -j "$jobs" --quiet \
    --json "$out/$lab-batch.json" >/dev/null || true
done
python3 - "$out" "$jobs" <<'PY'
import json, statistics, sys
out, jobs = sys.argv[1], sys.argv[2]
def usage(name):
    rss_kib, wall, user, sys_ = open(f"{out}/{name}").read().split("\n")[-2].split()
    return float(wall), int(rss_kib) / 1024, float(user) + float(sys_)
for lab in ["webproxy", "udp-heartbeat-server"]:
    run = json.load(open(f"{out}/{lab}.json"))["runs"][0]
    wall, rss, cpu = usage(lab)
    t = run["timing"]
    print(f"{lab}: {run['score']:g}/{run['max_score']:g}, {wall:.2f} s wall "
          f"(the program {t['program_ms'] / 1000:.2f} s, netgrade's overhead {t['overhead_ms']:.0f} ms), "
          f"{cpu:.2f} s CPU (netgrade and the program), peak RSS {rss:.1f} MiB")
    runs = json.load(open(f"{out}/{lab}-batch.json"))["runs"]
    full = sum(r["score"] == r["max_score"] for r in runs)
    over = [r["timing"]["overhead_ms"] for r in runs]
    wall, rss, cpu = usage(f"{lab}-batch")
    print(f"  {len(runs)} submissions (-j {jobs}): {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.1f} MiB, "
          f"overhead median {statistics.median(over):.0f} ms, full marks {full}/{len(runs)}")
PY
