#!/usr/bin/env bash
# run.sh - runs fuzz_requests for a bounded time (what CI does, through ctest's fuzz_requests).
# Usage: fuzz/run.sh FUZZER PROTO_DIR WORK_DIR SECONDS
# Seeds are generated afresh (make_seeds.py) into WORK_DIR/seeds; what the fuzzer finds new is kept
# in WORK_DIR/corpus between runs. A crash, leak, sanitizer report or failed property leaves its
# input in WORK_DIR (crash-*, leak-*, ...) and makes this exit non-zero.
set -euo pipefail
fuzzer=$1 proto=$2 work=$3 seconds=$4
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3; [ -x "$python" ] || python=python3
mkdir -p "$work/corpus"
rm -rf "$work/seeds"
"$python" "$here/make_seeds.py" "$proto" "$work/seeds"
cd "$work"
# -max_len: room for a few seconds of audio; -timeout: one input may take at most 10 s;
# -rss_limit_mb: well above the ~0.5 GB it uses.
exec "$fuzzer" -max_total_time="$seconds" -max_len=131072 -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 "$work/corpus" "$work/seeds"
