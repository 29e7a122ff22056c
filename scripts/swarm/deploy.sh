#!/usr/bin/env bash
# Deploy classhub on a Docker Swarm (deploy/swarm/stack.yml): the hub, the gate, Traefik and
# the data services as stack services on the manager; the students' servers as services on
# the workers, made by the hub (SwarmClassroomSpawner).
#
#   1. bootstrap and build the images (unless CLASSHUB_SKIP_BUILD=1), as scripts/up.sh;
#   2. the settings and secrets: $RUN_DIR/classhub.env, seaweedfs/s3.json (scripts/up.sh
#      with CLASSHUB_ENV_ONLY=1), plus the S3 identity of saved homes; the hub's
#      environment for the stack, $RUN_DIR/swarm/hub.env (the stores at their service
#      names, without the stores' administrator credentials);
#   3. copy every image the stack and the catalogue name onto the nodes (no registry:
#      docker save | docker -H NODE load; skipped where the node has the same image);
#   4. docker stack deploy;
#   5. an identity per component in PostgreSQL, MongoDB and S3: one-shot Swarm services
#      on the data network running `classhub-stores`, the only ones that get the stores'
#      administrator credentials (removed when done);
#   6. wait for /hub/health through Traefik.
#
# Env:
#   CLASSHUB_SWARM_MANAGER   the manager's engine (default: this machine's, i.e. run this on
#                            the manager); e.g. unix:///var/tmp/chsw-ID/m/docker.sock
#   CLASSHUB_SWARM_WORKERS   the workers' engines, space-separated (ssh://node2 ...); each
#                            gets the catalogue's images
#   CLASSHUB_SWARM_ADDRESS   the manager's address for the health check (127.0.0.1)
#   CLASSHUB_DOCKER_SOCKET   the manager's socket as its containers bind it
#                            (/var/run/docker.sock; the one-machine Swarm: the node's own)
#   CLASSHUB_STACK           the stack's name (classhub)
#   CLASSHUB_HUB_IMAGE       the hub's image (classhub/hub:latest)
#   CLASSHUB_RUN_DIR (.run), CLASSHUB_SKIP_BUILD, CLASSHUB_UP_TIMEOUT (300 s), and the
#   first-run settings of scripts/up.sh (CLASSHUB_HTTP_PORT, CLASSHUB_STUDENT_DEFAULT_SERVER...)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
log() { printf '[deploy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

RUN_DIR="${CLASSHUB_RUN_DIR:-.run}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
export CLASSHUB_RUN_DIR="$RUN_DIR"
STACK="${CLASSHUB_STACK:-classhub}"
HUB_IMAGE="${CLASSHUB_HUB_IMAGE:-classhub/hub:latest}"
MANAGER="${CLASSHUB_SWARM_MANAGER:-}"
ADDRESS="${CLASSHUB_SWARM_ADDRESS:-127.0.0.1}"
TIMEOUT="${CLASSHUB_UP_TIMEOUT:-300}"
mgr() { if [ -n "$MANAGER" ]; then docker -H "$MANAGER" "$@"; else docker "$@"; fi; }

# ---------------------------------------------------------------- 1. images
bash scripts/bootstrap.sh
if [ "${CLASSHUB_SKIP_BUILD:-0}" != 1 ]; then
  bash images/build.sh
fi

# ---------------------------------------------------------------- 2. settings
CLASSHUB_ENV_ONLY=1 bash scripts/up.sh
ENV_FILE="$RUN_DIR/classhub.env"
get_var() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }
ensure_var() { grep -q "^$1=" "$ENV_FILE" || printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"; }
# the hub's identity for the saved homes (hub/stores/s3.py: "homes", keys homes/ only)
ensure_var CLASSHUB_SWARM_HOMES_S3_ACCESS_KEY "$(openssl rand -hex 10)"
ensure_var CLASSHUB_SWARM_HOMES_S3_SECRET_KEY "$(openssl rand -hex 32)"
# the classes service's identity for its helper services' jobs (keys helpers/classes/ only)
ensure_var CLASSHUB_S3_CLASSES_ACCESS_KEY "$(openssl rand -hex 10)"
ensure_var CLASSHUB_S3_CLASSES_SECRET_KEY "$(openssl rand -hex 32)"
# classhub-backup's token for the hub's backup API (hub/backup_api.py; scripts/swarm/backup.sh)
ensure_var CLASSHUB_BACKUP_API_TOKEN "$(openssl rand -hex 32)"
.venv/bin/classhub-stores --env-file "$ENV_FILE" s3-config --out "$RUN_DIR/seaweedfs/s3.json" \
  || die "could not write $RUN_DIR/seaweedfs/s3.json"

REDIS_URL="redis://:$(get_var REDIS_PASSWORD)@redis:6379/0"
mkdir -p "$RUN_DIR/swarm"
chmod 700 "$RUN_DIR/swarm"
SWARM_SOURCE="$RUN_DIR/swarm/classhub.env"
# the stack's own values win (the last of a repeated name): the stores at their names
{ cat "$ENV_FILE"; printf 'CLASSHUB_REDIS_URL=%s\nCLASSHUB_S3_ENDPOINT=http://s3:8333\n' "$REDIS_URL"; } \
  >"$SWARM_SOURCE"
chmod 600 "$SWARM_SOURCE"
.venv/bin/classhub-stores --env-file "$SWARM_SOURCE" hub-env --out "$RUN_DIR/swarm/hub.env" \
  --pg-address postgres:5432 --mongo-address mongo:27017 \
  || die "could not write $RUN_DIR/swarm/hub.env"
rm -f "$SWARM_SOURCE"

# ---------------------------------------------------------------- 3. images onto the nodes
CATALOGUE=()
while IFS= read -r image; do CATALOGUE+=("$image"); done < <(
  python3 - "$(get_var CLASSHUB_IMAGES)" "$(get_var CLASSHUB_SINGLEUSER_IMAGE)" <<'PY'
import json, sys
names = [i["name"] if isinstance(i, dict) else i for i in json.loads(sys.argv[1] or "[]")]
for name in dict.fromkeys([sys.argv[2], *names]):
    if name:
        print(name)
PY
)
STACK_IMAGES=("$HUB_IMAGE" classhub/traefik:latest classhub/postgres:latest
  classhub/redis:latest classhub/mongo:latest classhub/seaweedfs:latest)
# the services' helper services run on the worker that holds a home (snapshots, material,
# feedback: services/base/swarmhomes.py); the manager names it by ID
HELPER_IMAGE="$(get_var CLASSHUB_HOMES_HELPER_IMAGE)"
CATALOGUE+=("${HELPER_IMAGE:-classhub/homes-helper:latest}")
for image in "${STACK_IMAGES[@]}" "${CATALOGUE[@]}"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "image $image is not built here (images/build.sh)"
done
copy_images() { # ENGINE IMAGE...: the images that ENGINE does not have as they are here
  local engine=$1 image want
  shift
  local missing=()
  for image in "$@"; do
    want="$(docker image inspect -f '{{.Id}}' "$image")"
    [ "$(docker -H "$engine" image inspect -f '{{.Id}}' "$image" 2>/dev/null)" = "$want" ] \
      || missing+=("$image")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "copying ${missing[*]} onto $engine"
  docker save "${missing[@]}" | docker -H "$engine" load -q >/dev/null
}
if [ -n "$MANAGER" ]; then
  copy_images "$MANAGER" "${STACK_IMAGES[@]}" "${CATALOGUE[@]}"
fi
for worker in ${CLASSHUB_SWARM_WORKERS:-}; do
  copy_images "$worker" "${CATALOGUE[@]}"
done

# ---------------------------------------------------------------- 4. the stack
export CLASSHUB_SWARM_HUB_ENV="$RUN_DIR/swarm/hub.env"
export CLASSHUB_HUB_IMAGE="$HUB_IMAGE"
export CLASSHUB_REDIS_URL="$REDIS_URL"
export CLASSHUB_DOCKER_SOCKET="${CLASSHUB_DOCKER_SOCKET:-/var/run/docker.sock}"
export CLASSHUB_PUBLIC_PORT="$(get_var CLASSHUB_HTTP_PORT)"
export CLASSHUB_S3_BUCKET="$(get_var CLASSHUB_S3_BUCKET)"
export POSTGRES_PASSWORD="$(get_var POSTGRES_PASSWORD)"
export REDIS_PASSWORD="$(get_var REDIS_PASSWORD)"
export MONGO_ROOT_PASSWORD="$(get_var MONGO_ROOT_PASSWORD)"
[ -z "$CLASSHUB_S3_BUCKET" ] && unset CLASSHUB_S3_BUCKET

on_failure() {
  log "the stack did not come up; its services and their logs follow"
  mgr stack ps --no-trunc "$STACK" 2>&1 | head -40 || true
  local s
  for s in $(mgr stack services -q "$STACK" 2>/dev/null); do
    echo "===== $(mgr service inspect -f '{{.Spec.Name}}' "$s") (last 60 lines) ====="
    mgr service logs --no-task-ids --tail 60 "$s" 2>&1 || true
  done
  exit 1
}

log "docker stack deploy $STACK"
mgr stack deploy --resolve-image never --prune -c deploy/swarm/stack.yml "$STACK" >&2 \
  || on_failure

# ---------------------------------------------------------------- 5. identities in the stores
# one-shot services on the manager's data network with the administrator credentials (and
# only those services); retried while the store starts
ADMIN_ENV="$RUN_DIR/swarm/stores-admin.env"
( umask 077; grep -E '^(POSTGRES_PASSWORD|MONGO_ROOT_PASSWORD|S3_ADMIN_ACCESS_KEY|S3_ADMIN_SECRET_KEY|CLASSHUB_PG_[A-Z]+_PASSWORD|CLASSHUB_MONGO_[A-Z]+_PASSWORD|CLASSHUB_S3_BUCKET)=' \
    "$ENV_FILE" >"$ADMIN_ENV" )
setup() { # NAME ARGS...: start the one-shot service
  local name="$STACK-setup-$1"
  shift
  mgr service rm "$name" >/dev/null 2>&1 || true
  mgr service create --detach --quiet --name "$name" --network "${STACK}_data" \
    --constraint node.labels.classhub.role==manager --endpoint-mode dnsrr \
    --restart-condition on-failure --restart-delay 2s --restart-max-attempts 60 \
    --env-file "$ADMIN_ENV" --label classhub.setup=true \
    "$HUB_IMAGE" classhub-stores "$@" >/dev/null
}
setup postgres postgres --host postgres --port 5432 --admin-user classhub
setup mongo mongo --address mongo:27017
setup s3 s3-bucket --endpoint http://s3:8333
rm -f "$ADMIN_ENV"
deadline=$((SECONDS + TIMEOUT))
for store in postgres mongo s3; do
  name="$STACK-setup-$store"
  until mgr service ps --format '{{.CurrentState}}' "$name" 2>/dev/null | grep -q '^Complete'; do
    if [ $SECONDS -ge $deadline ]; then
      log "the set-up of $store did not finish within ${TIMEOUT}s:"
      mgr service logs --tail 30 "$name" >&2 || true
      on_failure
    fi
    sleep 2
  done
  mgr service logs --no-task-ids --raw "$name" 2>/dev/null | grep -v '^$' | tail -n 20 >&2 || true
  mgr service rm "$name" >/dev/null
done
log "identities set up in PostgreSQL, MongoDB and S3"
# the hub may have given up on its database while the identities were missing (Swarm
# restarts it, after a delay): a forced update starts it now, and waits until it is healthy
log "restarting the hub"
mgr service update --quiet --force "${STACK}_hub" >/dev/null || on_failure

# ---------------------------------------------------------------- 6. health
URL="http://$ADDRESS:$CLASSHUB_PUBLIC_PORT/hub/health"
log "waiting up to ${TIMEOUT}s for $URL"
deadline=$((SECONDS + TIMEOUT))
until curl -fs -o /dev/null --max-time 3 "$URL"; do
  [ $SECONDS -lt $deadline ] || { log "no answer from $URL after ${TIMEOUT}s"; on_failure; }
  sleep 1
done
log "hub is healthy through Traefik"

cat <<EOF

classhub is up on the Swarm (stack $STACK).
  URL:    http://$ADDRESS:$CLASSHUB_PUBLIC_PORT/
  Login:  user '$(get_var CLASSHUB_ADMIN_USER)', initial password $(get_var CLASSHUB_ADMIN_PASSWORD)
          (kept in $ENV_FILE)
  Tokens: docker exec \$(docker ps -q -f label=com.docker.swarm.service.name=${STACK}_hub) \\
            classhub-token --user alice --role student   (on the manager)
  Stop:   docker stack rm $STACK (keeps the volumes on the manager)
EOF
