#!/usr/bin/env bash
# Builds authlog's benchmarks in release mode and prints their tables (Markdown).
# Usage: bench/run.sh [all|append|audit|propagation]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p authlog-bench
echo "authlog benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m)"
./target/release/authlog-bench "${1:-all}"
