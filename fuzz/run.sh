#!/usr/bin/env bash
# Runs a fuzz target with libFuzzer on the stable toolchain (the same instrumentation
# `cargo fuzz` uses, without its nightly-only sanitizer flag):
#   fuzz/run.sh decode_request 60     # target, seconds
# `cargo fuzz run decode_request` works too where cargo-fuzz and a nightly toolchain exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
target="${1:-decode_request}"
seconds="${2:-60}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
cargo build --release --target "$triple" --bin "$target"
mkdir -p "corpus/$target"
"target/$triple/release/$target" "corpus/$target" -max_total_time="$seconds" -rss_limit_mb=512
