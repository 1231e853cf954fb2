#!/usr/bin/env bash
# Every target of issue 6 in one sitting: runs the commands of benches/README.md (librdkafka,
# and the raw client where there is one), then prints one line per figure with its limit and
# whether the median meets it. Each command's whole output is kept in OUT_DIR.
#
#   benches/scripts/targets.sh LOADGEN BROKER [OUT_DIR]
#
# Takes about 5 minutes with release builds. QUICK=1 runs tiny sizes once each, to check the
# script itself: its figures mean nothing. Exits 0 whether or not the targets are met, and
# non-zero if a command fails or prints no figure.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
LG=$1 BROKER=$2 OUT=${3:-$(mktemp -d)}
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT"

if [ "${QUICK:-0}" = 1 ]; then
  runs=1 few=1 settle=0 rec1=20000 rec2=2000 rec3=20000 probe=20000 secs=1 parts=20
  warmup=(--warmup-s 0) idle=(--idle-ms 200)
else
  runs=5 few=3 settle=2000 rec1=5000000 rec2=2000000 rec3=2000000 probe=3000000 secs=5 parts=10000
  warmup=() idle=()
fi

# run NAME ARGS...: one loadgen command, its output kept as OUT/NAME.txt.
run() {
  local name=$1
  shift
  echo "running $name: loadgen $*" >&2
  if ! "$LG" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"; then
    echo "$name failed; the end of $OUT/$name.err:" >&2
    tail -n 20 "$OUT/$name.err" >&2
    exit 1
  fi
}

# median NAME METRIC: sets M to the last column of METRIC's row in OUT/NAME.txt, the median of
# the runs; stops the script if there is none.
median() {
  M=$(awk -v m="$2" '$1 == m { print $NF }' "$OUT/$1.txt")
  if [ -z "$M" ]; then
    echo "no $2 in $OUT/$1.txt" >&2
    exit 1
  fi
}

# client NAME: which client a command's name says it ran.
client() { case $1 in *-raw) echo raw ;; *) echo librdkafka ;; esac; }

printf '%-2s %-44s %-11s %12s %-12s %-4s %s\n' '#' measurement client median limit met unit >"$OUT/summary.txt"
# row TARGET MEASUREMENT CLIENT VALUE OP LIMIT UNIT
row() {
  local met
  met=$(awk -v v="$4" -v op="$5" -v l="$6" 'BEGIN {
    ok = (op == ">=") ? v + 0 >= l + 0 : v + 0 <= l + 0
    print ok ? "yes" : "no" }')
  printf '%-2s %-44s %-11s %12s %-12s %-4s %s\n' "$1" "$2" "$3" "$4" "$5 $6" "$met" "$7" >>"$OUT/summary.txt"
}

t1=(produce --broker-bin "$BROKER" --records "$rec1" --record-size 100 --batch-size 16384 --acks 1
    --partitions 4 --producers 2 --runs "$runs" --settle-ms "$settle")
run t1 "${t1[@]}" --partitioner loadgen --produce-call batch -X message.timeout.ms=0
run t1-raw "${t1[@]}" --client raw
for c in t1 t1-raw; do
  median "$c" records_per_s
  row 1 "produce 100 B, 16 KiB batches, acks=1" "$(client "$c")" "$M" '>=' 2500000 records/s
done

t2=(produce --broker-bin "$BROKER" --broker-override log.flush.policy=fsync --records "$rec2"
    --record-size 1024 --acks all --partitions 4 --producers 2 --batch-size 1048576 --settle-ms "$settle")
run t2 "${t2[@]}" -X linger.ms=20 -X queue.buffering.max.kbytes=32768 --produce-call batch --runs "$runs"
run t2-raw "${t2[@]}" --client raw --runs "$few"
for c in t2 t2-raw; do
  median "$c" mb_per_s
  row 2 "produce 1 KiB, acks=all, fsync" "$(client "$c")" "$M" '>=' 600 MB/s
done

run t3 consume --broker-bin "$BROKER" --fill --records "$rec3" --record-size 1024 --runs "$runs"
median t3 mb_per_s
row 3 "consume from the page cache" librdkafka "$M" '>=' 1000 MB/s

t4=(latency --broker-bin "$BROKER" --rate-of-max 0.5 --probe-records "$probe" --duration-s "$secs"
    --runs "$few" --settle-ms "$((settle / 2))" "${warmup[@]}")
fsync=(--broker-override log.flush.policy=fsync --acks all)
run t4 "${t4[@]}" --produce-call batch --partitioner loadgen
run t4-raw "${t4[@]}" --client raw
run t4-fsync "${t4[@]}" "${fsync[@]}" --produce-call batch --partitioner loadgen
run t4-fsync-raw "${t4[@]}" "${fsync[@]}" --client raw
for c in t4 t4-raw t4-fsync t4-fsync-raw; do
  median "$c" target_rate_per_s
  rate=$M
  median "$c" e2e_p99_us
  case $c in
    t4-fsync*) row 4 "  the same, fsync and acks=all" "$(client "$c")" "$M" '<=' 2000 "µs, at $rate records/s" ;;
    *) row 4 "end-to-end p99 at half the max rate" "$(client "$c")" "$M" '<=' 1000 "µs, at $rate records/s" ;;
  esac
done

run t5 start --bin "$BROKER" --runs "$runs" "${idle[@]}"
median t5 idle_rss_mib
row 5 "idle RSS" - "$M" '<=' 20 MiB
median t5 first_ack_ms
row 5 "cold start to first acknowledged produce" - "$M" '<=' 100 ms
echo "running many_partitions.sh with $parts partitions" >&2
bash "$SCRIPTS/many_partitions.sh" "$BROKER" "$parts" "$((parts < 100 ? parts : 100))" >"$OUT/t5-partitions.txt"
rss=$(sed -n 's/.*rss_mib=\([0-9.]*\).*/\1/p' "$OUT/t5-partitions.txt" | sort -g | tail -1)
ready=$(sed -n 's/^after_.* start_to_ready_ms=\([0-9]*\).*/\1/p' "$OUT/t5-partitions.txt" | sort -g | tail -1)
if [ -z "$rss" ] || [ -z "$ready" ]; then
  echo "no figures in $OUT/t5-partitions.txt" >&2
  exit 1
fi
row 5 "$parts partitions: the largest RSS" - "$rss" '<=' 1024 MiB
row 5 "$parts partitions: the slowest restart" - "$ready" '<=' 5000 "ms, spawn to /readyz"

cat "$OUT/summary.txt"
echo "outputs: $OUT"
