#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints, generated-code freshness, unit,
# property and end-to-end tests (librdkafka through the rdkafka crate, crash recovery, bad
# input), then the multi-client suite (confluent-kafka, kafka-python, aiokafka, kafkajs, kcat),
# which installs its own clients. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n=== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "generated protocol code is up to date"
if [[ -d ../shared/kafka-spec ]]; then
  cargo run -q -p xtask -- codegen --check --spec ../shared/kafka-spec
else
  echo "skipped: ../shared/kafka-spec is not beside this checkout"
fi

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace

step "deployment files: docker-compose config, kubernetes-validate, dashboard and alerts"
bash deploy/validate.sh

step "real clients: confluent-kafka, kafka-python, aiokafka, kafkajs, kcat"
cargo build -q -p runnel
bash tests/clients/run.sh
