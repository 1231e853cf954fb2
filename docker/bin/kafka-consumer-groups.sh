#!/bin/sh
# kafka-consumer-groups.sh over `runnel group`: --list, --describe, --delete and
# --reset-offsets (--to-earliest|--to-latest|--to-datetime|--to-offset, --dry-run|--execute).
set -eu
set -f
prog=kafka-consumer-groups.sh
RUNNEL=${RUNNEL:-runnel}
fail() { echo "$prog: $*" >&2; exit 2; }
mode='' group='' all_groups='' bootstrap='' n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    --*=*) set -- "${a#*=}" "$@"; n=$((n + 1)); a=${a%%=*} ;;
  esac
  case $a in
    --bootstrap-server|--group|--topic|--to-datetime|--to-offset|--timeout|--command-config)
      [ "$n" -gt 0 ] || fail "$a needs a value" ;;
  esac
  case $a in
    --bootstrap-server) bootstrap=$1; set -- "$@" -b "$1"; shift; n=$((n - 1)) ;;
    --list) mode=list ;;
    --describe) mode=describe ;;
    --delete) mode=delete ;;
    --reset-offsets) mode=reset-offsets ;;
    --group) group=$1; shift; n=$((n - 1)) ;;
    --all-groups) all_groups=1 ;;
    --topic|--to-datetime|--to-offset) set -- "$@" "$a" "$1"; shift; n=$((n - 1)) ;;
    --all-topics|--to-earliest|--to-latest|--dry-run|--execute) set -- "$@" "$a" ;;
    --timeout) set -- "$@" --timeout-ms "$1"; shift; n=$((n - 1)) ;;
    # Output selectors of the Kafka tool: runnel shows members and offsets together.
    --members|--offsets|--state|--verbose) ;;
    --command-config) shift; n=$((n - 1)) ;;
    --help|-h) echo "usage: $prog --bootstrap-server HOST:PORT --list|--describe|--delete|--reset-offsets [--group G] ..."; exit 0 ;;
    *) fail "unsupported option $a" ;;
  esac
done
case $mode in
  list) exec "$RUNNEL" group list --names-only "$@" ;;
  describe|delete|reset-offsets)
    if [ -n "$group" ]; then exec "$RUNNEL" group "$mode" "$group" "$@"; fi
    [ -n "$all_groups" ] || fail "--$mode needs --group or --all-groups"
    groups=$("$RUNNEL" group list --names-only ${bootstrap:+-b "$bootstrap"})
    for g in $groups; do "$RUNNEL" group "$mode" "$g" "$@"; done ;;
  *) fail "one of --list, --describe, --delete or --reset-offsets is required" ;;
esac
