#!/usr/bin/env bash
# Propagation latency from ingest to WatchFloor clients: AGENTS agents,
# WATCHERS streams over CONNECTIONS HTTP/2 connections, state changes at
# RATE events per second for SECONDS_PER_RUN seconds. Each case is one
# run against a fresh floorwatch ("watchers rate", for example "200 200").
#
# Usage: scripts/bench-propagation.sh [CASES...]
#   default cases: "1000 20" "1000 100" "200 200" "200 1000"
# Environment: AGENTS (20000), CONNECTIONS (10), SECONDS_PER_RUN (10),
#   OPEN_CONCURRENCY (25).
# Release build; everything on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

agents=${AGENTS:-20000}
connections=${CONNECTIONS:-10}
seconds=${SECONDS_PER_RUN:-10}
open_concurrency=${OPEN_CONCURRENCY:-25}
if [ "$#" -gt 0 ]; then cases=("$@"); else cases=("1000 20" "1000 100" "200 200" "200 1000"); fi

bench_build
bench_workdir
bench_machine
echo "propagation: agents=$agents connections=$connections seconds=$seconds"

run=0
for case in "${cases[@]}"; do
    read -r watchers rate <<< "$case"
    run=$((run + 1))
    # Enough stream clients for every watcher plus the publisher.
    bench_start_floorwatch "$(bench_config "$run" "max_stream_clients = $((watchers + 10))" "max_agents = $((agents + 100))")"
    line=$(FLOORWATCH_TOKEN=$token "$bin/floorwatch-load" propagation --addr "http://$server_addr" \
        --agents "$agents" --watchers "$watchers" --connections "$connections" --rate "$rate" \
        --seconds "$seconds" --open-concurrency "$open_concurrency" \
        --server-pid "$server_pid" --clock-ticks "$clock_ticks")
    rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
    bench_stop
    echo "$line server_peak_rss_mib=$rss"
done
