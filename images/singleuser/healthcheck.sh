#!/bin/bash
# Docker HEALTHCHECK for classhub single-user containers (set by ClassroomSpawner).
#
# Traefik routes to a container only once Docker calls it "healthy", so this probe
# decides when students stop seeing the hub's pending page and start reaching their
# server. Docker (20.10) runs the first probe one interval after start and then one
# interval after each probe ends, so the spawner uses a short interval and this script:
#   - before the first success: polls the server every 50 ms and returns as soon as it
#     answers, so "healthy" follows readiness within ~50 ms;
#   - after that: sleeps, then checks once, so a running container costs one exec
#     every ~30 s instead of several per second.
# It only uses bash built-ins (/dev/tcp, read -t on a private pipe as a sleep), so
# polling forks no process: a class starting at once must not pay for its probes.
set -u
exec {waitfd}<> <(:)
nap() { read -r -t "$1" -u "$waitfd" _ || true; }
port="${CLASSHUB_PORT:-8888}"
prefix="${JUPYTERHUB_SERVICE_PREFIX:-/}"
marker="/tmp/.classhub-healthy"
steady_sleep="${CLASSHUB_HEALTH_STEADY_SLEEP:-25}"

check() {
    local status
    exec 3<>"/dev/tcp/127.0.0.1/${port}" 2>/dev/null || return 1
    printf 'GET %sapi HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$prefix" >&3
    IFS= read -r -t 2 status <&3 || { exec 3>&-; return 1; }
    exec 3>&-
    [[ "$status" == HTTP/1.[01]\ 200* ]]
}

if [[ -e "$marker" ]]; then
    nap "$steady_sleep"
    check
    exit $?
fi

deadline=$((SECONDS + ${CLASSHUB_HEALTH_START_TIMEOUT:-55}))
while (( SECONDS < deadline )); do
    if check; then
        : > "$marker" 2>/dev/null || true
        exit 0
    fi
    nap 0.05
done
exit 1
