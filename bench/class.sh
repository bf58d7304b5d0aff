#!/usr/bin/env bash
# Throughput of a whole class: N udp-pinger submissions (a roster folder of
# real fixtures: right, wrong and crashing clients in turn) graded by one
# netgrade at each -j given, then the best -j split into two shards run side
# by side on this machine, merged with `netgrade merge`.
#
#   bash bench/class.sh [N] ["J1 J2 …"]      (defaults: 200, "8 16 32")
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
jobs=${2:-"8 16 32"}
cargo build --release --quiet
bin=$PWD/target/release/netgrade
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mix=(reference short-timeout rtt-one-decimal no-timeout reference python2 rtt-int literal-time)
mkdir -p "$work/class"
for i in $(seq "$n"); do
  cp -r "fixtures/udp-pinger/${mix[$((i % ${#mix[@]}))]}" "$work/class/$(printf 's%04d' "$i")"
done
cd "$work"
# One process: wall time, peak RSS and submissions per minute. GNU time
# writes "Command exited with non-zero status 1" first when points were lost.
timed() {
  /usr/bin/env time -f '%e %M' -o "$1" "${@:2}" >/dev/null 2>&1 || true
  tail -n 1 "$1" > "$1.last" && mv "$1.last" "$1"
}
best=; best_wall=
echo "| how | wall | submissions/min | peak RSS | graded again |"
echo "|---|--:|--:|--:|--:|"
for j in $jobs; do
  timed t1 "$bin" run udp-pinger --each class -j "$j" -q --json "one-$j.json"
  read -r wall rss < t1
  python3 - "$n" "$wall" "$rss" "one process, -j $j" "one-$j.json" <<'PY'
import json, sys
n, wall, rss, how, report = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
runs = json.load(open(report))["runs"]
assert len(runs) == n, f"{len(runs)} runs, not {n}"
again = sum(any(x.startswith("regraded") for x in r["notes"]) for r in runs)
print(f"| {how} | {wall:.1f} s | {60 * n / wall:.0f} | {rss / 1024:.0f} MiB | {again} |")
PY
  if [ -z "$best_wall" ] || python3 -c "import sys; sys.exit(not $wall < $best_wall)"; then
    best=$j; best_wall=$wall
  fi
done
# Two shards side by side, each with half the best -j, then each with all of it.
for per in $((best / 2)) "$best"; do
  start=$(date +%s.%N)
  timed t2a "$bin" run udp-pinger --each class -j "$per" -q --shard 1/2 --json shard-1.json &
  timed t2b "$bin" run udp-pinger --each class -j "$per" -q --shard 2/2 --json shard-2.json &
  wait
  graded=$(date +%s.%N)
  "$bin" merge shard-1.json shard-2.json --json merged.json --junit merged.xml --csv merged.csv >/dev/null || true
  done_at=$(date +%s.%N)
  read -r _ rss_a < t2a
  read -r _ rss_b < t2b
  python3 - "$n" "$start" "$graded" "$done_at" "$rss_a" "$rss_b" "two shards side by side, -j $per each" <<'PY'
import json, sys
n = int(sys.argv[1]); start, graded, end = map(float, sys.argv[2:5]); rss = int(sys.argv[5]) + int(sys.argv[6])
runs = json.load(open("merged.json"))["runs"]
assert len(runs) == n, f"{len(runs)} runs merged, not {n}"
wall = end - start
again = sum(any(x.startswith("regraded") for x in r["notes"]) for r in runs)
print(f"| {sys.argv[7]} (merge {1000 * (end - graded):.0f} ms) | {wall:.1f} s | {60 * n / wall:.0f} | {rss / 1024:.0f} MiB (both) | {again} |")
PY
done
# Grades agree: the merged shards and the single run, check by check.
python3 - "one-$best.json" merged.json <<'PY'
import json, sys
def grades(path):
    return sorted((r["submission"], [(c["id"], c["status"]) for c in r["checks"]]) for r in json.load(open(path))["runs"])
a, b = grades(sys.argv[1]), grades(sys.argv[2])
same = sum(x == y for x, y in zip(a, b))
print(f"\nsame verdicts in the merged shards as in one process: {same} of {len(a)} submissions")
PY
