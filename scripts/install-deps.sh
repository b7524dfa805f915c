#!/usr/bin/env bash
# Installs what lipsyncd needs on Debian 12: build tools and libraries from apt, and the pinned
# ONNX Runtime (C API) from the npm registry. Safe to run again; skips what is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git clang
  libfftw3-dev libturbojpeg0-dev libjpeg62-turbo-dev libspng-dev libcjson-dev libyaml-dev
  libavformat-dev libavcodec-dev libavutil-dev libswresample-dev libswscale-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
  python3 python3-numpy python3-onnx python3-opencv python3-grpcio python3-grpc-tools
  python3-matplotlib
  espeak-ng ffmpeg openssl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# npm fetches ONNX Runtime; a Node.js from elsewhere (e.g. NodeSource, which conflicts with
# Debian's npm package) serves as well as Debian's.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
scripts/fetch-onnxruntime.sh
