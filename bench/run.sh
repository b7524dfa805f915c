#!/usr/bin/env bash
# run.sh BUILD_DIR - runs the benchmarks built in BUILD_DIR (`make bench` builds build-bench in
# Release with the bench_all target, the models and the demo avatar), prints one table and writes
# the same figures to bench/results/<date>-<commit>.json (with CPU model, core count, commit), then
# draws bench/results/<date>-<commit>.png with bench/plot.py.
#   BENCH_QUICK=1 bench/run.sh build-bench   fewer repeats (a smoke run; figures are noisier)
# Not a test: nothing here passes or fails on the numbers.
set -euo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3 # Debian's python (matplotlib from python3-matplotlib), not a pyenv one
[ -x "$PY" ] || PY=python3
cd "$ROOT"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=false
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=true
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cores=$(nproc)
out="$ROOT/bench/results/$(date +%Y-%m-%d)-$commit.json"
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
mkdir -p "$ROOT/bench/results"

# --- per stage, UNet, end to end (offline renderer), allocations: bench_stages ---------------------
run_stages() {
  echo "bench_stages (about 2-3 minutes on 2 cores; progress below)" >&2
  "$BUILD/bench/bench_stages" --build "$BUILD" --json "$parts/stages.json" ${BENCH_QUICK:+--quick}
}

# --- lipsyncd over gRPC (demo models): 1/2/4 concurrent clients, p50/p99, protobuf/gRPC overhead, ---
# --- RSS over 10,000 requests: bench/lipsyncd_bench.py with `lipsync client bench` as the load client.
run_lipsyncd() {
  if [ ! -x "$BUILD/lipsyncd" ] || [ ! -x "$BUILD/lipsync" ]; then
    echo "lipsyncd section skipped: needs $BUILD/lipsyncd and $BUILD/lipsync; no figures recorded" >&2
    return 0
  fi
  echo "lipsyncd section (demo models; about 2 minutes)" >&2
  "$PY" "$ROOT/bench/lipsyncd_bench.py" "$BUILD" "$parts/lipsyncd.json" ${BENCH_QUICK:+--quick}
}

run_stages
run_lipsyncd

"$PY" "$ROOT/bench/report.py" --out "$out" --cpu "$cpu" --cores "$cores" --commit "$commit" \
  --dirty "$dirty" "$parts"/*.json
if "$PY" -c 'import matplotlib' 2>/dev/null; then
  "$PY" "$ROOT/bench/plot.py" "$out" "${out%.json}.png"
else
  echo "chart skipped: python3-matplotlib is not installed (scripts/install-deps.sh installs it)" >&2
fi

# --- live sessions (Stream RPC): realtime first-frame latency, jitter, sessions without drops (demo
# --- models); unet328 frames/s for 1/4/8 burst sessions, batching on vs off: bench/stream_bench.py.
# Its figures go to their own results file, <date>-<commit>-stream.json (same format, same table).
run_stream() {
  if [ ! -x "$BUILD/lipsyncd" ] || [ ! -x "$BUILD/lipsync" ]; then
    echo "stream section skipped: needs $BUILD/lipsyncd and $BUILD/lipsync; no figures recorded" >&2
    return 0
  fi
  echo "stream section (demo models, then unet328; about 3 minutes)" >&2
  "$PY" "$ROOT/bench/stream_bench.py" "$BUILD" "$parts/stream.json" ${BENCH_QUICK:+--quick}
  "$PY" "$ROOT/bench/report.py" --out "${out%.json}-stream.json" --cpu "$cpu" --cores "$cores" \
    --commit "$commit" --dirty "$dirty" "$parts/stream.json"
}
run_stream
