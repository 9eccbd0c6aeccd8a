# Shared set-up for scripts/demo, scripts/test, scripts/lock and scripts/test-releases: the
# project's own virtual environment installed from the lock, Debian packages, Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The environment and the pins it is installed from; scripts/test-releases points both elsewhere.
VENV="${RESPONDER_VENV:-$ROOT/.venv}"
LOCK="${RESPONDER_LOCK:-$ROOT/requirements.lock}"
# The interpreter that creates the environment (3.11 or newer); everything after runs in the environment.
BASE_PYTHON="${PYTHON:-python3}"
PYTHON="$VENV/bin/python"
UV_VERSION="0.13.9"  # scripts/lock and scripts/test-releases resolve with this uv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# pip_install ARGS...: pip in the environment, without the noise of index locations this
# machine's pip configuration names but does not have; pip's own exit status is kept.
pip_install() {
  "$PYTHON" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

# ensure_env EXTRAS: create the environment when missing and install the package (editable,
# with EXTRAS such as "[test]") pinned by the lock. Skipped when the lock, pyproject.toml and
# EXTRAS are those of the last install, so a second run starts in seconds.
ensure_env() {
  local extras="$1"
  if [ ! -x "$PYTHON" ]; then
    echo "setup: creating the project environment $VENV ($("$BASE_PYTHON" --version))"
    "$BASE_PYTHON" -m venv "$VENV"
  fi
  local want stamp="$VENV/.responder-installed"
  want="$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) $extras"
  # An install with the test extras also serves the demo, which needs none.
  if [ -f "$stamp" ] && { [ "$(cat "$stamp")" = "$want" ] || [ "$(cat "$stamp")" = "${want% *} [test]" ]; }; then
    return 0
  fi
  echo "setup: installing responder$extras into $VENV from $(basename "$LOCK")"
  rm -f "$stamp"
  # setuptools first, from the lock: the package is built without an isolated build
  # environment, so the build backend is pinned as well.
  pip_install -c "$LOCK" setuptools
  pip_install -c "$LOCK" --no-build-isolation -e "$ROOT$extras"
  echo "$want" >"$stamp"
}

# apt_need PACKAGE COMMAND: install PACKAGE from Debian when COMMAND is not on PATH.
apt_need() {
  if ! command -v "$2" >/dev/null 2>&1; then
    echo "setup: installing $1 (apt-get)"
    if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  fi
}

# ensure_redis HOST PORT: start redis-server there when nothing answers.
ensure_redis() {
  local host="$1" port="$2"
  if redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then return 0; fi
  echo "setup: starting redis-server on $host:$port"
  redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
    --dir /tmp --logfile "/tmp/responder-redis-$port.log"
  for _ in $(seq 50); do
    redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "setup: redis-server did not answer on $host:$port" >&2
  return 1
}

# ensure_uv: the pinned uv, in the environment, for resolving.
ensure_uv() {
  if [ ! -x "$PYTHON" ]; then "$BASE_PYTHON" -m venv "$VENV"; fi
  if [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    pip_install "uv==$UV_VERSION"
  fi
}

# compile_lock OUTPUT [UV OPTIONS...]: resolve pyproject.toml's dependencies, its test extras and
# the build backend into pins at OUTPUT, for every platform and Python >= 3.11.
compile_lock() {
  local output="$1"
  shift
  ensure_uv
  "$VENV/bin/uv" pip compile "$ROOT/pyproject.toml" --extra test --group build \
    --universal --python-version 3.11 --quiet \
    --custom-compile-command "scripts/lock" -o "$output" "$@"
}
