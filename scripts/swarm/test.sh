#!/usr/bin/env bash
# make test-swarm: the swarm tier (tests/swarm) on a real three-node Swarm made on this
# machine by scripts/swarm/nodes.sh. The tier's fixture removes its nodes itself; this trap
# removes whatever a killed run left behind (same run id), so nothing outlives the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CLASSHUB_SWARM_RUN_ID=${CLASSHUB_SWARM_RUN_ID:-s$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')}
# the whole-stack test (tests/swarm/test_swarm_stack.py) uses the id with "k" appended
cleanup() {
  local id
  for id in "$CLASSHUB_SWARM_RUN_ID" "${CLASSHUB_SWARM_RUN_ID}k"; do
    bash scripts/swarm/nodes.sh down "${id:0:6}" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT INT TERM
start=$(date +%s)
rc=0
.venv/bin/pytest -m swarm tests/swarm -p no:cacheprovider -s "$@" || rc=$?
echo "swarm tier: exit $rc after $(( $(date +%s) - start )) s"
exit $rc
