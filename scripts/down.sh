#!/bin/bash
# Stop the classhub stack: `docker-compose down` WITHOUT -v (volumes, i.e. all data, stay),
# then stop and remove this deployment's student containers (labels classhub.managed=true and
# classhub.deployment=$CLASSHUB_CONTAINER_PREFIX, default classhub); their volumes
# (students' home directories) stay too. The student network is left for the next `up`.
# CLASSHUB_KEEP_STUDENT_CONTAINERS=1: only stop student containers, do not remove them.
# CLASSHUB_PROJECT and CLASSHUB_RUN_DIR: another deployment's (as for scripts/up.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export COMPOSE_PROJECT_NAME="${CLASSHUB_PROJECT:-classhub}"
RUN_DIR="${CLASSHUB_RUN_DIR:-.run}"

log() { printf '[down %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
  log "docker engine not running: nothing to stop"
  exit 0
fi

ENV_FILE="$RUN_DIR/classhub.env"
if [ -f "$ENV_FILE" ]; then
  RUN_DIR="$(cd "$RUN_DIR" && pwd)"
  export CLASSHUB_RUN_DIR="$RUN_DIR"
  # the hub's env_file, made by up.sh: compose needs it to exist even to stop the stack
  [ -f "$RUN_DIR/hub.env" ] || (umask 077 && : >"$RUN_DIR/hub.env")
  COMPOSE_FILES=(-f docker-compose.yml)
  [ "$(cat .run/mode 2>/dev/null || echo online)" = offline ] && COMPOSE_FILES+=(-f docker-compose.offline.yml)
  log "docker-compose down (volumes kept)"
  docker-compose --env-file "$ENV_FILE" "${COMPOSE_FILES[@]}" down --remove-orphans
else
  log "no $ENV_FILE: the stack was never started by scripts/up.sh"
fi

# Only this deployment's student containers: test runs use other deployment names.
DEPLOYMENT="$(sed -n 's/^CLASSHUB_CONTAINER_PREFIX=//p' "$ENV_FILE" 2>/dev/null | tail -n1)"
DEPLOYMENT="${DEPLOYMENT:-${CLASSHUB_CONTAINER_PREFIX:-classhub}}"
FILTERS=(--filter label=classhub.managed=true --filter "label=classhub.deployment=$DEPLOYMENT")
ids="$(docker ps -aq "${FILTERS[@]}")"
if [ -n "$ids" ]; then
  log "stopping $(wc -w <<<"$ids") student container(s)"
  # shellcheck disable=SC2086
  docker stop -t 10 $ids >/dev/null
  # Containers started with auto-remove are gone by now; remove the rest (no -v: volumes stay).
  ids="$(docker ps -aq "${FILTERS[@]}")"
  if [ -n "$ids" ] && [ "${CLASSHUB_KEEP_STUDENT_CONTAINERS:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    docker rm $ids >/dev/null || true
  fi
fi
log "done"
