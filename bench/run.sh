#!/usr/bin/env bash
# Builds authlog's benchmarks in release mode and prints their tables (Markdown).
# Usage: bench/run.sh [all|http|append|cluster|audit|scale|models|rebuild|propagation|busy|admin|mail|feed]
# Needs wrk (Debian package; installed here if missing) and PostgreSQL at 127.0.0.1:5432.
# The run's headline figures, each with its same-run baseline, end the output and replace their
# rows in BENCHMARKS.md's "Current figures" table (AUTHLOG_BENCH_RECORD= turns that off).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
cargo build --release --locked -q -p authlog-bench
echo "authlog benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m)"
export AUTHLOG_BENCH_RECORD=${AUTHLOG_BENCH_RECORD-BENCHMARKS.md}
./target/release/authlog-bench "${@:-all}"
