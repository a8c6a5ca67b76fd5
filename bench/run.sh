#!/bin/bash
# Runs every benchmark of bench/ with its peers, interleaved, and writes bench/RESULTS.md.
#
#   bench/run.sh [--rounds N] [--build DIR] [--peers DIR] [--out FILE]
#
# Builds ops_bench, step_bench and onednn_peer in the build dir (default
# build-bench; configured with -DDK_CUDA=OFF when absent), then for each round:
# the per-op benchmark, the direct-oneDNN peer and PyTorch's same ops; then per
# round and model: the dkhost step, PyTorch's step and the oneDNN ceiling.
# The machine figures (FMA peak, memory bandwidth) are re-measured once with
# the shared peers (default ../shared/peers from the repo root); the ceiling
# also comes from there. Whatever is absent (torch, the peers, libdnnl) is
# skipped with a note in RESULTS.md. Logs stay in <build>/bench-logs.
# A round takes about 2-3 minutes; no single program runs longer than ~1.5.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
build=$root/build-bench
peers=$root/../shared/peers
out=$root/bench/RESULTS.md
cmdline="bench/run.sh $*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$(realpath -m "$2"); shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--build DIR] [--peers DIR] [--out FILE]" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
logs=$build/bench-logs
rm -rf "$logs"
mkdir -p "$logs"
note() { echo "$*" | tee -a "$logs/notes.log"; }
stamp() { echo "# $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg) :: $*" >&2; }
export OMP_NUM_THREADS=2
note "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); AMX: $(grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)"
note "load average (1/5/15 min) at start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# ---- build
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -DDK_CUDA=OFF > "$logs/cmake.log" 2>&1 || { cat "$logs/cmake.log"; exit 1; }
fi
targets=(ops_bench step_bench)
cmake --build "$build" -j2 --target "${targets[@]}" > "$logs/build.log" 2>&1 || { tail -30 "$logs/build.log"; exit 1; }
cmake --build "$build" -j2 --target onednn_peer >> "$logs/build.log" 2>&1 || note "direct-oneDNN peer not built (libdnnl not found)"
bin=$build/bin

# ---- PyTorch present?
if $PY -c "import torch" 2>/dev/null; then have_torch=1; else have_torch=0; note "skipped: PyTorch (torch not importable by $PY): no PyTorch columns"; fi

# ---- shared peers: machine figures and the ceiling, built into the build dir
pb=$build/bench-peers
have_ceiling=0
if [[ -d $peers ]]; then
  mkdir -p "$pb"
  CF="-std=c11 -O2 -march=native -fopenmp"
  gcc $CF -o "$pb/fma_peak" "$peers/fma_peak.c" 2>>"$logs/build.log" &&
    gcc $CF -fno-tree-loop-distribute-patterns -o "$pb/membw" "$peers/membw.c" 2>>"$logs/build.log" ||
    note "shared peers fma_peak/membw did not build: machine figures from machine-peaks.md"
  if gcc $CF -o "$pb/lenet_step" "$peers/ceiling/lenet_step.c" -ldnnl -lz -lm 2>>"$logs/build.log" &&
     gcc $CF -o "$pb/resnet20_step" "$peers/ceiling/resnet20_step.c" -ldnnl -lz -lm 2>>"$logs/build.log"; then
    have_ceiling=1
    # oneDNN's own layout choice (blocked) is the ceiling on AVX-512; without
    # AVX-512 it runs the 1-channel first convolution's backward on oneDNN's
    # reference kernel, and channels-last (nhwc) is the fastest layout there.
    ceiling_layout=nhwc
    grep -qw avx512f /proc/cpuinfo && ceiling_layout=any
    note "oneDNN ceiling layout: $ceiling_layout"
  else
    note "ceiling (shared peers/ceiling) did not build: ceiling figures from machine-peaks.md"
  fi
  if [[ -x $pb/fma_peak ]]; then
    stamp "fma_peak"
    "$pb/fma_peak" 2 0.5 | awk '/fma_avx512_gflops/ {print "RESULT fma threads=2 gflops=" $3}' >> "$logs/machine.log"
  fi
  if [[ -x $pb/membw ]]; then
    stamp "membw"
    "$pb/membw" 2 512 5 | grep RESULT >> "$logs/machine.log"
  fi
else
  note "shared peers not found at $peers: machine and ceiling figures from machine-peaks.md"
fi

# ---- per-op rounds, interleaved
for r in $(seq "$rounds"); do
  stamp "round $r: ops_bench"; "$bin/ops_bench" --threads 2 >> "$logs/ops_dk.log"
  if [[ -x $bin/onednn_peer ]]; then stamp "round $r: onednn_peer"; "$bin/onednn_peer" --threads 2 >> "$logs/onednn.log"; fi
  if [[ $have_torch == 1 ]]; then stamp "round $r: torch_ops"; $PY "$root/bench/torch_ops.py" --threads 2 >> "$logs/ops_torch.log"; fi
done

# ---- whole-step rounds, interleaved
for r in $(seq "$rounds"); do
  for m in lenet resnet20; do
    stamp "round $r: step $m"
    "$bin/step_bench" --model $m --threads 2 --warmup 10 --steps 60 | grep RESULT >> "$logs/step.log"
    if [[ $have_torch == 1 ]]; then
      $PY "$root/bench/torch_step.py" --model $m --threads 2 --warmup 10 --steps 60 | grep RESULT >> "$logs/step.log"
    fi
    if [[ $have_ceiling == 1 ]]; then
      (cd "$pb" && ./${m}_step --layout $ceiling_layout --dtype f32 --threads 2 --warmup 10 --steps 60 --total 70) |
        grep RESULT | sed 's/^RESULT /RESULT engine=ceiling /' >> "$logs/step.log"
    fi
  done
done

note "load average (1/5/15 min) at end: $(cut -d' ' -f1-3 /proc/loadavg)"
"${PY}" "$root/bench/report.py" --logs "$logs" --out "$out" --command "$cmdline"
