#!/bin/bash
# Build classhub's JupyterLab extension into the single-user package, on the host:
#   images/labextension (sources, package-lock.json)
#     -> images/singleuser/classhub_singleuser/labextension (committed; the wheel that
#        images/build.sh makes installs it as share/jupyter/labextensions/@classhub/...)
# The image build never runs Node.js (it must work offline): rebuild here and commit the
# result whenever src/, style/ or package*.json change.
#
# Reproducible: `npm ci` installs exactly package-lock.json; the builder (@jupyter/builder,
# JupyterLab 4.6's extension builder, which replaced @jupyterlab/builder) is pinned there,
# and the shared packages are resolved against the core package.json of the exact
# JupyterLab the image pins (images/singleuser/constraints.txt), read from its wheel.
# Needs: node >= 20, npm, pip (the npm registry and PyPI reachable).
#
# Usage: images/labextension/build.sh [--check]   --check: fail if the committed output
#                                                  differs from a fresh build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/images/singleuser/classhub_singleuser/labextension"
CONSTRAINTS="$ROOT/images/singleuser/constraints.txt"
log() { printf '[labextension %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The sources that make the build, and the JupyterLab pin: one sha256 line per file.
sources_hash() {
  (cd "$HERE" && sha256sum package.json package-lock.json src/*.js style/*.css)
  grep -E '^jupyterlab==' "$CONSTRAINTS" | sha256sum | sed 's/-$/jupyterlab-pin/'
}

# the Node.js major the committed build was made with (bootstrap installs Debian's nodejs)
node_major="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')"
[ "${node_major:-0}" -ge 20 ] || { log "Node.js 20 or later is needed (found: $(node --version 2>/dev/null || echo none))"; exit 1; }

version="$(grep -E '^jupyterlab==' "$CONSTRAINTS" | cut -d= -f3)"
[ -n "$version" ] || { log "no jupyterlab== pin in $CONSTRAINTS"; exit 1; }

PIP=(python3 -m pip)
[ -x "$ROOT/.venv/bin/pip" ] && PIP=("$ROOT/.venv/bin/pip")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log "JupyterLab $version: its core package.json"
"${PIP[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$work" "jupyterlab==$version" 2> >(grep -v "^WARNING: Location 'file:" >&2)
python3 - "$work"/jupyterlab-"$version"-*.whl "$work/core-package.json" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(sys.argv[2], "wb").write(z.read("jupyterlab/staging/package.json"))
PY

# Built in a fixed place, not where this checkout happens to be: webpack's output (the
# remoteEntry file's content hash) depends on the sources' absolute path, so a build in
# another clone differed from the committed one. One build at a time (the lock).
BUILD_ROOT=/tmp/classhub-labextension-build
exec 9>"$BUILD_ROOT.lock"
flock 9
rm -rf "$BUILD_ROOT"
mkdir -p "$BUILD_ROOT/labextension"
cp -a "$HERE/package.json" "$HERE/package-lock.json" "$HERE/src" "$HERE/style" \
  "$BUILD_ROOT/labextension/"
cd "$BUILD_ROOT/labextension"
log "npm ci"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
# package.json's outputDir (../singleuser/classhub_singleuser/labextension), here
BUILT="$BUILD_ROOT/singleuser/classhub_singleuser/labextension"
log "building in $BUILD_ROOT"
node node_modules/@jupyter/builder/lib/build-labextension.js \
  --core-package-file "$work/core-package.json" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; exit 1; }
# the build log names files of this machine; the assets are what is shipped
rm -f "$BUILT/build_log.json"
# what it was built from (tests/unit/test_labextension.py fails when the sources changed
# without a rebuild); not installed, only committed
sources_hash >"$BUILT/SOURCES.sha256"
if [ "${1:-}" = "--check" ]; then
  diff -r "$OUT" "$BUILT" >&2 || { log "the committed build differs from a fresh one: run $0 and commit its output"; exit 1; }
else
  rm -rf "$OUT"
  cp -a "$BUILT" "$OUT"
fi
rm -rf "$BUILD_ROOT"
log "done: $(find "$OUT" -type f | wc -l) files"
