#!/bin/sh
# kafka-configs.sh over `runnel topic alter-config|describe --configs-only`, for topics:
# --entity-type topics --entity-name T (or --topic T) with --describe, or --alter with
# --add-config k=v[,k=v] and --delete-config k[,k].
set -eu
set -f
prog=kafka-configs.sh
RUNNEL=${RUNNEL:-runnel}
fail() { echo "$prog: $*" >&2; exit 2; }
mode='' entity_type='' name='' n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    --*=*) set -- "${a#*=}" "$@"; n=$((n + 1)); a=${a%%=*} ;;
  esac
  case $a in
    --bootstrap-server|--entity-type|--entity-name|--topic|--add-config|--delete-config|--command-config)
      [ "$n" -gt 0 ] || fail "$a needs a value" ;;
  esac
  case $a in
    --bootstrap-server) set -- "$@" -b "$1"; shift; n=$((n - 1)) ;;
    --describe) mode=describe ;;
    --alter) mode=alter ;;
    --entity-type) entity_type=$1; shift; n=$((n - 1)) ;;
    --entity-name) name=$1; shift; n=$((n - 1)) ;;
    --topic) entity_type=topics; name=$1; shift; n=$((n - 1)) ;;
    --add-config|--delete-config)
      # Comma-separated lists; each item becomes one --set / --delete.
      flag=--set; [ "$a" = --delete-config ] && flag=--delete
      old_ifs=$IFS; IFS=,
      for item in $1; do set -- "$@" "$flag" "$item"; done
      IFS=$old_ifs
      shift; n=$((n - 1)) ;;
    --command-config) shift; n=$((n - 1)) ;;
    --help|-h) echo "usage: $prog --bootstrap-server HOST:PORT --entity-type topics --entity-name T --describe|--alter ..."; exit 0 ;;
    *) fail "unsupported option $a" ;;
  esac
done
[ "$entity_type" = topics ] || fail "only --entity-type topics is supported"
case $mode in
  describe)
    if [ -n "$name" ]; then exec "$RUNNEL" topic describe --configs-only "$name" "$@"; fi
    exec "$RUNNEL" topic describe --configs-only "$@" ;;
  alter)
    [ -n "$name" ] || fail "--alter needs --entity-name"
    exec "$RUNNEL" topic alter-config "$name" "$@" ;;
  *) fail "one of --describe or --alter is required" ;;
esac
