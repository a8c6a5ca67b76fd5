#!/usr/bin/env python3
"""PyTorch peer of bench/ddp_bench.sh and bench/allreduce_bench.c: DDP over gloo.

step: ResNet-20 (torch_step.py's) trained with DistributedDataParallel on the
gloo backend, global batch 128 split over --ranks processes on this machine,
each with (2 / ranks) threads, SGD lr 0.05 momentum 0.9, bucket_cap_mb 25;
--ranks 1 is the plain model (no DDP) with 2 threads. Synthetic data, pre-built
before the clock starts. The median of rank 0's step times after 10 warm-up
steps (forward, backward with DDP's overlapped all-reduce, optimizer step).

allreduce: torch.distributed.all_reduce (sum, f32) over gloo between --ranks
processes, 1 KiB to 64 MiB, the median of 20 calls after 3 warm-up calls,
reported like allreduce_bench.c (algorithm bandwidth = bytes / time).

Prints RESULT lines; "skipped: ..." when torch or gloo is missing.

    torch_ddp.py step --ranks 2 [--steps 60]
    torch_ddp.py allreduce --ranks 2
"""
import argparse
import os
import socket
import statistics
import sys
import time

try:
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    import torch.nn as nn
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch is not importable by {sys.executable} ({e})")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import ResNet20, timed_steps  # noqa: E402

GLOBAL_BATCH = 128


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(rank, ranks, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=ranks)


def step_worker(rank, ranks, port, a, out):
    torch.set_num_threads(max(1, 2 // ranks))
    torch.manual_seed(0)
    model = ResNet20()
    model.train()
    if ranks > 1:
        init(rank, ranks, port)
        model = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    b = GLOBAL_BATCH // ranks
    g = torch.Generator().manual_seed(rank)
    batches = [(torch.randn(b, 1, 28, 28, generator=g), torch.randint(0, 10, (b,), generator=g))
               for _ in range(4)]
    times, _ = timed_steps(model, opt, lossf, batches, a.warmup, a.steps)
    if rank == 0:
        med = statistics.median(times)
        out.put(f"RESULT engine=torch-ddp-gloo model=resnet20 ranks={ranks} "
                f"threads_per_rank={torch.get_num_threads()} global_batch={GLOBAL_BATCH} "
                f"steps={a.steps} median_step_ms={1e3 * med:.2f} img_per_s={GLOBAL_BATCH / med:.1f} "
                f"torch={torch.__version__}")
    if ranks > 1:
        dist.destroy_process_group()


def allreduce_worker(rank, ranks, port, a, out):
    torch.set_num_threads(1)
    init(rank, ranks, port)
    size = 1024
    while size <= 64 << 20:
        t = torch.ones(size // 4, dtype=torch.float32)
        for _ in range(3):
            dist.all_reduce(t)
        times = []
        for _ in range(20):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        if rank == 0:
            out.put(f"RESULT engine=torch-gloo op=all_reduce ranks={ranks} bytes={size} "
                    f"median_us={1e6 * med:.1f} gb_per_s={size / med / 1e9:.3f}")
        size *= 4
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["step", "allreduce"])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args()
    if not dist.is_available() or not dist.is_gloo_available():
        print("skipped: this torch has no gloo backend")
        return
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    port = free_port()
    fn = step_worker if a.what == "step" else allreduce_worker
    procs = [ctx.Process(target=fn, args=(r, a.ranks, port, a, out)) for r in range(a.ranks)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        print(f"failed: exit codes {[p.exitcode for p in procs]}")
        sys.exit(1)
    while not out.empty():
        print(out.get(), flush=True)


if __name__ == "__main__":
    main()
