#!/usr/bin/env bash
# Instructions per GET /protected (one reused token), counted by callgrind, for authlog and for
# baseline A (a bare poem-openapi server): deterministic where wrk's rps are noisy, and
# callgrind_annotate shows where authlog's extra instructions go.
# Usage: bench/profile.sh [SECONDS]   (default: 10 s of load under valgrind)
# Output: a line per server on stdout; the profiles in target/profile/. The two counts replace
# their row in BENCHMARKS.md's "Current figures" table (AUTHLOG_BENCH_RECORD= turns that off).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
# valgrind and wrk are Debian packages, installed here if missing (as bench/run.sh does wrk).
for package in valgrind wrk; do
    if ! command -v "$package" >/dev/null; then
        echo "profile: installing $package" >&2
        apt-get install -y -q "$package" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q "$package" >/dev/null; }
    fi
done
for tool in valgrind callgrind_control callgrind_annotate wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "profile: $tool is required" >&2; exit 1; }
done
cargo build --profile profiling --locked -q -p authlog -p authlog-bench
out=target/profile
rm -rf "$out" && mkdir -p "$out"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The server under valgrind, whichever it is, goes when the script does (wrk failing included).
server=""
stop_server() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""; }
trap stop_server EXIT

# measure NAME URL PREPARE COMMAND...: runs COMMAND under callgrind, waits until URL answers,
# runs the function PREPARE (which may set HEADER), warms up, zeroes the counters, loads
# URL/protected for SECONDS with wrk, dumps the counters, prints instructions per request.
measure() {
    local name=$1 url=$2 prepare=$3
    shift 3
    valgrind --tool=callgrind --callgrind-out-file="$out/$name.callgrind" "$@" \
        >"$out/$name.log" 2>&1 &
    local pid=$!
    server=$pid
    for _ in $(seq 1 300); do curl -s -o /dev/null "$url/" && break; sleep 0.2; done
    HEADER=""
    "$prepare" "$url"
    local load=(wrk -t1 -c4)
    [ -n "$HEADER" ] && load+=(-H "$HEADER")
    "${load[@]}" -d2s "$url/protected" >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    local requests
    requests=$("${load[@]}" -d"${seconds}s" "$url/protected" | awk '/requests in/ { print $1 }')
    callgrind_control --dump=measured "$pid" >/dev/null 2>&1
    stop_server
    local file total
    file=$(ls -S "$out/$name.callgrind".* | head -1)
    total=$(callgrind_annotate "$file" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    PER_REQUEST=$((total / requests))
    echo "$name: $requests requests, $PER_REQUEST instructions per request ($file)"
}

nothing() { :; }
log_in() {
    local body='{"username":"bench","password":"bench password"}'
    curl -fs -X POST "$1/register" -H 'Content-Type: application/json' -d "$body" >/dev/null
    HEADER="Authorization: Bearer $(curl -fs -X POST "$1/login" -H 'Content-Type: application/json' \
        -d "$body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
}

port=$(free_port)
measure baseline "http://127.0.0.1:$port" nothing \
    target/profiling/authlog-bench baseline-a "127.0.0.1:$port"
baseline=$PER_REQUEST

port=$(free_port)
db=$(mktemp -d)
# Request log lines off, as in bench/run.sh (which installs no log subscriber).
export AUTHLOG_LOG=warn
measure authlog "http://127.0.0.1:$port" log_in \
    target/profiling/authlog serve --bind "127.0.0.1:$port" --database-url "sqlite://$db/authlog.db"
rm -rf "$db"
AUTHLOG_BENCH_RECORD=${AUTHLOG_BENCH_RECORD-BENCHMARKS.md} \
    target/profiling/authlog-bench instructions "$PER_REQUEST" "$baseline"
echo "where they go: callgrind_annotate --inclusive=yes target/profile/authlog.callgrind.<pid>.measured"
