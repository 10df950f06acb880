#!/usr/bin/env bash
# gRPC ingest end to end with durable acks, against a plain tonic echo of
# the same messages, in interleaved rounds: echo with 1 event per request,
# echo with BATCH events per request, floorwatch with BATCH events per
# request. Each server is started fresh (floorwatch with an empty journal)
# and its CPU time is read from /proc over the timed phase only.
#
# Usage: scripts/bench-ingest.sh [ROUNDS]   (default 5)
# Environment: EVENTS (400000; three times that for echo with BATCH), ECHO_EVENTS
#   (100000, echo with 1 event per request), AGENTS (1000), BATCH (1000), IN_FLIGHT (8), CONNECTIONS (1), STREAMS (1 per
#   connection), JOURNAL_BATCH_MAX, JOURNAL_BATCH_DELAY_MS.
# Release build; everything on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

rounds=${1:-5}
events=${EVENTS:-400000}
echo_events=${ECHO_EVENTS:-100000}
agents=${AGENTS:-1000}
batch=${BATCH:-1000}
in_flight=${IN_FLIGHT:-8}
connections=${CONNECTIONS:-1}
streams=${STREAMS:-1}

bench_build
bench_workdir
bench_machine
echo "ingest: events=$events agents=$agents batch=$batch in_flight=$in_flight connections=$connections streams_per_connection=$streams"
echo "echo: events=$echo_events with batch 1, events=$((events * 3)) with batch $batch"

load() {
    "$bin/floorwatch-load" "$@" --in-flight "$in_flight" --connections "$connections" \
        --streams-per-connection "$streams" --server-pid "$server_pid" --clock-ticks "$clock_ticks"
}

results=$work/results.txt
: > "$results"
for round in $(seq 1 "$rounds"); do
    bench_start_echo "$round-1"
    line=$(load echo --addr "http://$server_addr" --events "$echo_events" --batch 1)
    bench_stop
    echo "round=$round $line" | tee -a "$results"

    bench_start_echo "$round-b"
    line=$(load echo --addr "http://$server_addr" --events "$((events * 3))" --batch "$batch")
    bench_stop
    echo "round=$round $line" | tee -a "$results"

    bench_start_floorwatch "$(bench_config "$round")"
    line=$(FLOORWATCH_TOKEN=$token load ingest --addr "http://$server_addr" --agents "$agents" --events "$events" --batch "$batch")
    bench_stop
    echo "round=$round $line" | tee -a "$results"
done

# Per round: floorwatch ÷ echo for rate and server CPU per event.
echo
echo "round  echo1_ev/s  echo1_us/ev  echoB_ev/s  echoB_us/ev  fw_ev/s  fw_us/ev  fw/echoB_rate  fw/echoB_cpu  fw/echo1_cpu"
for round in $(seq 1 "$rounds"); do
    e1=$(grep "^round=$round .*mode=echo .* batch=1 " "$results")
    eb=$(grep "^round=$round .*mode=echo .* batch=$batch " "$results")
    fw=$(grep "^round=$round .*mode=ingest " "$results")
    e1_rate=$(bench_field events_per_s <<< "$e1"); e1_cpu=$(bench_field server_cpu_us_per_event <<< "$e1")
    eb_rate=$(bench_field events_per_s <<< "$eb"); eb_cpu=$(bench_field server_cpu_us_per_event <<< "$eb")
    fw_rate=$(bench_field events_per_s <<< "$fw"); fw_cpu=$(bench_field server_cpu_us_per_event <<< "$fw")
    awk -v r="$round" -v a="$e1_rate" -v b="$e1_cpu" -v c="$eb_rate" -v d="$eb_cpu" -v e="$fw_rate" -v f="$fw_cpu" \
        'BEGIN { printf "%5s  %10s  %11s  %10s  %11s  %7s  %8s  %13.3f  %12.2f  %12.2f\n", r, a, b, c, d, e, f, e / c, f / d, f / b }' \
        | tee -a "$work/ratios.txt"
done
echo
for mode in "echo .* batch=1 " "echo .* batch=$batch " "ingest "; do
    lines=$(grep "mode=$mode" "$results")
    printf 'median mode=%s events_per_s=%s server_cpu_us_per_event=%s ack_p50_ms=%s ack_p99_ms=%s\n' \
        "$(echo "$mode" | sed 's/ \.\* /,/; s/ *$//')" \
        "$(bench_field events_per_s <<< "$lines" | bench_median)" \
        "$(bench_field server_cpu_us_per_event <<< "$lines" | bench_median)" \
        "$(bench_field ack_p50_ms <<< "$lines" | bench_median)" \
        "$(bench_field ack_p99_ms <<< "$lines" | bench_median)"
done
printf 'median ratios fw/echoB_rate=%s fw/echoB_cpu=%s fw/echo1_cpu=%s\n' \
    "$(awk '{ print $8 }' "$work/ratios.txt" | bench_median)" \
    "$(awk '{ print $9 }' "$work/ratios.txt" | bench_median)" \
    "$(awk '{ print $10 }' "$work/ratios.txt" | bench_median)"
