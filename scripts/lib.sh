# Shared set-up for scripts/demo and scripts/test: Python package, Debian packages, Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

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
