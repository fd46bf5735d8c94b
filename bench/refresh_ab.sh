#!/usr/bin/env bash
# POST /refresh on SQLite, two builds of `authlog` against each other: each serves a fresh
# database in turn (A, B, A, B, ...) under `authlog-bench refresh-load` (32 refresh chains for
# 5 s), and the script prints each run's refreshes/s and the server's CPU time per refresh,
# then the medians of the paired ratios B/A.
#
# CPU time per refresh (user + system, from /proc) moves far less than refreshes/s on a shared
# machine: a neighbour's load slows a run down, but it does not make a refresh cost more.
#
# Usage: bench/refresh_ab.sh AUTHLOG_A AUTHLOG_B [ROUNDS] [LOADS]
#   ROUNDS: pairs of runs (default 5). LOADS: loads per server, the last one measured (default
#   1; 4 measures a database that already holds some 60,000 events).
# Build the older binary from a commit with, for example:
#   git worktree add ../authlog-old COMMIT && (cd ../authlog-old && cargo build --release -p authlog)
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: bench/refresh_ab.sh AUTHLOG_A AUTHLOG_B [ROUNDS] [LOADS]}
b=${2:?usage: bench/refresh_ab.sh AUTHLOG_A AUTHLOG_B [ROUNDS] [LOADS]}
rounds=${3:-5}
loads=${4:-1}
for binary in "$a" "$b"; do
    [ -x "$binary" ] || { echo "refresh_ab: $binary is not an executable" >&2; exit 1; }
done
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "refresh_ab: $tool is required" >&2; exit 1; }
done
cargo build --release --locked -q -p authlog-bench
load=${CARGO_TARGET_DIR:-target}/release/authlog-bench
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

server=""
dir=""
stop_server() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ -n "$dir" ] && rm -rf "$dir"
    server="" dir=""
}
trap stop_server EXIT
# User and system CPU time of a process so far, in clock ticks (`getconf CLK_TCK` a second).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# run BINARY: sets RATE (refreshes/s) and COST (server CPU µs per refresh) for one fresh server.
# Cheap Argon2 settings: each load logs in 32 times first, and only the refreshes are timed.
run() {
    dir=$(mktemp -d)
    AUTHLOG_LOG=warn AUTHLOG_ARGON2_MEMORY_KIB=64 AUTHLOG_ARGON2_ITERATIONS=1 \
        "$1" serve --bind "127.0.0.1:$port" --database-url "sqlite://$dir/authlog.db" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "$url/" && break; sleep 0.1; done
    for _ in $(seq 2 "$loads"); do "$load" refresh-load "$url" >/dev/null; done
    local before after
    before=$(cpu_ticks "$server")
    RATE=$("$load" refresh-load "$url" | awk '{ print $1 }')
    after=$(cpu_ticks "$server")
    stop_server
    # The load refreshes for 5 s (and logs in 32 times first, cheaply): about RATE × 5 refreshes.
    COST=$(python3 -c "print(round(($after - $before) / $ticks_per_s * 1e6 / ($RATE * 5)))")
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "POST /refresh on SQLite, B = $b against A = $a — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $loads of $loads"
echo
echo "| round | A (rps) | B (rps) | B/A | A (CPU µs/refresh) | B (CPU µs/refresh) | B/A |"
echo "|---|---|---|---|---|---|---|"
rates=() costs=()
for round in $(seq 1 "$rounds"); do
    run "$a"
    rate_a=$RATE cost_a=$COST
    run "$b"
    rate_b=$RATE cost_b=$COST
    rate=$(python3 -c "print(round($rate_b / $rate_a, 3))")
    cost=$(python3 -c "print(round($cost_b / $cost_a, 3))")
    rates+=("$rate") costs+=("$cost")
    echo "| $round | $rate_a | $rate_b | $rate× | $cost_a | $cost_b | $cost× |"
done
echo
echo "median B/A: refreshes/s **$(median "${rates[@]}")×**, CPU per refresh **$(median "${costs[@]}")×**"
