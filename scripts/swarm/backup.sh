#!/usr/bin/env bash
# Backups of a Swarm stack (deploy/swarm/; docs/admin-guide.md "Backups of a Swarm"). Run it
# on the manager, as root:
#
#   scripts/swarm/backup.sh backup [--only postgres,mongo,s3,homes]
#   scripts/swarm/backup.sh list | verify [BACKUP]
#   scripts/swarm/backup.sh restore-home BACKUP --user NAME [--server NAME]
#   scripts/swarm/backup.sh restore BACKUP [--only ...]
#
# classhub-backup (backup/) runs as a one-shot Swarm service on the manager, from the hub's
# image (it has pg_dump), on the stack's data network (the stores, at their service names)
# and its core network (the hub's API, as `hub-api`, for the homes: backup/swarm.py), with
# the stores' administrator credentials and the backup token in that service's environment
# only (an env file of mode 0600, removed once the service is made; never on a command
# line). The backups go into CLASSHUB_BACKUP_DIR on the manager, one folder per backup,
# with the deployment's settings (classhub.env) and the hub's state (hub-data) beside them.
#
# `restore` is for a stack with nothing to keep (after a disaster: a fresh deploy.sh with the
# backed-up classhub.env as $RUN_DIR/classhub.env): it stops the hub and the gate, removes
# every student server's service, restores, compares every checksum and starts the hub again.
#
# Env: CLASSHUB_SWARM_MANAGER, CLASSHUB_STACK, CLASSHUB_RUN_DIR, CLASSHUB_HUB_IMAGE (as for
# deploy.sh); CLASSHUB_BACKUP_DIR (/var/backups/classhub), CLASSHUB_BACKUP_KEEP (7),
# CLASSHUB_BACKUP_TIMEOUT (3600 s per step), CLASSHUB_RESTORE_QUOTA (a restored home's limit),
# CLASSHUB_BACKUP_REMOTE and CLASSHUB_BACKUP_REMOTE_* (a bucket that keeps every backup too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
log() { printf '[swarm-backup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

RUN_DIR="${CLASSHUB_RUN_DIR:-.run}"
ENV_FILE="$RUN_DIR/classhub.env"
STACK="${CLASSHUB_STACK:-classhub}"
HUB_IMAGE="${CLASSHUB_HUB_IMAGE:-classhub/hub:latest}"
MANAGER="${CLASSHUB_SWARM_MANAGER:-}"
BACKUP_DIR="${CLASSHUB_BACKUP_DIR:-/var/backups/classhub}"
mgr() { if [ -n "$MANAGER" ]; then docker -H "$MANAGER" "$@"; else docker "$@"; fi; }

[ "$(id -u)" = 0 ] || die "run it as root (the backups hold every student's work)"
[ -f "$ENV_FILE" ] || die "no $ENV_FILE: this is not the run folder of a deploy.sh"
case "$BACKUP_DIR" in /*) ;; *) die "CLASSHUB_BACKUP_DIR must be an absolute path" ;; esac
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
ENV_FILE="$RUN_DIR/classhub.env"
get_var() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }
# a password travels on stdin, never on a command line (ps shows those)
urlquote() { printf '%s' "$1" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))'; }
[ -n "$(get_var CLASSHUB_BACKUP_API_TOKEN)" ] \
  || die "$ENV_FILE has no CLASSHUB_BACKUP_API_TOKEN: run scripts/swarm/deploy.sh once more (it adds it)"

command="${1:-}"
[ -n "$command" ] || die "usage: scripts/swarm/backup.sh backup|list|verify|restore|restore-home ..."
shift
case "$command" in backup|list|verify|restore|restore-home) ;; *) die "unknown command $command" ;; esac

mkdir -p "$BACKUP_DIR"
chmod 700 "$BACKUP_DIR"
mkdir -p "$RUN_DIR/swarm"
# one run at a time (a nightly backup beside an admin's restore-home): they share the job's
# name and its env file
exec 9>"$RUN_DIR/swarm/backup.lock"
flock -n 9 || die "another scripts/swarm/backup.sh runs for this stack; wait for it to end"

# classhub-backup's settings (backup/settings.py), for the one-shot service only
JOB_ENV="$RUN_DIR/swarm/backup-job.env"
trap 'rm -f "$JOB_ENV"' EXIT
(
  umask 077
  cat >"$JOB_ENV" <<EOF
CLASSHUB_CONTAINER_PREFIX=$(get_var CLASSHUB_CONTAINER_PREFIX)
CLASSHUB_HOMES_DIR=
CLASSHUB_HOME_QUOTA=${CLASSHUB_RESTORE_QUOTA:-$(get_var CLASSHUB_HOME_QUOTA)}
CLASSHUB_BACKUP_DIR=/backups
CLASSHUB_BACKUP_KEEP=${CLASSHUB_BACKUP_KEEP:-7}
CLASSHUB_BACKUP_TIMEOUT=${CLASSHUB_BACKUP_TIMEOUT:-3600}
CLASSHUB_BACKUP_PG_URL=postgresql://classhub:$(urlquote "$(get_var POSTGRES_PASSWORD)")@postgres:5432/jupyterhub
CLASSHUB_BACKUP_MONGO_URL=mongodb://root:$(urlquote "$(get_var MONGO_ROOT_PASSWORD)")@mongo:27017/?authSource=admin
CLASSHUB_BACKUP_S3_ENDPOINT=http://s3:8333
CLASSHUB_BACKUP_S3_ACCESS_KEY=$(get_var S3_ADMIN_ACCESS_KEY)
CLASSHUB_BACKUP_S3_SECRET_KEY=$(get_var S3_ADMIN_SECRET_KEY)
CLASSHUB_BACKUP_HUB_URL=http://hub-api:8081/hub/api
CLASSHUB_BACKUP_API_TOKEN=$(get_var CLASSHUB_BACKUP_API_TOKEN)
CLASSHUB_BACKUP_REMOTE=${CLASSHUB_BACKUP_REMOTE:-}
CLASSHUB_BACKUP_REMOTE_ENDPOINT=${CLASSHUB_BACKUP_REMOTE_ENDPOINT:-}
CLASSHUB_BACKUP_REMOTE_ACCESS_KEY=${CLASSHUB_BACKUP_REMOTE_ACCESS_KEY:-}
CLASSHUB_BACKUP_REMOTE_SECRET_KEY=${CLASSHUB_BACKUP_REMOTE_SECRET_KEY:-}
CLASSHUB_BACKUP_HOMES_BUCKET=$(b="$(get_var CLASSHUB_S3_BUCKET)"; echo "${b:-classhub-files}")
EOF
)

JOB="$STACK-backup-job"
run_job() { # ARGS...: classhub-backup ARGS in the one-shot service; its exit status
  local mounts=(--mount "type=bind,src=$BACKUP_DIR,dst=/backups")
  if [ "$1" = backup ]; then
    mounts+=(--mount "type=bind,src=$ENV_FILE,dst=/run/classhub/classhub.env,readonly"
      --mount "type=volume,src=${STACK}_hub-data,dst=/run/classhub/hub-data,readonly")
    set -- backup --include classhub.env=/run/classhub/classhub.env \
      --include hub-data=/run/classhub/hub-data "${@:2}"
  fi
  mgr service rm "$JOB" >/dev/null 2>&1 || true
  # (called as `run_job ... || rc=$?`, where set -e does not act: every failure is checked)
  if ! mgr service create --detach --quiet --name "$JOB" \
    --network "${STACK}_data" --network "${STACK}_core" \
    --constraint node.labels.classhub.role==manager --endpoint-mode dnsrr \
    --restart-condition none --env-file "$JOB_ENV" --label classhub.backup=true \
    "${mounts[@]}" "$HUB_IMAGE" classhub-backup "$@" >/dev/null; then
    rm -f "$JOB_ENV"
    log "the one-shot service $JOB could not be made (is the stack $STACK deployed?)"
    return 1
  fi
  # the values stay in the service's spec (docker service inspect) until it is removed below
  rm -f "$JOB_ENV"
  local state="" deadline=$((SECONDS + ${CLASSHUB_BACKUP_TIMEOUT:-3600} * 4)) unseen=0
  while :; do
    state="$(mgr service ps --no-trunc --format '{{.CurrentState}}|{{.Error}}' "$JOB" 2>/dev/null | head -n1 || true)"
    case "$state" in Complete*|Failed*|Rejected*|Shutdown*|Orphaned*) break ;; esac
    if [ -z "$state" ]; then
      unseen=$((unseen + 1))
      [ $unseen -lt 60 ] || { state="never scheduled"; break; }
    fi
    [ $SECONDS -lt $deadline ] || { state="timed out"; break; }
    sleep 1
  done
  mgr service logs --no-task-ids --raw "$JOB" 2>&1 | grep -v '^$' >&2 || true
  mgr service rm "$JOB" >/dev/null 2>&1 || true
  case "$state" in
    Complete*) return 0 ;;
    *"exit (2)"*) log "classhub-backup ended with problems (exit 2)"; return 2 ;;
    *) log "classhub-backup failed: $state"; return 1 ;;
  esac
}

case "$command" in
  backup|list|verify|restore-home)
    rc=0
    run_job "$command" "$@" || rc=$?
    exit "$rc"
    ;;
  restore)
    [ -n "${1:-}" ] || die "which backup? scripts/swarm/backup.sh restore 20261206T020000Z (or latest)"
    # nothing may write while the stores are replaced: the hub and the gate stop, and every
    # student server of this stack is removed (a restore replaces their homes anyway)
    log "stopping the hub and the gate"
    mgr service scale --detach=false "${STACK}_hub=0" "${STACK}_gate=0" >/dev/null
    prefix="$(get_var CLASSHUB_CONTAINER_PREFIX)"
    ids="$(mgr service ls -q --filter label=classhub.managed=true \
      --filter "label=classhub.deployment=${prefix:-classhub}")"
    if [ -n "$ids" ]; then
      log "removing the student servers' services"
      # shellcheck disable=SC2086
      mgr service rm $ids >/dev/null
    fi
    rc=0
    run_job restore "$@" || rc=$?
    if [ "$rc" = 1 ]; then
      # refused or failed: the stores may be partly restored; nothing serves them until an
      # admin has looked (the message above says why)
      log "the restore did not finish: the hub and the gate stay stopped. Fix what it says and"
      log "run it again, or start them as they are: docker service scale ${STACK}_gate=1 ${STACK}_hub=1"
      exit 1
    fi
    log "starting the hub and the gate again"
    mgr service scale --detach=false "${STACK}_gate=1" "${STACK}_hub=1" >/dev/null
    exit "$rc"
    ;;
esac
