#!/bin/bash
# Data-parallel throughput of ResNet-20 on Fashion-MNIST, the same global batch
# of 128: 1 rank x 2 threads (batch 128) against 2 ranks x 1 thread under
# mpirun (batch 64 each). img/s = 128 / the median step time of rank 0's JSON
# log over iterations 11-60 (the step includes the gradients' all-reduce).
# Each round also runs the peer, bench/torch_ddp.py: the same ResNet-20 in
# PyTorch, 1 process x 2 threads and DDP over gloo with 2 ranks x 1 thread
# (synthetic data; rank 0's median step over 60 steps after 10 warm-up).
#   bench/ddp_bench.sh [BUILD_DIR] [ROUNDS]     (default build, 3 rounds)
#   PYTHON=python3 picks the interpreter with torch (default /usr/bin/python3).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$root/build}/bin/dkhost
CFG=$root/configs/fashion_mnist/resnet20.yaml
common="--no-validate --cfg-options train_cfg.by_epoch=false train_cfg.max_iters=60 param_scheduler=[] default_hooks.checkpoint=null default_hooks.progress=null default_hooks.logger.interval=1 train_dataloader.num_workers=0"
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
med() { python3 -c "
import json,sys,statistics
t=[json.loads(l)['time'] for l in open(sys.argv[1]) if '\"time\"' in l and 'iter' in l]
t=t[10:]
print('%.4f'%statistics.median(t))" "$1"; }
PY=${PYTHON:-/usr/bin/python3}
torch_ips() { "$PY" "$root/bench/torch_ddp.py" step --ranks "$1" 2>&1 | sed -n 's/.*img_per_s=\([0-9.]*\).*/\1/p;s/^skipped: .*/skipped/p'; }
for round in $(seq 1 "${2:-3}"); do
  tmp=$(mktemp -d)
  $B $CFG --work-dir $tmp/1 $common env_cfg.num_threads=2 train_dataloader.batch_size=128 > /dev/null 2>&1
  t1=$(med $tmp/1/*.jsonl)
  mpirun -n 2 --allow-run-as-root --oversubscribe --bind-to none $B --launcher mpi $CFG --work-dir $tmp/2 $common env_cfg.num_threads=1 train_dataloader.batch_size=64 > /dev/null 2>&1
  t2=$(med $tmp/2/*.jsonl)
  rm -rf "$tmp"
  p1=$(torch_ips 1)
  p2=$(torch_ips 2)
  echo "round $round: dkhost 1x2 step $t1 s -> $(python3 -c "print(round(128/$t1))") img/s; 2x1 step $t2 s -> $(python3 -c "print(round(128/$t2))") img/s; torch 1x2 ${p1:-?} img/s; torch DDP gloo 2x1 ${p2:-?} img/s"
done
