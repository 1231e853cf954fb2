#!/usr/bin/env bash
# Compares two broker builds in one sitting: runs the same `loadgen` command against build A,
# then B, then A again, ... (ROUNDS times each), so that the host's slow and fast minutes fall
# on both. Prints the chosen metrics of every invocation, labelled, and each build's values
# side by side at the end. The last column of a `loadgen` table row is the median of its runs.
#
#   benches/scripts/ab.sh LOADGEN BROKER_A BROKER_B ROUNDS METRICS -- LOADGEN_ARGS...
#
# METRICS is a regular expression over table row names, e.g. 'mb_per_s|broker_cpu_s'.
# LOADGEN_ARGS must not name --broker-bin: the script passes each build's.
# Example (target 3):
#   benches/scripts/ab.sh $LG /tmp/runnel-old $BROKER 2 'mb_per_s|broker_cpu_s' -- \
#       consume --fill --records 2000000 --record-size 1024 --runs 3
set -euo pipefail
if [ $# -lt 6 ] || [ "$6" != "--" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
LG=$1 A=$2 B=$3 ROUNDS=$4 METRICS=$5
shift 6
SUB=$1
shift
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for label in A B; do
    bin=$A
    [ "$label" = B ] && bin=$B
    echo "== $label round $round ($bin)"
    "$LG" "$SUB" --broker-bin "$bin" "$@" 2>/dev/null |
      awk -v l="$label" -v out="$OUT" -v re="^($METRICS)$" '$1 ~ re { print; print $1, l, $NF >> out }'
  done
done
echo "== the median of each invocation, A then B"
awk '{ v[$1, $2] = v[$1, $2] " " $3; m[$1] = 1 }
     END { for (k in m) printf "%-24s A:%s | B:%s\n", k, v[k, "A"], v[k, "B"] }' "$OUT" | sort
