# Helpers the bench-*.sh scripts source: release build, a scratch
# directory with a config and an admin token, starting and stopping the
# servers they measure, and medians. Every server listens on 127.0.0.1 and
# is stopped by its process id when the script exits, even on failure.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release
clock_ticks=$(getconf CLK_TCK)
started_pids=()

bench_build() {
    (cd "$root" && cargo build --release --locked --bin floorwatch --bin floorwatch-load) >&2
}

# Creates $work with a token and its hash, and removes it on exit.
bench_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/floorwatch-bench.XXXXXX")
    trap bench_cleanup EXIT
    token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    token_hash=$(printf %s "$token" | "$bin/floorwatch" hash-token)
}

bench_cleanup() {
    local pid
    for pid in "${started_pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}

# Writes $work/run-$1/floorwatch.toml with a fresh state directory.
# Extra [limits] lines may follow as arguments.
bench_config() {
    local dir=$work/run-$1
    shift
    mkdir -p "$dir"
    {
        echo '[site]'
        echo 'name = "floorwatch benchmark"'
        echo '[listen]'
        echo 'grpc = "127.0.0.1:0"'
        echo 'admin = "127.0.0.1:0"'
        echo '[storage]'
        echo "state_dir = \"$dir/state\""
        echo "journal_batch_max = ${JOURNAL_BATCH_MAX:-4096}"
        echo "journal_batch_delay_ms = ${JOURNAL_BATCH_DELAY_MS:-2}"
        echo '[limits]'
        local line
        for line in "$@"; do echo "$line"; done
        echo '[telemetry]'
        echo 'log_filter = "warn,floorwatch::daemon=info"'
        echo '[auth]'
        echo '[[auth.token]]'
        echo 'name = "bench-admin"'
        echo 'role = "admin"'
        echo "sha256 = \"$token_hash\""
    } > "$dir/floorwatch.toml"
    echo "$dir/floorwatch.toml"
}

# Starts `floorwatch serve`; sets server_pid and server_addr.
bench_start_floorwatch() {
    local config=$1
    local log=${config%/*}/floorwatch.log
    "$bin/floorwatch" serve --config "$config" 2> "$log" &
    server_pid=$!
    started_pids+=("$server_pid")
    server_addr=
    for _ in $(seq 1 100); do
        server_addr=$(sed -n 's/.*gRPC API listening grpc_addr=\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$server_addr" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "floorwatch did not report its gRPC address; log follows" >&2
    cat "$log" >&2
    return 1
}

# Starts `floorwatch-load echo-server`; sets server_pid and server_addr.
bench_start_echo() {
    local out=$work/echo-$1.out
    "$bin/floorwatch-load" echo-server --addr 127.0.0.1:0 > "$out" &
    server_pid=$!
    started_pids+=("$server_pid")
    server_addr=
    for _ in $(seq 1 100); do
        server_addr=$(sed -n 's/^echo-server listening on //p' "$out")
        [ -n "$server_addr" ] && return 0
        sleep 0.1
    done
    echo "echo-server did not report its address" >&2
    return 1
}

# Stops the server started last.
bench_stop() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# Prints the value of key $1 from a `result …` line on stdin.
bench_field() {
    tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Prints the median of the numbers on stdin, one a line.
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_machine() {
    echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
        "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)')"
    echo "load average before the run: $(cut -d ' ' -f 1-3 /proc/loadavg)"
}
