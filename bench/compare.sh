#!/usr/bin/env bash
# Compares this tree's figures with an older build's, in one run: `authlog-bench BENCH` of the
# old build and of this one, alternating, ROUNDS times each (each run is itself the median of
# its rounds), then the median of each figure and the ratio new/old. BENCH is `http` unless
# given (`append`, `cluster`, ... : any bench both builds have).
#
# Usage: bench/compare.sh OLD_AUTHLOG_BENCH [ROUNDS] [BENCH]
# Build the old one from a commit with, for example:
#   git worktree add ../authlog-old COMMIT && (cd ../authlog-old && cargo build --release -p authlog-bench)
#   bench/compare.sh ../authlog-old/target/release/authlog-bench 3 append
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/compare.sh OLD_AUTHLOG_BENCH [ROUNDS] [BENCH]}
rounds=${2:-3}
bench=${3:-http}
[ -x "$old" ] || { echo "compare: $old is not an executable" >&2; exit 1; }
command -v wrk >/dev/null || { echo "compare: wrk is required (bench/run.sh installs it)" >&2; exit 1; }
cargo build --release --locked -q -p authlog-bench
new=${CARGO_TARGET_DIR:-target}/release/authlog-bench

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq 1 "$rounds"); do
    echo "compare: round $round of $rounds" >&2
    "$old" "$bench" >"$out/old.$round"
    "$new" "$bench" >"$out/new.$round"
done

echo "\`authlog-bench $bench\`, this tree against $old — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores;"
echo "median of $rounds alternating runs each"
echo
echo "| figure | old | new | new/old |"
echo "|---|---|---|---|"
# Each run prints Markdown tables. Every numeric cell of a data row is a figure, named by the
# row's first cell and its column's header; ratios (×), goals (≥, ≤) and empty cells are left out. A value
# may carry a unit (`1.23 ms`) or a baseline's label (`A: 83345`): only the number counts.
awk -F'|' '
    function median(list,   n, values, i, j, t) {
        n = split(list, values, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (values[j] + 0 < values[i] + 0) { t = values[i]; values[i] = values[j]; values[j] = t }
        return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
    }
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    FNR == 1 { side = FILENAME ~ /\/old\./ ? "old" : "new"; previous = "" }
    # The summary table of a run (the one with a "measured" column) repeats its figures: left out.
    /^\|/ && previous !~ /^\|/ { summary = /\| measured \|/; for (i = 1; i <= NF; i++) header[i] = trim($i) }
    /^\|/ && previous ~ /^\|/ && $0 !~ /^\|-/ && !summary {
        for (i = 3; i < NF; i++) {
            cell = $i
            if (cell ~ /×|≥|≤/ || cell !~ /[0-9]/) continue
            sub(/^[^0-9]*: */, "", cell)
            gsub(/[^0-9.]/, "", cell)
            figure = trim($2) " — " header[i]
            if (!(figure in seen)) { seen[figure] = 1; order[++count] = figure }
            runs[side, figure] = runs[side, figure] " " cell
        }
    }
    { previous = $0 }
    END {
        for (i = 1; i <= count; i++) {
            f = order[i]; o = median(runs["old", f]); n = median(runs["new", f])
            printf "| %s | %.2f | %.2f | %.2f× |\n", f, o, n, (o > 0 ? n / o : 0)
        }
    }' "$out"/old.* "$out"/new.*
