#!/usr/bin/env bash
# Runs every test of authlog: unit, store-contract and black-box HTTP tests, on SQLite and on
# PostgreSQL; then the OpenAPI checks (openapi/check.sh: spec validator, generated Python and
# TypeScript clients, Swagger UI in headless Chromium, schemathesis) against the built binary.
#
# Beyond the Rust toolchain the tests need, and this sets up:
# - PostgreSQL at 127.0.0.1:5432 (user postgres; override with AUTHLOG_TEST_POSTGRES_ADMIN_URL).
#   Started if it is down and installed locally; the run gets a fresh database of its own,
#   dropped afterwards. The tests that need it are #[ignore]d with that reason and run here with
#   --include-ignored; without a server they show as "ignored", and under CI (CI set) a missing
#   PostgreSQL is a failure.
# - A Python environment with PyJWT, the independent JOSE implementation that must accept
#   authlog's tokens from the JWKS alone. It lives in target/, so `cargo clean` removes it too.
# - For the OpenAPI checks: Python and Node.js with npm (on the machine), Debian's chromium
#   (installed if missing), and the pinned tools from the lockfiles under openapi/.
# Extra arguments go to `cargo test` (for example a test name filter) and skip the OpenAPI checks.
set -euo pipefail
cd "$(dirname "$0")"

venv=target/test-python
requirements=tests/interop/requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    command -v python3 >/dev/null || { echo "test.sh: python3 is required for the interop test" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi
export AUTHLOG_TEST_PYTHON="$PWD/$venv/bin/python"

admin=${AUTHLOG_TEST_POSTGRES_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
postgres_up() { psql "$admin" -Atqc 'SELECT 1' >/dev/null 2>&1; }
if ! postgres_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "test.sh: starting PostgreSQL"
    # Every installed version's main cluster (one of them listens on 5432).
    for version in /etc/postgresql/*/; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
    for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
fi
if postgres_up; then
    database="authlog_test_$(date +%s)_$$"
    psql "$admin" -qc "CREATE DATABASE $database"
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true' EXIT
    export AUTHLOG_TEST_POSTGRES_URL="${admin%/*}/$database"
elif [ -n "${CI:-}" ]; then
    echo "test.sh: PostgreSQL is not reachable at $admin; under CI its tests must run" >&2
    exit 1
else
    echo "test.sh: NOTE: PostgreSQL is not reachable at $admin; its tests will say they did not run" >&2
fi

if [ -n "${AUTHLOG_TEST_POSTGRES_URL:-}" ]; then
    cargo test --workspace --locked "$@" -- --include-ignored
    echo "test.sh: the black-box HTTP suite again, on PostgreSQL"
    # The ignored ones too (the mail server's), but not the cluster tests: they run on
    # PostgreSQL whatever the backend, and ran in the pass above.
    AUTHLOG_TEST_BACKEND=postgres cargo test --locked -p authlog --test api "$@" \
        -- --include-ignored --skip cluster::
else
    cargo test --workspace --locked "$@"
fi
if [ "$#" -eq 0 ]; then
    echo "test.sh: the OpenAPI checks, against target/debug/authlog"
    openapi/check.sh target/debug/authlog
fi
