#!/usr/bin/env bash
# Engine throughput on one core: criterion's `engine` bench (release
# profile), 200 000 events for 1 000 agents through Engine::apply_event.
#
# Usage: scripts/bench-engine.sh [criterion options]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

bench_machine
cd "$root"
# taskset keeps the bench on one CPU so the number is per core.
taskset -c 1 cargo bench --locked --bench engine -- "$@"
