#!/usr/bin/env bash
# SIP NOTIFY ingest against Kamailio, each server pinned to CPU 1 with
# taskset and the load generator (floorwatch-sipload) on CPU 0:
#
# 1. Cost: CPU time per NOTIFY at the same offered load (RATE for SECONDS).
#    Kamailio runs KAMAILIO_CFG with one UDP worker, which replies 200 to
#    every NOTIFY statelessly (`sl_send_reply`). floorwatch runs `serve` with
#    a directory of AGENTS agents with sip: AORs and a [sip] section whose
#    outbound_proxy is the generator in notifier mode. It subscribes to each
#    agent's dialog events, then parses, matches, applies and journals every
#    NOTIFY before its 200.
# 2. Throughput: RATES in turn, STEP_SECONDS each, until a step loses more
#    than LOSS_LIMIT_PERCENT of its NOTIFYs (not answered with 2xx). The
#    highest rate without that loss is the lossless rate.
#
# rcvbuf_drops counts the host's UDP receive-buffer drops during the cost
# run (RcvbufErrors in /proc/net/snmp), which shows where loss happened when
# nothing else on the host uses UDP.
#
# Server CPU time is utime + stime from /proc/PID/stat, summed over the
# server's processes, read by the generator just before the first NOTIFY
# and after the last response. Each server is started fresh for each part.
#
# Usage: scripts/bench-sip-notify.sh
# Environment: SERVERS ("kamailio floorwatch"), RATE (5000), COST_SECONDS (20),
#   RATES ("5000 10000 15000 20000 25000 30000 40000 50000 60000 80000"),
#   STEP_SECONDS (5), LOSS_LIMIT_PERCENT (0.1), GRACE_MS (2000), AGENTS (100),
#   SUBSCRIBE_WAIT_SECONDS (120), KAMAILIO (/usr/sbin/kamailio),
#   KAMAILIO_CFG (lab/kamailio/bench.cfg, or a minimal one written here
#   when that file is missing).
# Release build; everything on 127.0.0.1.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

servers=${SERVERS:-kamailio floorwatch}
rate=${RATE:-5000}
seconds=${COST_SECONDS:-20}
rates=${RATES:-5000 10000 15000 20000 25000 30000 40000 50000 60000 80000}
step_seconds=${STEP_SECONDS:-5}
loss_limit=${LOSS_LIMIT_PERCENT:-0.1}
grace_ms=${GRACE_MS:-2000}
agents=${AGENTS:-100}
subscribe_wait=${SUBSCRIBE_WAIT_SECONDS:-120}
kamailio=${KAMAILIO:-/usr/sbin/kamailio}
kamailio_cfg=${KAMAILIO_CFG:-$root/lab/kamailio/bench.cfg}

(cd "$root" && cargo build --release --locked --bin floorwatch --bin floorwatch-sipload) >&2
bench_workdir
bench_machine
echo "sip-notify: servers=\"$servers\" cost_rate=$rate cost_seconds=$seconds rates=\"$rates\"" \
    "step_seconds=$step_seconds loss_limit_percent=$loss_limit agents=$agents"

# Prints a UDP port on 127.0.0.1 that is free at the moment of the call.
free_udp_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Generator options common to every run. The generator runs on CPU 0 and is
# started directly, not through a shell function, so that $! of a
# background run is its own pid and the cleanup can stop it.
sipload_options=(--grace-ms "$grace_ms" --clock-ticks "$clock_ticks" --server-pid-file "$work/server.pids"
    --stop-loss-percent "$loss_limit")

# Writes a stateless 200 responder with one UDP worker when the repository
# has no lab/kamailio/bench.cfg yet. The listen address comes from -l.
kamailio_config() {
    if [ -f "$kamailio_cfg" ]; then
        echo "$kamailio_cfg"
        return
    fi
    {
        echo '#!KAMAILIO'
        echo '# Stateless 200 for every request, one UDP worker: the CPU cost baseline.'
        echo 'debug=0'
        echo 'log_stderror=yes'
        echo 'children=1'
        echo 'auto_aliases=no'
        echo 'loadmodule "sl.so"'
        echo 'request_route {'
        echo '    sl_send_reply("200", "OK");'
        echo '    exit;'
        echo '}'
    } > "$work/bench.cfg"
    echo "$work/bench.cfg"
}

# Starts Kamailio on CPU 1 at 127.0.0.1:$1 and writes its process ids
# (the main process and its children) to $work/server.pids.
start_kamailio() {
    local port=$1 config
    config=$(kamailio_config)
    local dir=$work/kamailio-$port
    mkdir -p "$dir"
    taskset -c 1 "$kamailio" -f "$config" -DD -E -n 1 -l "udp:127.0.0.1:$port" -Y "$dir" -w "$dir" \
        > "$dir/kamailio.log" 2>&1 &
    server_pid=$!
    started_pids+=("$server_pid")

    # Ready when the UDP worker has forked and the port is bound.
    for _ in $(seq 1 100); do
        if ss -Hlun "sport = :$port" | grep -q . && [ -n "$(ps -o pid= --ppid "$server_pid")" ]; then
            sleep 0.5
            echo "$server_pid" $(ps -o pid= --ppid "$server_pid") > "$work/server.pids"
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "kamailio did not start; log follows" >&2
    cat "$dir/kamailio.log" >&2
    return 1
}

# Writes a floorwatch config for run $1 whose outbound proxy is the
# generator at 127.0.0.1:$2, listening for SIP on 127.0.0.1:$3, with a
# directory of $agents agents whose AORs are sip:1000@example.com, ….
floorwatch_config() {
    local run=$1 proxy_port=$2 sip_port=$3 config dir
    config=$(bench_config "$run")
    dir=${config%/*}
    {
        echo 'id,display_name,team,contract_hours,platform_ids'
        for i in $(seq 0 $((agents - 1))); do
            echo "bench-$i,Agent $((1000 + i)),bench,24,sip:$((1000 + i))@example.com"
        done
    } > "$dir/agents.csv"
    {
        echo '[roster]'
        echo "agents_file = \"$dir/agents.csv\""
        echo '[sip]'
        echo 'enabled = true'
        echo "listen = [\"udp:127.0.0.1:$sip_port\"]"
        echo "outbound_proxy = \"sip:127.0.0.1:$proxy_port\""
        echo 'identity = "sip:floorwatch@example.com"'
        echo 'packages = ["dialog"]'
        echo 'expires_seconds = 3600'
        echo 'start_spread_seconds = 2'
        echo 'allowed_networks = ["127.0.0.0/8"]'
    } >> "$config"
    echo "$config"
}

# Starts floorwatch on CPU 1 with config $1 and writes its pid to
# $work/server.pids. taskset execs floorwatch, so $! is floorwatch's pid.
start_floorwatch() {
    local config=$1
    local log=${config%/*}/floorwatch.log
    taskset -c 1 "$bin/floorwatch" serve --config "$config" 2> "$log" &
    server_pid=$!
    started_pids+=("$server_pid")
    echo "$server_pid" > "$work/server.pids"
    sleep 0.5
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "floorwatch exited at start; log follows" >&2
        cat "$log" >&2
        return 1
    fi
}

# Runs the generator as notifier for floorwatch: the notifier first, so it
# listens before floorwatch subscribes. Prints the generator's result lines.
floorwatch_run() {
    local run=$1 run_rates=$2 run_seconds=$3
    local proxy_port sip_port config out=$work/sipload-$run.out
    proxy_port=$(free_udp_port)
    sip_port=$(free_udp_port)
    config=$(floorwatch_config "$run" "$proxy_port" "$sip_port")
    : > "$work/server.pids"

    taskset -c 0 "$bin/floorwatch-sipload" notifier --bind "127.0.0.1:$proxy_port" --subscriptions "$agents" \
        --wait-seconds "$subscribe_wait" --rate "$run_rates" --seconds "$run_seconds" "${sipload_options[@]}" \
        > "$out" 2> "$out.err" &
    local generator=$!
    started_pids+=("$generator")
    sleep 0.5
    start_floorwatch "$config"
    local status=0
    wait "$generator" || status=$?
    bench_stop
    if [ "$status" -ne 0 ]; then
        echo "floorwatch-sipload failed (exit $status):" >&2
        cat "$out.err" "${config%/*}/floorwatch.log" >&2
        return 1
    fi
    sed "s/^result /result server=floorwatch part=$run /" "$out"
}

kamailio_run() {
    local run=$1 run_rates=$2 run_seconds=$3
    local port
    port=$(free_udp_port)
    start_kamailio "$port"
    local lines status=0
    lines=$(taskset -c 0 "$bin/floorwatch-sipload" stateless --target "127.0.0.1:$port" --dialogs "$agents" \
        --rate "$run_rates" --seconds "$run_seconds" "${sipload_options[@]}") || status=$?
    bench_stop
    [ "$status" -eq 0 ] || return 1
    sed "s/^result /result server=kamailio part=$run /" <<< "$lines"
}

results=$work/results.txt
: > "$results"
step_rates=$(tr ' ' ',' <<< "$rates")
# No pipeline here: a function run in a subshell would leave its server
# out of the cleanup list on failure.
for server in $servers; do
    "${server}_run" cost "$rate" "$seconds" > "$work/part.txt"
    "${server}_run" throughput "$step_rates" "$step_seconds" >> "$work/part.txt"
    tee -a "$results" < "$work/part.txt"
done

# The highest step rate whose loss stayed within the limit and which the
# generator offered at no less than 98 % of the target rate.
lossless() {
    awk -v limit="$loss_limit" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        if (f["loss_percent"] + 0 <= limit + 0 && f["offered_per_s"] + 0 >= 0.98 * f["target_rate"] && f["target_rate"] + 0 > best) best = f["target_rate"] + 0
    } END { print (best ? best : "none") }'
}

echo
printf '%-10s  %10s  %9s  %9s  %8s  %13s  %11s  %11s  %12s  %17s\n' \
    server offered/s answered lost loss_% cpu_us/notify p50_us p99_us rcvbuf_drops lossless_notify/s
for server in $servers; do
    cost=$(grep "^result server=$server part=cost " "$results" || true)
    steps=$(grep "^result server=$server part=throughput " "$results" || true)
    [ -n "$cost" ] || continue
    printf '%-10s  %10s  %9s  %9s  %8s  %13s  %11s  %11s  %12s  %17s\n' "$server" \
        "$(bench_field offered_per_s <<< "$cost")" "$(bench_field answered <<< "$cost")" \
        "$(bench_field lost <<< "$cost")" "$(bench_field loss_percent <<< "$cost")" \
        "$(bench_field server_cpu_us_per_notify <<< "$cost")" "$(bench_field latency_p50_us <<< "$cost")" \
        "$(bench_field latency_p99_us <<< "$cost")" "$(bench_field udp_rcvbuf_errors <<< "$cost")" \
        "$(lossless <<< "$steps")"
done
