#!/bin/sh
# kafka-topics.sh over `runnel topic`: the flags compose health checks and init jobs use
# (--list, --describe, --create [--if-not-exists], --delete, --alter --partitions).
# Arguments are rebuilt in "$@" so values with spaces survive; `--opt=value` is accepted too.
set -eu
set -f
prog=kafka-topics.sh
RUNNEL=${RUNNEL:-runnel}
fail() { echo "$prog: $*" >&2; exit 2; }
mode='' topic='' n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    --*=*) set -- "${a#*=}" "$@"; n=$((n + 1)); a=${a%%=*} ;;
  esac
  case $a in
    --bootstrap-server|--partitions|--replication-factor|--config|--topic|--command-config)
      [ "$n" -gt 0 ] || fail "$a needs a value" ;;
  esac
  case $a in
    --bootstrap-server) set -- "$@" -b "$1"; shift; n=$((n - 1)) ;;
    --list) mode=list ;;
    --describe) mode=describe ;;
    --create) mode=create ;;
    --delete) mode=delete ;;
    --alter) mode=alter ;;
    --topic) topic=$1; shift; n=$((n - 1)) ;;
    --partitions|--replication-factor|--config) set -- "$@" "$a" "$1"; shift; n=$((n - 1)) ;;
    --if-not-exists|--if-exists|--exclude-internal) set -- "$@" "$a" ;;
    # Client properties files (security settings) are not supported; plaintext only.
    --command-config) shift; n=$((n - 1)) ;;
    --help|-h) echo "usage: $prog --bootstrap-server HOST:PORT --list|--describe|--create|--delete|--alter [--topic T] ..."; exit 0 ;;
    *) fail "unsupported option $a" ;;
  esac
done
case $mode in
  list)
    if [ -n "$topic" ]; then
      "$RUNNEL" topic list --names-only "$@" | grep -xE -- "$topic" || true
    else
      exec "$RUNNEL" topic list --names-only "$@"
    fi ;;
  describe)
    if [ -n "$topic" ]; then exec "$RUNNEL" topic describe "$topic" "$@"; fi
    exec "$RUNNEL" topic describe "$@" ;;
  create|delete|alter)
    [ -n "$topic" ] || fail "--$mode needs --topic"
    exec "$RUNNEL" topic "$mode" "$topic" "$@" ;;
  *) fail "one of --list, --describe, --create, --delete or --alter is required" ;;
esac
