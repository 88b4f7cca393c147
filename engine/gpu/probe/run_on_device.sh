#!/bin/sh
# The one prepared run for a machine with an NVIDIA GPU (a few minutes, read
# only: it changes no GPU setting — no MIG mode change, no instance created
# or destroyed). Builds spillway-gpu-probe on its own (a C++ compiler, CMake,
# and nvcc if present) and records what the driver says, for
# tests/engine/gpu/fixtures/ and docs/gpu.md ("What was verified where").
#
#   OUT=/path/to/results engine/gpu/probe/run_on_device.sh
set -eu
OUT=${OUT:-/tmp/spillway-gpu-probe}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
cmake -S "$HERE" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release > "$OUT/cmake.log" 2>&1
cmake --build "$OUT/build" -j 8 > "$OUT/build.log" 2>&1
"$OUT/build/spillway-gpu-probe" --json > "$OUT/probe.json" 2> "$OUT/probe.err" || true
"$OUT/build/spillway-gpu-probe" > "$OUT/probe.txt" 2>&1 || true
# The driver's own views, to compare with what the parser and NVML reader made of them.
for args in "-L" "-q" "mig -lgip" "mig -lgipp" "mig -lgi" "mig -lci"; do
  name=$(echo "$args" | tr -d '-' | tr ' ' '_')
  nvidia-smi $args > "$OUT/nvidia-smi_$name.txt" 2>&1 || true
done
echo "results in $OUT"
