#!/usr/bin/env bash
# Runs every test of authlog: unit, store-contract and black-box HTTP tests.
#
# Beyond the Rust toolchain the tests need one thing, set up here on first use: a Python
# environment with PyJWT, the independent JOSE implementation that must accept authlog's tokens
# from the JWKS alone. It lives in target/, so `cargo clean` removes it too.
# Extra arguments go to `cargo test` (for example a test name filter).
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

cargo test --workspace --locked "$@"
