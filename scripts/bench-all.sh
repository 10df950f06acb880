#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md in turn and keeps the output in
# bench-results-<UTC time>.txt in the current directory.
#
# Usage: scripts/bench-all.sh
set -euo pipefail
here=$(dirname "$0")
out=bench-results-$(date -u +%Y%m%dT%H%M%SZ).txt
{
    echo "== engine"
    "$here/bench-engine.sh"
    echo "== ingest"
    "$here/bench-ingest.sh" 5
    echo "== propagation"
    "$here/bench-propagation.sh"
} 2>&1 | tee "$out"
echo "results kept in $out"
