#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no Debian libraries into .gpu/
# (git-ignored), about 100 MB: more than one device call carries (64 MiB), so it travels in two
# calls (.gpu/ort first; the machine keeps it while warm), see docs/gpu.md:
#   .gpu/ort/        ONNX Runtime 1.29 + its CUDA 13 provider, sm_90 only (../shared/tools/ort-cuda),
#                    with the library itself from a CUDA build (onnxruntime-node; see below)
#   .gpu/sys.tar.xz  the shared libraries lipsyncd, lipsync and bench_gpu load, minus glibc's own
#   .gpu/bin.tar.xz  those three programs, stripped
#   .gpu/avatars/gpu the first 50 frames of the demo avatar, naming the generated full-size models
#   .gpu/speech.wav  the demo sentence
# usage: scripts/gpu-pack.sh [BUILD_DIR]   (default build; the programs must be built there)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$ROOT/build}" && pwd)
G=$ROOT/.gpu
cmake --build "$B" --target lipsyncd lipsync bench_gpu -j2 >/dev/null
mkdir -p "$G"
[ -f "$G/ort/libonnxruntime.so.xz" ] || bash "$ROOT/../shared/tools/ort-cuda/make-bundle.sh" "$G/ort"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# That bundle's libonnxruntime.so is ORT's CPU-only build, which cannot host the CUDA provider (its
# provider bridge lacks the CUDA part: docs/gpu.md, "The crashes"). onnxruntime-node 1.29.0 ships the
# same release (git 2e2543fbe9) built with CUDA: its library replaces the bundle's.
if [ ! -f "$G/ort/cuda-build" ]; then
    (cd "$T" && npm pack --silent onnxruntime-node@1.29.0 >/dev/null)
    echo "cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037  $T/onnxruntime-node-1.29.0.tgz" |
        sha256sum -c --quiet -
    tar -C "$T" -xzf "$T/onnxruntime-node-1.29.0.tgz" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    xz -9 -T2 -c "$T/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" > "$G/ort/libonnxruntime.so.xz"
    rm -rf "$T/package" "$T/onnxruntime-node-1.29.0.tgz"
    echo "onnxruntime-node 1.29.0 linux x64 (CUDA build)" > "$G/ort/cuda-build"
fi
mkdir -p "$T/bin" "$T/lib"
for p in lipsyncd lipsync bench/bench_gpu; do strip -o "$T/bin/$(basename $p)" "$B/$p"; done
# The loader, libc and friends come from the GPU machine (newer glibc runs older programs).
ldd "$T"/bin/* | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(ld-linux|libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+)\.so' |
    while read -r l; do cp -L "$l" "$T/lib/"; done
tar -C "$T/lib" -cf - . | xz -9 -T2 > "$G/sys.tar.xz"
tar -C "$T/bin" -cf - . | xz -9 -T2 > "$G/bin.tar.xz"
A=$G/avatars/gpu
rm -rf "$A" && mkdir -p "$A/frames"
cp "$B"/avatars/demo/frames/00[0-4]?.jpg "$A/frames/"
python3 - "$B/avatars/demo/crop_rects.json" "$A" <<'EOF'
import json, sys
boxes = json.load(open(sys.argv[1]))[:50]
json.dump(boxes, open(sys.argv[2] + "/crop_rects.json", "w"))
json.dump({"name": "gpu", "fps": 25, "width": 1280, "height": 720, "frame_count": 50, "frames": "frames",
           "boxes": "crop_rects.json", "unet": "../../models/unet328.onnx",
           "encoder": "../../models/ave_encoder.onnx"}, open(sys.argv[2] + "/manifest.json", "w"), indent=1)
EOF
cp "$B/demo/sentence.wav" "$G/speech.wav"
git -C "$ROOT" rev-parse --short HEAD > "$G/commit"
du -sh "$G" && du -ch "$G"/* | tail -1
