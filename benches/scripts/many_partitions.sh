#!/usr/bin/env bash
# Issue 6 target 5: N partitions on one broker — RSS with them open, start-up time (spawn to
# /readyz 200, which includes recovering every partition log) after a clean stop and after kill -9,
# and how long a clean stop (SIGTERM to exit) takes: first with the partitions just created, then
# with them idle since a clean start.
#
#   benches/scripts/many_partitions.sh [RUNNEL_BINARY] [PARTITIONS] [PER_TOPIC]
#
# Prints one line per measurement. Uses ports 19092 (Kafka) and 19644 (HTTP), or KAFKA_PORT and
# HTTP_PORT, and a temp dir. Gives up if the broker is not ready within 60 s.
set -euo pipefail
BIN=${1:-target/release/runnel}
PARTITIONS=${2:-10000}
PER_TOPIC=${3:-100}
DIR=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
KAFKA_PORT=${KAFKA_PORT:-19092} HTTP_PORT=${HTTP_PORT:-19644}
ARGS=(serve --override "log.dirs=$DIR/data" --override "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT"
      --override "runnel.http.listener=127.0.0.1:$HTTP_PORT")

# Whether GET /readyz answers 200 (bash's /dev/tcp, so no HTTP client is needed).
ready() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || return 1
  printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  read -r _ status _ <&3 || status=
  exec 3<&-
  [ "$status" = 200 ]
}

start() {
  local t0 t1
  t0=$(date +%s%N)
  "$BIN" "${ARGS[@]}" >"$DIR/out.log" 2>&1 &
  PID=$!
  until ready 2>/dev/null; do
    if ! kill -0 "$PID" 2>/dev/null || [ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge 60 ]; then
      echo "$1: the broker is not ready (its log: $DIR/out.log)" >&2
      cat "$DIR/out.log" >&2
      exit 1
    fi
    sleep 0.01
  done
  t1=$(date +%s%N)
  echo "$1 start_to_ready_ms=$(( (t1 - t0) / 1000000 ))"
}

# Sends SIGTERM and waits for the broker to exit (it closes every partition log on the way).
stop() {
  local t0
  t0=$(date +%s%N)
  kill -TERM "$PID"; wait "$PID" || true
  echo "$1 stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
}

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

start fresh
topics=$(( PARTITIONS / PER_TOPIC ))
for i in $(seq 1 "$topics"); do
  "$BIN" topic create "t$i" --partitions "$PER_TOPIC" -b "127.0.0.1:$KAFKA_PORT" >/dev/null
done
echo "created partitions=$PARTITIONS rss_mib=$(rss_mib) fds=$(ls /proc/$PID/fd | wc -l)"
sleep 2
echo "idle partitions=$PARTITIONS rss_mib=$(rss_mib)"
stop created
start after_clean_stop
echo "after_clean_stop rss_mib=$(rss_mib)"
stop idle_since_clean_start
start after_second_clean_stop
kill -KILL "$PID"; wait "$PID" 2>/dev/null || true
start after_kill9
echo "after_kill9 rss_mib=$(rss_mib)"
