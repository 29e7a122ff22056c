#!/bin/bash
# Backups of the deployment that scripts/up.sh made: `make backup`, `make restore`,
# `make restore-home`, `make backups` (docs/admin-guide.md, "Backups and restores").
#
#   scripts/backup.sh backup [--only postgres,mongo,s3,homes]
#   scripts/backup.sh list | verify [BACKUP]
#   scripts/backup.sh restore BACKUP [--only ...]     stops the hub and student servers first
#   scripts/backup.sh restore-home BACKUP --user NAME [--server NAME]
#
# It runs classhub-backup (.venv) on the host as root, with the stores' addresses and
# administrator credentials from .run/classhub.env in its environment (never on a command
# line, never in a log). Env: CLASSHUB_BACKUP_DIR (/var/backups/classhub),
# CLASSHUB_BACKUP_KEEP (7), CLASSHUB_BACKUP_TIMEOUT (3600), CLASSHUB_PROJECT and
# CLASSHUB_RUN_DIR (another deployment's, as for scripts/up.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export COMPOSE_PROJECT_NAME="${CLASSHUB_PROJECT:-classhub}"
RUN_DIR="${CLASSHUB_RUN_DIR:-.run}"
ENV_FILE="$RUN_DIR/classhub.env"

log() { printf '[backup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run it as root (it reads every home and the stores' data)"
[ -f "$ENV_FILE" ] || die "no $ENV_FILE: this machine has no deployment made by make up"
[ -x .venv/bin/classhub-backup ] || die ".venv/bin/classhub-backup is missing: run make bootstrap"
command -v pg_dump >/dev/null || die "pg_dump is missing: run make bootstrap (Debian package postgresql)"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
export CLASSHUB_RUN_DIR="$RUN_DIR"
get_var() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }
# a password travels on stdin, never on a command line (ps shows those)
urlquote() { printf '%s' "$1" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read(), safe=""))'; }

# the settings of classhub-backup (backup/settings.py): only in this process's environment
export CLASSHUB_CONTAINER_PREFIX="$(get_var CLASSHUB_CONTAINER_PREFIX)"
export CLASSHUB_HOMES_DIR="$(get_var CLASSHUB_HOMES_DIR)"
# a restored home that does not exist yet gets this limit (make restore-home QUOTA=5G)
export CLASSHUB_HOME_QUOTA="${CLASSHUB_RESTORE_QUOTA:-$(get_var CLASSHUB_HOME_QUOTA)}"
export CLASSHUB_BACKUP_PG_URL="postgresql://classhub:$(urlquote "$(get_var POSTGRES_PASSWORD)")@127.0.0.1:$(get_var CLASSHUB_PG_PORT)/jupyterhub"
export CLASSHUB_BACKUP_MONGO_URL="mongodb://root:$(urlquote "$(get_var MONGO_ROOT_PASSWORD)")@127.0.0.1:$(get_var CLASSHUB_MONGO_PORT)/?authSource=admin"
export CLASSHUB_BACKUP_S3_ENDPOINT="http://127.0.0.1:$(get_var CLASSHUB_S3_PORT)"
export CLASSHUB_BACKUP_S3_ACCESS_KEY="$(get_var S3_ADMIN_ACCESS_KEY)"
export CLASSHUB_BACKUP_S3_SECRET_KEY="$(get_var S3_ADMIN_SECRET_KEY)"
BACKUP_DIR="${CLASSHUB_BACKUP_DIR:-/var/backups/classhub}"
export CLASSHUB_BACKUP_DIR="$BACKUP_DIR"

COMPOSE_FILES=(-f docker-compose.yml)
[ "$(cat .run/mode 2>/dev/null || echo online)" = offline ] && COMPOSE_FILES+=(-f docker-compose.offline.yml)
dc() { docker-compose --env-file "$ENV_FILE" "${COMPOSE_FILES[@]}" "$@"; }

command="${1:-}"
[ -n "$command" ] || die "usage: scripts/backup.sh backup|list|verify|restore|restore-home ..."
shift

case "$command" in
  backup)
    # beside the data: the deployment's settings and secrets, and the hub's state (its
    # cookie secret): a new machine needs them to use the data (docs: "On a new machine")
    include=(--include "classhub.env=$ENV_FILE")
    hub_data="$(docker volume inspect -f '{{.Mountpoint}}' "${COMPOSE_PROJECT_NAME}_hub-data" 2>/dev/null || true)"
    [ -z "$hub_data" ] || include+=(--include "hub-data=$hub_data")
    exec .venv/bin/classhub-backup backup "${include[@]}" "$@"
    ;;
  restore)
    [ -n "${1:-}" ] || die "which backup? make restore BACKUP=20261206T020000Z (or latest; make backups lists them)"
    # nothing may write while the stores are replaced: the hub (and its services) and
    # every student server stop; the data stores keep running
    log "stopping the hub, the owner gate and this deployment's student servers"
    dc stop hub gate >/dev/null
    ids="$(docker ps -q --filter label=classhub.managed=true --filter "label=classhub.deployment=$CLASSHUB_CONTAINER_PREFIX")"
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker stop -t 10 $ids >/dev/null
    rc=0
    .venv/bin/classhub-backup restore "$@" || rc=$?
    log "starting the hub and the owner gate again"
    dc start gate hub >/dev/null
    exit "$rc"
    ;;
  list|verify|restore-home)
    exec .venv/bin/classhub-backup "$command" "$@"
    ;;
  *)
    die "unknown command $command (backup, list, verify, restore, restore-home)"
    ;;
esac
