#!/usr/bin/env bash
# Fetches the pinned ONNX Runtime 1.29 C API (headers + Linux x86-64 library) from the npm registry,
# verifies the tarball's checksum and unpacks only what the build needs into third_party/onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg="com.github.asus4.onnxruntime@0.4.9"
sha="e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d"
dest=third_party/onnxruntime
[ -f "$dest/.complete" ] && exit 0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "fetch-onnxruntime: npm pack $pkg"
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tgz=$(ls "$tmp"/*.tgz)
echo "$sha  $tgz" | sha256sum -c --quiet - || { echo "fetch-onnxruntime: checksum mismatch" >&2; exit 1; }
hdr="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
lib="package/Plugins/Linux/x64"
tar -xzf "$tgz" -C "$tmp" "$hdr" "$lib/libonnxruntime.so"
rm -rf "$dest"; mkdir -p "$dest/include" "$dest/lib"
cp "$tmp/$hdr"/*.h "$dest/include/"
cp "$tmp/$lib/libonnxruntime.so" "$dest/lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$dest/lib/libonnxruntime.so"
touch "$dest/.complete"
echo "fetch-onnxruntime: ready in $dest"
