#!/bin/bash
# Prepare this machine for classhub: system packages, a running Docker engine and the
# project's virtualenv (.venv). Idempotent and quick when everything is already there.
# Does not start or stop the host's PostgreSQL/Redis services (tests start their own).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo)"
  SUDO="sudo"
fi

# ---------------------------------------------------------------- system packages
# iproute2: ip and tc for bench/netlink.py (a client behind a shaped link)
# btrfs-progs: mkfs.btrfs for the filesystem of student homes (classhub-homes mount), and
# btrfs for an admin to look at it (the hub itself makes subvolumes with ioctls)
# libseccomp2: the tests start Chromium under a seccomp filter (harness/chromium_steady.py)
PACKAGES=(docker.io docker-compose debootstrap redis-server postgresql chromium curl ca-certificates openssl iproute2 btrfs-progs libseccomp2)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null; then
  missing+=(python3 python3-venv)
  PY=/usr/bin/python3
elif ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
# Node.js and npm for the JavaScript lint tools (ESLint, Prettier: package.json); any node
# already on PATH is kept (Debian 12's nodejs is 18.20, enough for the pinned tools)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # Packages' postinst may start services under an init; tests use their own instances,
  # and we do not touch whatever the host runs.
else
  log "system packages: present"
fi

# ---------------------------------------------------------------- docker engine
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  $SUDO bash -c 'setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -n 30 /var/log/dockerd.log >&2 || true; die "dockerd did not answer within 60 s"; }
  log "dockerd is up"
else
  log "docker engine: running"
fi

# ---------------------------------------------------------------- virtualenv
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
# Two packages, both editable: classhub itself and the single-user server's package
# (images/singleuser: the jupyter-server extension and the homes helper's command), whose
# tests run against a real jupyter-server.
STAMP=.venv/.classhub-install-stamp
want="$(cat pyproject.toml images/singleuser/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  # uv resolves and installs the same releases as pip (checked: identical `pip list`) in
  # about 10 s instead of about 100 s on a machine with no cache; pip only installs uv
  log "uv pip install -e '.[test,traefik]' -e 'images/singleuser[test]'"
  .venv/bin/pip install --quiet --disable-pip-version-check "uv>=0.9,<1" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
  [ -n "${SSL_CERT_FILE:-}" ] || [ ! -f /etc/ssl/certs/ca-certificates.crt ] || export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -e '.[test,traefik]' \
    -e 'images/singleuser[test]'
  # rfc3987-syntax (jsonschema[format-nongpl], through jupyter-events) compiles 39 Lark
  # grammars when jsonschema is imported: about 3 CPU-seconds of every hub start, every
  # service command and every test process, for an optional "iri" format check that
  # jsonschema skips without it (the images remove it too)
  .venv/bin/uv pip uninstall --quiet --python .venv/bin/python rfc3987-syntax lark
  echo "$want" >"$STAMP"
else
  log ".venv: up to date"
fi

# ---------------------------------------------------------------- node_modules
# the lint tools exactly as package-lock.json pins them; again when the lock file changes
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 18 || (a === 18 && b >= 18) ? 0 : 1)' \
  || die "Node.js $(node -v) is too old for ESLint 9: 18.18 or newer is needed"
NPM_STAMP=node_modules/.classhub-install-stamp
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$NPM_STAMP" ] || [ "$(cat "$NPM_STAMP")" != "$want" ]; then
  log "npm ci (node $(node -v))"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" >"$NPM_STAMP"
else
  log "node_modules: up to date"
fi
log "done"
