#!/usr/bin/env bash
# Fuzz campaigns against the reference servers: every `fuzz_campaign_*` unit
# test, in release mode, one at a time. Each sends NETGRADE_FUZZ_INPUTS
# damaged inputs (default 1000000) from a fixed seed to its server on
# loopback, checks that a correct client is still served correctly, and
# prints the inputs, the crashes (panics, failed correct-client checks) and
# the process's resident memory before and after.
#
#   bench/fuzz.sh                              # a million inputs per server
#   NETGRADE_FUZZ_INPUTS=200000 bench/fuzz.sh  # a shorter campaign
#   bench/fuzz.sh http                         # only fuzz_campaign_http*
set -euo pipefail
cd "$(dirname "$0")/.."
export NETGRADE_FUZZ_INPUTS="${NETGRADE_FUZZ_INPUTS:-1000000}"
exec cargo test --release --lib -- --ignored "fuzz_campaign_${1:-}" --nocapture --test-threads=1
