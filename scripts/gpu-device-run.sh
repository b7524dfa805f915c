#!/usr/bin/env bash
# The second device call of the GPU check (docs/gpu.md, "Running the GPU check"): runs
# scripts/gpu-check.sh inside the call's time and packs its results into what a device call can
# return (at most 8 files under $OUT): $OUT/summary.txt, $OUT/probes.txt and $OUT/gpu-out.tgz
# (every file the check wrote, server logs included).
# usage (on the device machine, in the repository root): scripts/gpu-device-run.sh SECONDS
#   SECONDS: the call's timeout_s. The check plans its sections within SECONDS - 45 and is stopped
#   at SECONDS - 20 at the latest, so the packing below always runs before the call is killed.
#   Exit 3: .gpu/ort is missing (the machine went cold after the first call): repeat both calls.
#   Exit 10: the check was stopped at its limit (its results are packed all the same).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIMIT=${1:?usage: scripts/gpu-device-run.sh SECONDS}
DEST=${OUT:?OUT, the folder a device call returns, is not set}
[ "$LIMIT" -ge 120 ] || { echo "gpu-device-run.sh: $LIMIT s is too short for the check" >&2; exit 2; }
WORK=${WORK:-/tmp/gpu-out}
rm -rf "$WORK" && mkdir -p "$WORK"
BUDGET=$((LIMIT - 45)) timeout -k 5 $((LIMIT - 20)) bash "$ROOT/scripts/gpu-check.sh" "$WORK"
rc=$?
echo "gpu-check.sh exit $rc after ${SECONDS} s" | tee -a "$WORK/summary.txt"
[ $rc = 124 ] || [ $rc = 137 ] && rc=10  # the device tool reads 124/137 as the call itself timing out
tar -C "$WORK" -czf "$DEST/gpu-out.tgz" .
for f in summary.txt probes.txt; do [ -f "$WORK/$f" ] && cp "$WORK/$f" "$DEST/"; done
exit $rc
