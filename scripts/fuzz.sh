#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for SECONDS
# (default 180), and prints executions, exec/s, coverage and findings per
# target. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target writes new inputs to fuzz/corpus/TARGET and findings to
# fuzz/artifacts/TARGET; its libFuzzer log goes to fuzz/logs/TARGET.log.
# The shared protocol corpus (FUZZ_SEED_DIR, default ../shared/corpus beside
# the repository) is read as extra seed directories and never written to.
# libFuzzer runs in-process with one job, so a run uses one core.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-180}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sip_inspect dialog_info pidf reginfo agent_state)
fi

fuzz_dir=$root/fuzz
seed_dir=${FUZZ_SEED_DIR:-$(dirname "$root")/shared/corpus}
target_dir=${CARGO_TARGET_DIR:-$fuzz_dir/target}
logs=$fuzz_dir/logs
scratch=$(mktemp -d "${TMPDIR:-/tmp}/floorwatch-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

if [ ! -d "$seed_dir" ]; then
    echo "fuzz.sh: seed directory $seed_dir not found; set FUZZ_SEED_DIR, or the targets start from an empty corpus" >&2
fi

# Prints the seed directories for a target; missing ones are left out.
seed_dirs() {
    local names
    case $1 in
        sip_inspect) names=(rfc4475 rfc5118 siprec-vendor cases) ;;
        agent_state) echo "$scratch/agent_state-seeds"; return ;;
        *) names=(rfc-bodies cases) ;;
    esac
    local name
    for name in "${names[@]}"; do
        [ -d "$seed_dir/$name" ] && echo "$seed_dir/$name"
    done
    return 0
}

# Prints one agent_state record: op byte, little-endian u16 length, body.
record() {
    local op=$1 file=$2 size
    size=$(stat -c %s "$file")
    if [ "$size" -gt 65535 ]; then
        return
    fi
    printf "\\x$(printf %02x "$op")\\x$(printf %02x $((size & 255)))\\x$(printf %02x $((size >> 8)))"
    cat "$file"
}

# Builds agent_state seeds in the record format from the shared bodies:
# one file per body, and one file per package with all its bodies in order.
make_agent_state_seeds() {
    local out=$scratch/agent_state-seeds package op file
    mkdir -p "$out"
    [ -d "$seed_dir" ] || return 0
    for package in dialoginfo:0 pidf:1 reginfo:2; do
        op=${package#*:}
        printf '\x00' >"$out/all-${package%:*}"
        for file in "$seed_dir"/rfc-bodies/*.xml "$seed_dir"/cases/*.xml; do
            [ -f "$file" ] || continue
            case ${file,,} in
                *dialog*) [ "$op" = 0 ] || continue ;;
                *pidf* | *rpid*) [ "$op" = 1 ] || continue ;;
                *reginfo*) [ "$op" = 2 ] || continue ;;
                *) continue ;;
            esac
            # A 60-second step (op + 5 * 12) before each document.
            { printf '\x00'; record $((op + 60)) "$file"; } >"$out/$(basename "$file")"
            record $((op + 60)) "$file" >>"$out/all-${package%:*}"
        done
    done
}

dictionary() {
    case $1 in
        sip_inspect) echo "$fuzz_dir/dict/sip.dict" ;;
        *) echo "$fuzz_dir/dict/xml.dict" ;;
    esac
}

cd "$root"
cargo +nightly fuzz build --target-dir "$target_dir" >&2
make_agent_state_seeds
mkdir -p "$logs"

summary=()
for target in "${targets[@]}"; do
    corpus=$fuzz_dir/corpus/$target
    artifacts=$fuzz_dir/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    mapfile -t seeds < <(seed_dirs "$target")
    log=$logs/$target.log
    echo "fuzz.sh: $target for ${seconds} s, log in $log" >&2

    # libFuzzer exits non-zero on a finding; report it and go on.
    status=0
    cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -dict="$(dictionary "$target")" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    findings=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
    summary+=("$target: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-cov: ?}, corpus $units files, $findings findings (exit $status)")
done

printf '%s\n' "${summary[@]}"
