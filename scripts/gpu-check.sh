#!/usr/bin/env bash
# The whole GPU check in one go, on a GPU machine, from the bundle scripts/gpu-pack.sh made in .gpu/:
#   1. the card, driver and commit;
#   2. the full-size models generated (tools/gen_models.py) and converted to fp16 (tools/onnx_fp16.py);
#   3. bench_gpu: UNet-only speed per setting and batch, accuracy against the CPU and fp16 vs fp32;
#   4. lipsyncd on CUDA end to end over loopback gRPC: `lipsync client bench` with several concurrent
#      clients, fp32 and fp16 avatars, batch 25 and batch 8.
# Everything it measures goes to OUT (default $OUT, else /tmp/gpu-out): *.json, *.txt, logs.
# usage: scripts/gpu-check.sh [OUT]      env: QUICK=1 for a short run, PROVIDER=cpu to rehearse it
#        on a machine without a GPU (then .gpu/ort is not needed: the build's ONNX Runtime is used).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-${OUT:-/tmp/gpu-out}}
PROVIDER=${PROVIDER:-cuda}
W=${W:-/tmp/lsgpu}
REPEATS=30 REQUESTS=12 THREADS="4 8 16"
[ "${QUICK:-0}" = 1 ] && REPEATS=3 REQUESTS=2 THREADS="2"
mkdir -p "$OUT" "$W/lib" "$W/bin" "$W/models" "$W/avatars"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

log "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || cat "$ROOT/.gpu/commit" 2>/dev/null)"
if [ "$PROVIDER" = cuda ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$OUT/summary.txt"
  tar -C "$W/lib" -xJf "$ROOT/.gpu/sys.tar.xz" && tar -C "$W/bin" -xJf "$ROOT/.gpu/bin.tar.xz" || exit 1
  export LD_LIBRARY_PATH="$W/lib"
  export LIPSYNC_ORT_LIBRARY=/tmp/ort-cuda/libonnxruntime.so.1
  RUN="$ROOT/.gpu/ort/run-on-device.sh"
  PY=python3
else
  cp "$ROOT"/build/lipsyncd "$ROOT"/build/lipsync "$ROOT"/build/bench/bench_gpu "$W/bin/"
  RUN=""
  PY=/usr/bin/python3
fi

log "models"
[ -f "$W/models/unet328.onnx" ] || $PY "$ROOT/tools/gen_models.py" --out "$W/models" --seed 1234 >"$OUT/models.txt" 2>&1 || { cat "$OUT/models.txt"; exit 1; }
[ -f "$W/models/unet328_fp16.onnx" ] || $PY "$ROOT/tools/onnx_fp16.py" "$W/models/unet328.onnx" "$W/models/unet328_fp16.onnx" >>"$OUT/models.txt" 2>&1
tail -3 "$OUT/models.txt"
FP16=(); [ -f "$W/models/unet328_fp16.onnx" ] && FP16=(--unet-fp16 "$W/models/unet328_fp16.onnx")
rm -rf "$W/avatars/gpu" "$W/avatars/gpu16"
cp -r "$ROOT/.gpu/avatars/gpu" "$W/avatars/gpu"
cp -r "$W/avatars/gpu" "$W/avatars/gpu16" && sed -i 's/unet328.onnx/unet328_fp16.onnx/' "$W/avatars/gpu16/manifest.json"

log "bench_gpu (UNet alone, accuracy)"
BATCHES=1,8,25,32; [ "$PROVIDER" = cpu ] && BATCHES=1
timeout 420 $RUN "$W/bin/bench_gpu" --provider "$PROVIDER" --unet "$W/models/unet328.onnx" "${FP16[@]}" \
  --avatar "$W/avatars/gpu" --encoder "$W/models/ave_encoder.onnx" --audio "$ROOT/.gpu/speech.wav" \
  --batches $BATCHES --repeats $REPEATS --json "$OUT/bench_gpu.json" 2>&1 | tee "$OUT/bench_gpu.txt"

log "lipsyncd end to end"
WORKERS=$(nproc)
export LIPSYNC_SERVER=127.0.0.1:50077
C="$W/bin/lipsync client"
# start_server NAME GRAPHS: lipsyncd on $PROVIDER with CUDA graphs on or off, logging to OUT/NAME.log
start_server() {
  cat > "$W/$1.yaml" <<EOF
server: {listen: "127.0.0.1:50077", worker_count: $WORKERS, queue_depth: 256}
avatars_root: $W/avatars
capacity: {max_batch: 32, max_models: 4, max_memory_gb: 32}
onnx: {provider: $PROVIDER, uint8_io: true, optimized_model_dir: "", cuda: {cuda_graph: $2}}
EOF
  $RUN "$W/bin/lipsyncd" --config "$W/$1.yaml" >"$OUT/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 120); do grep -q listening "$OUT/$1.log" && break; kill -0 $PID 2>/dev/null || break; sleep 0.5; done
  grep -E "listening|warn|error" "$OUT/$1.log" | tee -a "$OUT/summary.txt"
}
stop_server() {
  $RUN $C stats >"$OUT/$1.stats.txt" 2>&1
  kill -TERM $PID; wait $PID; echo "lipsyncd ($1) exit $?" | tee -a "$OUT/summary.txt"
}
# bench_e2e AVATAR BATCH THREADS...
bench_e2e() {
  local av=$1 batch=$2; shift 2
  for t in "$@"; do
    echo "-- avatar $av batch $batch threads $t" | tee -a "$OUT/e2e.txt"
    timeout 150 $RUN $C bench --timeout-ms 140000 --avatar $av --audio "$ROOT/.gpu/speech.wav" --batch $batch \
      --threads $t --requests $REQUESTS 2>&1 | tee -a "$OUT/e2e.txt"
  done
}
start_server e2e false
for av in gpu gpu16; do
  $RUN $C load --avatar $av >>"$OUT/e2e.txt" 2>&1
  bench_e2e $av 25 $THREADS
  bench_e2e $av 8 $THREADS
done
stop_server e2e
if [ "$PROVIDER" = cuda ]; then
  log "lipsyncd end to end, CUDA graphs"
  echo "== CUDA graphs" >>"$OUT/e2e.txt"
  start_server e2e_graphs true
  for av in gpu gpu16; do bench_e2e $av 25 16; done
  stop_server e2e_graphs
fi
log "done"
