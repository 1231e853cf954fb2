#!/usr/bin/env bash
# Idempotent installer for the real-client test suite (tests/clients).
# Installs: a Python venv at tests/clients/.venv (requirements.txt), kafkajs via npm
# (package.json + package-lock.json), and Debian's kcat. Downloads only from PyPI, npm and
# Debian; no prebuilt binaries. Quiet on success, loud and non-zero on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

log() { echo "install.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a command quietly; on failure show its output and stop.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "command failed: $*"
  fi
}

# --- Python venv -------------------------------------------------------------------------
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found"
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  quiet "$PY" -m venv .venv
fi
req_hash="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ "$(cat .venv/.req-hash 2>/dev/null || true)" != "$req_hash" ]]; then
  log "pip install -r requirements.txt"
  quiet .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$req_hash" > .venv/.req-hash
fi
quiet .venv/bin/python -c 'import confluent_kafka, kafka, aiokafka, lz4, zstandard, cramjam'

# --- kafkajs -------------------------------------------------------------------------------
command -v npm >/dev/null || die "npm not found"
npm_hash() { cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1 || true; }
lock_hash="$(npm_hash)"
if [[ ! -d node_modules/kafkajs || "$(cat node_modules/.lock-hash 2>/dev/null || true)" != "$lock_hash" ]]; then
  if [[ -f package-lock.json ]]; then
    log "npm ci"
    quiet npm ci --no-audit --no-fund --loglevel=error
  else
    log "npm install (creating package-lock.json)"
    quiet npm install --no-audit --no-fund --loglevel=error
    lock_hash="$(npm_hash)"
  fi
  echo "$lock_hash" > node_modules/.lock-hash
fi
quiet node -e 'require("kafkajs"); require("kafkajs-snappy")'

# --- kcat (Debian) -------------------------------------------------------------------------
if ! command -v kcat >/dev/null; then
  log "apt-get install kcat"
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update
  quiet apt-get install -y -q kcat
fi
command -v kcat >/dev/null || die "kcat still missing after apt-get"
