#!/bin/bash
# Grading a whole class on a Slurm cluster: a job array of 4 shards.
#
#   sbatch --export=ALL,LAB=udp-pinger ci/slurm-array.sh
#
# Each array task grades its share of the roster: netgrade reads
# SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT as its
# shard, so `run` needs no --shard. ROSTER has one folder per submission; each
# task writes RESULTS/shard-<task id>.json. When every task has finished,
# merge them into the reports of one whole run:
#
#   netgrade merge results/shard-*.json --json grades.json \
#     --junit grades.xml --csv grades.csv --summary grades.md
#
# netgrade needs root for the private network namespace of each program; as
# an ordinary user it grades on the node's own network, where two tasks on one
# node would compete for the lab's fixed ports. Where the site allows it, set
# NETGRADE="sudo -n /usr/local/bin/netgrade"; otherwise keep --exclusive.
#
#SBATCH --job-name=netgrade
#SBATCH --array=1-4
#SBATCH --exclusive
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=02:00:00
#SBATCH --output=netgrade-%A_%a.out
set -uo pipefail

LAB=${LAB:-udp-pinger}
ROSTER=${ROSTER:-${SLURM_SUBMIT_DIR:-.}/submissions}
RESULTS=${RESULTS:-${SLURM_SUBMIT_DIR:-.}/results}
NETGRADE=${NETGRADE:-netgrade}
mkdir -p "$RESULTS" || exit 3

# NETGRADE may be a command with arguments (sudo -n ...): split on purpose.
# shellcheck disable=SC2086
$NETGRADE run "$LAB" --each "$ROSTER" --quiet \
  --json "$RESULTS/shard-${SLURM_ARRAY_TASK_ID}.json"
status=$?
# Exit status 1 only means some student lost points: the shard is graded.
# 2 (usage or lab error) and 3 (internal error) fail the task.
if [ "$status" -le 1 ]; then
  exit 0
fi
echo "netgrade failed on task ${SLURM_ARRAY_TASK_ID} (exit status $status)" >&2
exit "$status"
