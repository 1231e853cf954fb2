#!/usr/bin/env bash
# Real-client test suite: runs every client scenario (confluent-kafka, kafka-python, aiokafka,
# kafkajs, kcat) against one broker and prints `N passed, M failed` as its last line.
#
#   tests/clients/run.sh                     # starts target/debug/runnel (or $RUNNEL_BIN)
#   BOOTSTRAP=host:port tests/clients/run.sh # uses an already running Kafka-compatible broker
#   MESSAGES=10000 tests/clients/run.sh      # fewer messages per scenario (default 100000)
#   CLIENTS="kcat confluent" tests/clients/run.sh  # a subset
#   PROXY_LISTEN=host:port PROXY_UPSTREAM=host:port  # with BOOTSTRAP: where faultproxy.py listens
#                                            # and the broker listener advertising that address
#
# Builds nothing. Kills only the broker process it started itself.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

export MESSAGES="${MESSAGES:-100000}"
export RUN_ID="${RUN_ID:-$(date +%s)-$$}"
SCENARIO_TIMEOUT_S="${SCENARIO_TIMEOUT_S:-300}"
CLIENTS="${CLIENTS:-confluent kafka-python aiokafka kafkajs kcat groups-confluent groups-kafka-python groups-aiokafka groups-kafkajs}"

"$HERE/install.sh"
PY="$HERE/.venv/bin/python"

BROKER_PID=""
TMP_DIR="$(mktemp -d -t runnel-clients.XXXXXX)"
cleanup() {
  if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP_DIR"
}
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

if [[ -z "${BOOTSTRAP:-}" ]]; then
  BIN="${RUNNEL_BIN:-$ROOT/target/debug/runnel}"
  if [[ ! -x "$BIN" ]]; then
    echo "run.sh: broker binary not found at $BIN (build it with 'cargo build -p runnel' or set RUNNEL_BIN, or set BOOTSTRAP=host:port)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  PORT="$(free_port)"
  # A second listener, PROXIED, advertised at the port faultproxy.py listens on: clients that
  # bootstrap through the proxy are told (Metadata, FindCoordinator answer per listener) to
  # keep using it, so every request of theirs passes through it.
  PROXIED_PORT="$(free_port)"
  PROXY_PORT="$(free_port)"
  export BOOTSTRAP="127.0.0.1:$PORT"
  export PROXY_UPSTREAM="127.0.0.1:$PROXIED_PORT" PROXY_LISTEN="127.0.0.1:$PROXY_PORT"
  mkdir -p "$TMP_DIR/data"
  "$BIN" serve \
    --override "listeners=PLAINTEXT://127.0.0.1:$PORT,PROXIED://127.0.0.1:$PROXIED_PORT" \
    --override "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT" \
    --override "inter.broker.listener.name=PLAINTEXT" \
    --override "log.dirs=$TMP_DIR/data" \
    --override "advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,PROXIED://127.0.0.1:$PROXY_PORT" \
    --override "group.initial.rebalance.delay.ms=0" \
    --override "runnel.http.listener=127.0.0.1:0" \
    >"$TMP_DIR/broker.log" 2>&1 &
  BROKER_PID=$!
  echo "run.sh: started $BIN (pid $BROKER_PID) on $BOOTSTRAP, data in $TMP_DIR/data"
fi

# Wait (with a deadline) until the broker answers ApiVersions; learn whether groups exist.
if ! PROBE="$("$PY" "$HERE/probe.py" "$BOOTSTRAP" "${STARTUP_TIMEOUT_S:-60}")"; then
  echo "run.sh: broker at $BOOTSTRAP never answered ApiVersions" >&2
  if [[ -n "$BROKER_PID" ]]; then
    echo "--- broker log (last 40 lines) ---" >&2; tail -n 40 "$TMP_DIR/broker.log" >&2 || true
  fi
  echo "0 passed, 1 failed"
  exit 1
fi
eval "$PROBE"
export BROKER_APIS GROUP_APIS GROUP_APIS_REASON
[[ "$GROUP_APIS" == 1 ]] || echo "run.sh: group scenarios will be skipped: $GROUP_APIS_REASON"
echo "run.sh: MESSAGES=$MESSAGES RUN_ID=$RUN_ID BOOTSTRAP=$BOOTSTRAP"

passed=0; failed=0; skipped=0; broker_died=0
run_scenario() {
  local client="$1"; shift
  if [[ $broker_died -eq 1 ]]; then
    echo "RESULT FAIL $client -- not run: the broker died earlier"
    failed=$((failed + 1))
    return
  fi
  local out="$TMP_DIR/$client.out" rc=0 t0 t1
  t0=$(date +%s)
  echo "=== $client"
  timeout --kill-after=10 "$SCENARIO_TIMEOUT_S" "$@" >"$out" 2>&1 || rc=$?
  t1=$(date +%s)
  cat "$out"
  local p f s
  p=$(grep -c '^RESULT PASS ' "$out" || true)
  f=$(grep -c '^RESULT FAIL ' "$out" || true)
  s=$(grep -c '^RESULT SKIP ' "$out" || true)
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    echo "RESULT FAIL $client -- exited with status $rc without reporting a failure"
    f=$((f + 1))
  fi
  echo "=== $client: $p passed, $f failed, $s skipped ($((t1 - t0))s)"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [[ -n "$BROKER_PID" ]] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
    echo "run.sh: broker (pid $BROKER_PID) died during $client" >&2
    tail -n 40 "$TMP_DIR/broker.log" >&2 || true
    failed=$((failed + 1))
    BROKER_PID=""
    broker_died=1
  fi
}

run_scenario selftest "$PY" "$HERE/selftest_checks.py"
for client in $CLIENTS; do
  case "$client" in
    confluent)    run_scenario confluent "$PY" "$HERE/scenario_confluent.py" ;;
    kafka-python) run_scenario kafka-python "$PY" "$HERE/scenario_kafka_python.py" ;;
    aiokafka)     run_scenario aiokafka "$PY" "$HERE/scenario_aiokafka.py" ;;
    kafkajs)      run_scenario kafkajs node "$HERE/scenario_kafkajs.js" ;;
    kcat)         run_scenario kcat "$PY" "$HERE/scenario_kcat.py" ;;
    groups-confluent)     run_scenario groups-confluent "$PY" "$HERE/scenario_groups.py" confluent confluent-848 ;;
    groups-kafka-python)  run_scenario groups-kafka-python "$PY" "$HERE/scenario_groups.py" kafka-python ;;
    groups-aiokafka)      run_scenario groups-aiokafka "$PY" "$HERE/scenario_groups.py" aiokafka ;;
    groups-kafkajs)       run_scenario groups-kafkajs "$PY" "$HERE/scenario_groups.py" kafkajs ;;
    *) echo "run.sh: unknown client $client" >&2; failed=$((failed + 1)) ;;
  esac
done

if [[ -n "$BROKER_PID" && $failed -gt 0 ]]; then
  echo "--- broker log (last 40 lines) ---"; tail -n 40 "$TMP_DIR/broker.log" || true
fi
[[ $skipped -eq 0 ]] || echo "skipped: $skipped (see RESULT SKIP lines for reasons)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
