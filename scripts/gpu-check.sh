#!/usr/bin/env bash
# The whole GPU check in one go, on a GPU machine, from the bundle scripts/gpu-pack.sh made in .gpu/:
#   1. the card, driver and commit;
#   2. the full-size models generated (tools/gen_models.py) and converted to fp16 (tools/onnx_fp16.py);
#   3. probes: each small step (encoder, UNet, uint8 UNet, both in one process, CUDA graphs) in its
#      own process, for each way of adding the CUDA provider (EP-device API with device or host
#      tensors, classic options; until one runs every step), so that a crash inside ONNX Runtime names
#      its step; a crashed step is rerun with ONNX Runtime's log on;
#   4. bench_gpu with the first way that ran every step: UNet-only speed per setting and batch,
#      accuracy against the CPU and fp16 against fp32;
#   4b. `lipsync render` with the pipelined worker and without;
#   5. lipsyncd on CUDA end to end over loopback gRPC: `lipsync client bench` with several concurrent
#      clients, fp32 and fp16 avatars, batch 25 and batch 8, without and with CUDA graphs;
#   6. live sessions (Stream, burst pacing, 1 s chunks): 8 and 16 concurrent sessions, the
#      scheduler pipelined (the default with cuda) with stream.max_batch 8, then (after the CUDA
#      graphs server, while BUDGET seconds last) serial and pipelined with max_batch 32.
# Everything it measures goes to OUT (default /tmp/gpu-out): summary.txt first, then the details.
# Each section first checks the time budget (BUDGET seconds from the start) and is skipped, logged,
# when too little is left; programs run under timeouts capped by what is left of it (a server's
# start and stop can still take up to 60 s and 35 s past it: gpu-device-run.sh leaves room).
# usage: scripts/gpu-check.sh [OUT]      env: QUICK=1 for a short run, PROVIDER=cpu to rehearse it
#        on a machine without a GPU (then the build's programs and ONNX Runtime are used).
# On the device, scripts/gpu-device-run.sh runs this and packs OUT into the files that come back.
set -uo pipefail
ulimit -c 0  # a crash inside the CUDA provider must not write a core file of the process's size
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/gpu-out}
PROVIDER=${PROVIDER:-cuda}
W=${W:-/tmp/lsgpu}
REPEATS=30 REQUESTS=12 THREADS="8 16" SESSIONS="8 16"
[ "${QUICK:-0}" = 1 ] && REPEATS=3 REQUESTS=2 THREADS="2" SESSIONS="2"
BUDGET=${BUDGET:-520}  # seconds for the whole script (a device call may run 600, packing included)
mkdir -p "$OUT" "$W/lib" "$W/bin" "$W/models" "$W/avatars"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }
# time_left SECONDS WHAT: true when SECONDS remain in the budget, else logs that WHAT is skipped
time_left() { [ $((BUDGET - SECONDS)) -ge "$1" ] || { log "skipped (time budget): $2"; return 1; }; }
# cap SECONDS: SECONDS, or what is left of the budget when that is less (at least 5), for `timeout`
cap() { local left=$((BUDGET - SECONDS < 5 ? 5 : BUDGET - SECONDS)); echo $((left < $1 ? left : $1)); }

log "commit $(cat "$ROOT/.gpu/commit" 2>/dev/null) (programs packed), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no git") (tree)"
if [ "$PROVIDER" = cuda ]; then
  [ -x "$ROOT/.gpu/ort/run-on-device.sh" ] ||
    { log "no .gpu/ort here (the first device call carries it; the machine keeps it 30 s): run that call again"; exit 3; }
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT/summary.txt"
  tar -C "$W/lib" -xJf "$ROOT/.gpu/sys.tar.xz" && tar -C "$W/bin" -xJf "$ROOT/.gpu/bin.tar.xz" || exit 1
  export LD_LIBRARY_PATH="$W/lib"
  export LIPSYNC_ORT_LIBRARY=/tmp/ort-cuda/libonnxruntime.so.1
  rm -f /tmp/ort-cuda/libonnxruntime.so  # a warm machine may keep an older bundle's CPU-only build
  RUN="$ROOT/.gpu/ort/run-on-device.sh"
  PY=python3
else
  cp "$ROOT"/build/lipsyncd "$ROOT"/build/lipsync "$ROOT"/build/bench/bench_gpu "$W/bin/"
  RUN=""
  PY=/usr/bin/python3
fi
BENCH="$W/bin/bench_gpu --provider $PROVIDER"

log "models"
M=$W/models
[ -f "$M/unet328.onnx" ] || $PY "$ROOT/tools/gen_models.py" --out "$M" --seed 1234 >"$OUT/models.txt" 2>&1 ||
  { cat "$OUT/models.txt"; exit 1; }
[ -f "$M/unet328_fp16.onnx" ] || $PY "$ROOT/tools/onnx_fp16.py" "$M/unet328.onnx" "$M/unet328_fp16.onnx" >>"$OUT/models.txt" 2>&1
[ -f "$OUT/models.txt" ] && tail -3 "$OUT/models.txt" | tee -a "$OUT/summary.txt"
FP16=(); [ -f "$M/unet328_fp16.onnx" ] && FP16=(--unet-fp16 "$M/unet328_fp16.onnx")
rm -rf "$W/avatars/gpu" "$W/avatars/gpu16"
cp -r "$ROOT/.gpu/avatars/gpu" "$W/avatars/gpu"
cp -r "$W/avatars/gpu" "$W/avatars/gpu16" && sed -i 's/unet328.onnx/unet328_fp16.onnx/' "$W/avatars/gpu16/manifest.json"

log "probes"
# probe API HOST_TENSORS STEP: one process; its result line goes to probes.txt; 0 when it ran.
probe() {
  local args=(--api "$1" --host-tensors "$2" --unet "$M/unet328.onnx" --encoder "$M/ave_encoder.onnx" --probe "$3")
  local out rc
  out=$(timeout -k 5 "$(cap 90)" $RUN $BENCH "${args[@]}" 2>&1); rc=$?
  echo "api=$1 host_tensors=$2 step=$3 rc=$rc: $(echo "$out" | grep -E '^probe' | tr '\n' ' ' | cut -c1-400)" |
    tee -a "$OUT/probes.txt"
  if [ $rc -ge 128 ] && [ $rc != 137 ]; then  # crashed (not hung): once more with ONNX Runtime's log
    LIPSYNC_ORT_LOG=info timeout -k 5 "$(cap 60)" $RUN $BENCH "${args[@]}" >"$W/probe.log" 2>&1
    { echo "   ORT log, last lines:"; tail -15 "$W/probe.log" | cut -c1-300 | sed 's/^/   /'; } >>"$OUT/probes.txt"
  fi
  return $rc
}
# The first way that runs every step is used (later ways are not probed: device time is scarce).
# If none runs the uint8-wrapped UNet, the first that runs the float UNet is used without uint8 I/O.
WAY="" FLOAT_WAY="" UINT8=true
for way in "ep_device 0" "ep_device 1" "classic 0"; do
  ok=1 float_ok=1
  for step in encoder unet unet_u8 both; do
    probe $way $step || { ok=0; [ $step = encoder ] || [ $step = unet ] && float_ok=0; }
  done
  [ $float_ok = 1 ] && [ -z "$FLOAT_WAY" ] && FLOAT_WAY=$way
  [ $ok = 1 ] && { WAY=$way; break; }
done
if [ -z "$WAY" ]; then
  UINT8=false WAY=${FLOAT_WAY:-"ep_device 0"}
  log "no way of running the CUDA provider ran every step (probes.txt): using $WAY without uint8 I/O"
fi
set -- $WAY; API=$1 HOST=$2
GRAPHS=false  # graphs need the EP-device API with device tensors
[ "$API $HOST" = "ep_device 0" ] && probe ep_device 0 graphs && GRAPHS=true
log "using api=$API host_tensors=$HOST, uint8 I/O $UINT8, CUDA graphs $GRAPHS"
U8FLAG=1 GRFLAG=1; [ $UINT8 = true ] || U8FLAG=0; [ $GRAPHS = true ] || GRFLAG=0

if time_left 120 "bench_gpu"; then
  log "bench_gpu (UNet alone, accuracy)"
  BATCHES=1,8,25,32; [ "$PROVIDER" = cpu ] && BATCHES=1
  timeout -k 5 "$(cap 240)" $RUN $BENCH --api $API --host-tensors $HOST --uint8 $U8FLAG --graphs $GRFLAG \
    --unet "$M/unet328.onnx" "${FP16[@]}" --avatar "$W/avatars/gpu" --encoder "$M/ave_encoder.onnx" \
    --audio "$ROOT/.gpu/speech.wav" --batches $BATCHES --repeats $REPEATS --json "$OUT/bench_gpu.json" \
    >"$OUT/bench_gpu.txt" 2>&1
  echo "bench_gpu exit $?" >>"$OUT/bench_gpu.txt"
  grep -vE "^\s*$" "$OUT/bench_gpu.txt" | cut -c1-200 | tee -a "$OUT/summary.txt"
fi

if time_left 200 "lipsync render"; then
  log "lipsync render, pipelined vs serial (UNet beside prep and composite, render.h)"
  U8ARG=(); [ $UINT8 = true ] && U8ARG=(--uint8-io)
  for pl in on off; do
    timeout -k 5 "$(cap 60)" $RUN "$W/bin/lipsync" render --provider $PROVIDER --avatar "$W/avatars/gpu" \
      --audio "$ROOT/.gpu/speech.wav" --frames "$W/render_$pl" --batch 25 --pipeline $pl "${U8ARG[@]}" 2>&1 |
      grep -E "rendered|error" | sed "s/^/pipeline $pl: /" | cut -c1-200 | tee -a "$OUT/summary.txt"
  done
fi

WORKERS=$(nproc)
export LIPSYNC_SERVER=127.0.0.1:50077
C="$W/bin/lipsync client"
DEVT=true; [ "$HOST" = 1 ] && DEVT=false
# start_server NAME GRAPHS [PIPELINE [STREAM_BATCH]]: lipsyncd on $PROVIDER with CUDA graphs on or
# off, logging to OUT/NAME.log; PIPELINE true|false (default: lipsyncd's), live-session max_batch.
start_server() {
  local pl=""; [ -n "${3:-}" ] && pl=", pipeline: $3"
  cat > "$W/$1.yaml" <<EOF
server: {listen: "127.0.0.1:50077", worker_count: $WORKERS, queue_depth: 256}
avatars_root: $W/avatars
capacity: {max_batch: 32, max_models: 4, max_memory_gb: 32$pl}
stream: {max_sessions: 16, max_sessions_per_model: 16, max_batch: ${4:-8}}
onnx: {provider: $PROVIDER, uint8_io: $UINT8, optimized_model_dir: "",
       cuda: {cuda_graph: $2, api: $API, device_tensors: $DEVT}}
EOF
  $RUN "$W/bin/lipsyncd" --config "$W/$1.yaml" >"$OUT/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 120); do grep -q listening "$OUT/$1.log" && break; kill -0 $PID 2>/dev/null || break; sleep 0.5; done
  grep -q listening "$OUT/$1.log" || log "lipsyncd ($1) did not start" 
  grep -E "listening|warn|error" "$OUT/$1.log" | cut -c1-300 | tee -a "$OUT/summary.txt"
}
stop_server() {
  timeout "$(cap 20)" $C stats 2>&1 | tee -a "$OUT/e2e.txt" | grep -E "^(memory|inference)" | sed "s/^/$1: /" |
    tee -a "$OUT/summary.txt"
  [ "$PROVIDER" = cuda ] && echo "$1: GPU memory used $(nvidia-smi --query-gpu=memory.used \
    --format=csv,noheader | tr '\n' ' ')(ORT's own count: 'inference (gpu N)' above)" | tee -a "$OUT/summary.txt"
  kill -TERM $PID
  for _ in $(seq 30); do kill -0 $PID 2>/dev/null || break; sleep 0.5; done
  kill -0 $PID 2>/dev/null && { log "lipsyncd ($1) still running 15 s after SIGTERM: killed"; kill -KILL $PID; }
  wait $PID; echo "lipsyncd ($1) exit $?" | tee -a "$OUT/summary.txt"
}
# bench_e2e AVATAR BATCH THREADS...: after a load that worked
bench_e2e() {
  local av=$1 batch=$2; shift 2
  for t in "$@"; do
    time_left 40 "client bench $av batch $batch threads $t" || return 1
    echo "-- avatar $av batch $batch threads $t" | tee -a "$OUT/e2e.txt"
    timeout -k 5 "$(cap 90)" $C bench --timeout-ms 80000 --avatar $av --audio "$ROOT/.gpu/speech.wav" --batch $batch \
      --threads $t --requests $REQUESTS 2>&1 | tee -a "$OUT/e2e.txt" | grep -E "^--|throughput|latency per|failed" |
      tee -a "$OUT/summary.txt"
  done
}
# stream_burst AVATAR N TAG [SUMMARY]: N concurrent live sessions of the speech, burst pacing;
# frames/s over the wall time of the whole group and the scheduler's runs as the session that saw
# the most reported them, to SUMMARY (default OUT/summary.txt)
stream_burst() {
  local av=$1 n=$2 tag=$3 summary=${4:-$OUT/summary.txt} pids=() t0 t1 limit
  time_left 30 "stream $tag, avatar $av, $n sessions" || return 1
  limit=$(cap 90)
  t0=$(date +%s.%N)
  for i in $(seq "$n"); do
    timeout -k 5 "$limit" $C stream --timeout-ms $((limit * 1000 - 5000)) --avatar "$av" --audio "$ROOT/.gpu/speech.wav" \
      --chunk-ms 1000 --stats-ms 600000 >"$W/stream_$i.txt" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(date +%s.%N)
  cat "$W"/stream_*.txt >>"$OUT/stream.txt"
  local frames runs
  frames=$(grep -ohE "frames: [0-9]+ received" "$W"/stream_*.txt | awk '{s += $2} END {print s + 0}')
  runs=$(grep -ohE "runs [0-9]+ \([0-9]+ frames, [0-9]+ overlapped\)" "$W"/stream_*.txt | sort -k2,2n | tail -1)
  echo "stream $tag, avatar $av, $n sessions: $($PY -c "import sys; f, s = int(sys.argv[1]), float(sys.argv[3]) - \
float(sys.argv[2]); print('%d frames in %.2f s = %.1f frames/s' % (f, s, f / s))" "$frames" "$t0" "$t1");" \
    "UNet $runs" | tee -a "$summary"
  rm -f "$W"/stream_*.txt
}
load() { timeout "$(cap 60)" $C load --avatar "$1" 2>&1 | tee -a "$OUT/e2e.txt" | head -2 | tee -a "$OUT/summary.txt" |
  grep -qE "^loaded|already loaded"; }
time_left 120 "lipsyncd end to end" || { log "done"; exit 0; }
log "lipsyncd end to end"
start_server e2e false
for av in gpu gpu16; do
  load $av || continue
  bench_e2e $av 25 $THREADS
  bench_e2e $av 8 $THREADS
done
for av in gpu gpu16; do
  load $av || continue
  stream_burst $av 1 "warm-up" "$OUT/stream.txt" >/dev/null
  for n in $SESSIONS; do stream_burst $av "$n" "default (pipelined with cuda) max_batch 8"; done
done
stop_server e2e
if [ "$PROVIDER" = cuda ] && [ $GRAPHS = true ] && time_left 90 "lipsyncd with CUDA graphs"; then
  log "lipsyncd end to end, CUDA graphs"
  start_server e2e_graphs true
  for av in gpu gpu16; do load $av && bench_e2e $av 25 16; done
  stop_server e2e_graphs
fi
for variant in "serial false 8" "pipelined_b32 true 32"; do
  set -- $variant
  time_left 60 "live sessions, scheduler $1" || break
  log "live sessions: the scheduler $1, stream.max_batch $3"
  start_server "stream_$1" false "$2" "$3"
  if load gpu; then
    stream_burst gpu 1 "warm-up" "$OUT/stream.txt" >/dev/null
    for n in $SESSIONS; do stream_burst gpu "$n" "$1 max_batch $3"; done
  fi
  stop_server "stream_$1"
done
log "done"
