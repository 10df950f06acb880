#!/usr/bin/env bash
# The test command from the README: runs every test. The SIP tests run
# against SIPp and Kamailio from Debian; scripts/ensure-peers.sh installs
# them with apt-get when they are missing. Everything else needs only the
# Rust toolchain and the crates (fetched on the first build).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-peers.sh
cargo test --locked "$@"
