#!/usr/bin/env bash
# The test command from the README: runs every test. The tests need only the
# Rust toolchain and the crates (fetched on the first build).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked "$@"
