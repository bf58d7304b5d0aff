#!/usr/bin/env bash
# Measures the bt-seed lab: one graded submission (two instances of the
# seeder side by side, four leech probes, a swarm download, and the 9 s
# crowd of eight leechers that judges tit-for-tat), its wall time, CPU time
# and peak memory, netgrade's own overhead, and a batch.
#
#   bash bench/bt-seed.sh [SUBMISSIONS] [JOBS]   (defaults: 8, 4 at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
jobs=${2:-4}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for sub in reference tit-for-tat; do
  /usr/bin/env time -f '%M %e %U %S' -o "$out/$sub" \
    target/release/netgrade run bt-seed "fixtures/bt-seed/$sub" --quiet \
    --json "$out/$sub.json" >/dev/null || true
done
subs=()
for _ in $(seq "$n"); do subs+=(fixtures/bt-seed/tit-for-tat); done
/usr/bin/env time -f '%M %e %U %S' -o "$out/batch" \
  target/release/netgrade run bt-seed "${subs[@]}" -j "$jobs" --quiet \
  --json "$out/batch.json" >/dev/null || true
python3 - "$out" "$jobs" <<'PY'
import json, statistics, sys
out, jobs = sys.argv[1], sys.argv[2]
def usage(name):
    rss_kib, wall, user, sys_ = open(f"{out}/{name}").read().split("\n")[-2].split()
    return float(wall), int(rss_kib) / 1024, float(user) + float(sys_)
for sub in ["reference", "tit-for-tat"]:
    run = json.load(open(f"{out}/{sub}.json"))["runs"][0]
    wall, rss, cpu = usage(sub)
    t = run["timing"]
    print(f"{sub}: {run['score']:g}/{run['max_score']:g}, {wall:.2f} s wall "
          f"(the program {t['program_ms'] / 1000:.2f} s, netgrade's overhead {t['overhead_ms']:.0f} ms), "
          f"{cpu:.2f} s CPU (netgrade and the seeders), peak RSS {rss:.1f} MiB")
runs = json.load(open(f"{out}/batch.json"))["runs"]
passed = sum(any(c["id"] == "tit-for-tat" and c["status"] == "pass" for c in r["checks"]) for r in runs)
over = [r["timing"]["overhead_ms"] for r in runs]
wall, rss, cpu = usage("batch")
print(f"{len(runs)} submissions (-j {jobs}): {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.1f} MiB, "
      f"overhead median {statistics.median(over):.0f} ms, tit-for-tat passed {passed}/{len(runs)}")
PY
