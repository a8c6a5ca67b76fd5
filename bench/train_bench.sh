#!/bin/bash
# Whole training runs through `dkhost` against PyTorch, side by side, and the
# "Training runs" section of bench/RESULTS.md.
#
#   bench/train_bench.sh [--rounds N] [--iters N] [--build DIR] [--out FILE] [--ceiling]
#
# Each round, for LeNet-ish and ResNet-20 on Fashion-MNIST (batch 128, 2 threads,
# data in memory): dkhost trains the shipped config for --iters iterations in
# f32 and in bf16 (the real runner: data loader, pipeline, hooks, optimizer),
# and PyTorch 1.13 (../shared/peers/torch_bench.py) trains the same model in
# f32 default, f32 channels_last and bf16 autocast + channels_last. Step time is
# the median over the iterations after 10 warm-up ones (dkhost: IterTimerHook's
# per-iteration `time`, which includes the data wait; PyTorch: the step alone on
# pre-built batches; the ceiling likewise); peak RSS from /usr/bin/time (dkhost) and ru_maxrss (PyTorch).
# The figures are medians over rounds. Takes about 2 minutes a round. bf16 rows
# only on CPUs with bf16 instructions (AVX-512 bf16 or AMX).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
iters=60
ceiling=0
build=$root/build-bench
out=$root/bench/RESULTS.md
cmdline="bench/train_bench.sh $*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --build) build=$(realpath -m "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --ceiling) ceiling=1; shift ;;
    *) echo "usage: $0 [--rounds N] [--iters N] [--build DIR] [--out FILE] [--ceiling]" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
peers=$root/../shared/peers
logs=$build/train-bench-logs
rm -rf "$logs"
mkdir -p "$logs"
export OMP_NUM_THREADS=2

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root" -B "$build" -DDK_CUDA=OFF > "$logs/cmake.log" 2>&1 || { cat "$logs/cmake.log"; exit 1; }
fi
cmake --build "$build" -j2 > "$logs/build.log" 2>&1 || { tail -30 "$logs/build.log"; exit 1; }
# The ceiling (--ceiling): the same training step written straight on oneDNN
# (a measuring instrument in ../shared/peers/ceiling, built here, never part
# of dkhost), in oneDNN's own choice of layout on AVX-512. On CPUs without
# AVX-512 that choice (blocked) runs the backward of the 1-channel first
# convolution on oneDNN's reference kernel (~0.4-0.9 s a step), so there the
# ceiling runs channels-last (nhwc), its fastest layout on such a CPU.
ceiling_layout=nhwc
grep -qw avx512f /proc/cpuinfo && ceiling_layout=any
have_ceiling=0
if [[ $ceiling == 1 && -f $peers/ceiling/lenet_step.c ]]; then
  mkdir -p "$build/ceiling"
  have_ceiling=1
  for m in lenet resnet20; do
    gcc -std=c11 -O2 -march=native -fopenmp -o "$build/ceiling/${m}_step" \
      "$peers/ceiling/${m}_step.c" -ldnnl -lz -lm 2>> "$logs/build.log" || have_ceiling=0
  done
fi
have_torch=0
if [[ -f $peers/torch_bench.py ]] && $PY -c "import torch" 2>/dev/null; then have_torch=1; fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" > "$logs/notes.log"
isa="AVX2, no AVX-512"
grep -qw avx512f /proc/cpuinfo && isa="AVX-512"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) ($isa)" >> "$logs/notes.log"
[[ $have_ceiling == 1 ]] && echo "oneDNN ceiling layout: $ceiling_layout" >> "$logs/notes.log"
# bf16 only where the cores have bf16 instructions: elsewhere dkhost's bf16
# products run on reference kernels and PyTorch emulates, so the rows would
# measure neither framework's bf16 path.
precisions="fp32"
torch_flags=("" "--channels-last")
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
  precisions="fp32 bf16"
  torch_flags+=("--channels-last --amp bf16")
else
  echo "bf16 not measured: this CPU has no AVX-512 bf16 or AMX" >> "$logs/notes.log"
fi

for r in $(seq "$rounds"); do
  for m in lenet resnet20; do
    for p in $precisions; do
      wd=$logs/work_${m}_${p}_$r
      echo "# round $r: dkhost $m $p" >&2
      /usr/bin/time -f "RESULT_RSS engine=dkhost model=$m precision=$p maxrss_kib=%M" \
        "$build/bin/dkhost" "$root/configs/fashion_mnist/$m.yaml" --work-dir "$wd" --no-validate \
        --cfg-options train_cfg.by_epoch=false "train_cfg.max_iters=$iters" "param_scheduler=[]" \
        default_hooks.checkpoint=null default_hooks.progress=null default_hooks.logger.interval=1 \
        "precision=$p" env_cfg.num_threads=2 train_dataloader.num_workers=0 \
        > "$wd.out" 2>&1 || { tail -5 "$wd.out"; exit 1; }
      grep RESULT_RSS "$wd.out" >> "$logs/rss.log"
      cat "$wd"/*.jsonl | sed "s/^/$m $p /" >> "$logs/dkhost_steps.log"
    done
    if [[ $have_ceiling == 1 ]]; then
      for p in $precisions; do
        echo "# round $r: oneDNN ceiling $m $p" >&2
        "$build/ceiling/${m}_step" --layout $ceiling_layout --dtype "${p/fp32/f32}" --threads 2 \
          --warmup 10 --steps $((iters - 10)) --total "$iters" | grep '^RESULT' >> "$logs/ceiling.log"
      done
    fi
    if [[ $have_torch == 1 ]]; then
      for flags in "${torch_flags[@]}"; do
        echo "# round $r: torch $m $flags" >&2
        # shellcheck disable=SC2086
        $PY "$peers/torch_bench.py" --model $m --mode train --threads 2 --batch 128 \
          --warmup 10 --steps $((iters - 10)) $flags | grep '^RESULT' >> "$logs/torch.log"
      done
    fi
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$logs/notes.log"
[[ $have_ceiling == 1 ]] || echo "skipped: the oneDNN ceiling (run with --ceiling)" >> "$logs/notes.log"
[[ $have_torch == 1 ]] || echo "skipped: PyTorch (torch or ../shared/peers/torch_bench.py absent)" >> "$logs/notes.log"
"$PY" "$root/bench/train_report.py" --logs "$logs" --out "$out" --command "$cmdline" --warmup 10
