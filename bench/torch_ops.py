#!/usr/bin/env python3
"""PyTorch peer of bench/ops_bench.c: the same rows (ids, shapes), timed the same way.

fwd: the op with autograd recording (inputs require grad as in the dk row);
bwd: forward untimed, then out.backward(ones) timed. Medians after 3 warm-ups,
at least 7 runs and about 0.4 s of timed work (bench/bench_util.h's rule).
Prints "PEER torch id=... pass=... ms=..." lines; "skipped: ..." without torch.

    torch_ops.py [--threads 2] [--only ID]
"""
import argparse
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch is not importable by {sys.executable} ({e})")
    sys.exit(0)


def r(*s, grad=True):
    t = torch.randn(*s)
    return t.requires_grad_(grad)


def bn(c):
    return lambda x, g, b, rm, rv: F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)


def bn_in(*s):
    c = s[1]
    return lambda: (r(*s), r(c), r(c), torch.zeros(c), torch.ones(c))


# id -> (make inputs, op). Same ids and shapes as BENCH_ROWS in ops_bench.c.
ROWS = {
    "lenet_conv1": (lambda: (r(128, 1, 28, 28, grad=False), r(32, 1, 3, 3), r(32)),
                    lambda x, w, b: F.conv2d(x, w, b, 1, 1)),
    "lenet_bn1": (bn_in(128, 32, 28, 28), bn(32)),
    "lenet_relu1": (lambda: (r(128, 32, 28, 28),), F.relu),
    "lenet_pool1": (lambda: (r(128, 32, 28, 28),), lambda x: F.max_pool2d(x, 2)),
    "lenet_conv2": (lambda: (r(128, 32, 14, 14), r(64, 32, 3, 3), r(64)), lambda x, w, b: F.conv2d(x, w, b, 1, 1)),
    "lenet_bn2": (bn_in(128, 64, 14, 14), bn(64)),
    "lenet_relu2": (lambda: (r(128, 64, 14, 14),), F.relu),
    "lenet_pool2": (lambda: (r(128, 64, 14, 14),), lambda x: F.max_pool2d(x, 2)),
    "lenet_fc1": (lambda: (r(128, 3136), r(128, 3136), r(128)), F.linear),
    "lenet_fc2": (lambda: (r(128, 128), r(10, 128), r(10)), F.linear),
    "lenet_xent": (lambda: (r(128, 10), torch.randint(0, 10, (128,))), F.cross_entropy),
    "lenet_log_softmax": (lambda: (r(128, 10),), lambda x: F.log_softmax(x, 1)),
    "r20_conv_stem": (lambda: (r(128, 1, 28, 28, grad=False), r(16, 1, 3, 3)), lambda x, w: F.conv2d(x, w, None, 1, 1)),
    "r20_conv16": (lambda: (r(128, 16, 28, 28), r(16, 16, 3, 3)), lambda x, w: F.conv2d(x, w, None, 1, 1)),
    "r20_conv16to32s2": (lambda: (r(128, 16, 28, 28), r(32, 16, 3, 3)), lambda x, w: F.conv2d(x, w, None, 2, 1)),
    "r20_conv32": (lambda: (r(128, 32, 14, 14), r(32, 32, 3, 3)), lambda x, w: F.conv2d(x, w, None, 1, 1)),
    "r20_conv32to64s2": (lambda: (r(128, 32, 14, 14), r(64, 32, 3, 3)), lambda x, w: F.conv2d(x, w, None, 2, 1)),
    "r20_conv64": (lambda: (r(128, 64, 7, 7), r(64, 64, 3, 3)), lambda x, w: F.conv2d(x, w, None, 1, 1)),
    "r20_bn16": (bn_in(128, 16, 28, 28), bn(16)),
    "r20_bn32": (bn_in(128, 32, 14, 14), bn(32)),
    "r20_bn64": (bn_in(128, 64, 7, 7), bn(64)),
    "r20_relu16": (lambda: (r(128, 16, 28, 28),), F.relu),
    "r20_add16": (lambda: (r(128, 16, 28, 28), r(128, 16, 28, 28)), torch.add),
    "r20_avgpool": (lambda: (r(128, 64, 7, 7),), lambda x: x.mean((2, 3))),
    "r20_shortcut_a": (lambda: (r(128, 16, 28, 28),), lambda x: x[:, :, ::2, ::2].contiguous()),
    "r20_shortcut_a_cl": (lambda: (torch.randn(128, 16, 28, 28).contiguous(memory_format=torch.channels_last)
                                   .requires_grad_(),), lambda x: x[:, :, ::2, ::2].contiguous()),
    "r20_fc": (lambda: (r(128, 64), r(10, 64), r(10)), F.linear),
    "cls_xent_64x1000": (lambda: (r(64, 1000), torch.randint(0, 1000, (64,))), F.cross_entropy),
    "cls_xent_256x1000": (lambda: (r(256, 1000), torch.randint(0, 1000, (256,))), F.cross_entropy),
    "seg_xent": (lambda: (r(8, 21, 128, 128), torch.randint(0, 21, (8, 128, 128))), F.cross_entropy),
    "cls_nll_64x1000": (lambda: (r(64, 1000), torch.randint(0, 1000, (64,))), F.nll_loss),
    "cls_softmax_64x1000": (lambda: (r(64, 1000),), lambda x: F.softmax(x, 1)),
    "cls_log_softmax_64x1000": (lambda: (r(64, 1000),), lambda x: F.log_softmax(x, 1)),
    "seg_softmax": (lambda: (r(8, 21, 128, 128),), lambda x: F.softmax(x, 1)),
    "det_dropout": (lambda: (r(8, 64, 64, 64),), lambda x: F.dropout(x, 0.5, training=True)),
    "det_nearest_x2": (lambda: (r(8, 64, 64, 64),), lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
    "det_bilinear_x2": (lambda: (r(8, 64, 64, 64),),
                        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)),
    "det_pad": (lambda: (r(8, 64, 64, 64),), lambda x: F.pad(x, (1, 1, 1, 1))),
    "det_pad_reflect": (lambda: (r(8, 64, 64, 64),), lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect")),
    "idx_gather": (lambda: (r(128, 4096), torch.randint(0, 4096, (128, 1024))), lambda x, i: torch.gather(x, 1, i)),
    "idx_scatter_add": (lambda: (r(128, 4096), torch.randint(0, 4096, (128, 1024)), r(128, 1024)),
                        lambda x, i, s: x.scatter_add(1, i, s)),
    "idx_index_select": (lambda: (r(16384, 256), torch.randint(0, 16384, (4096,))),
                         lambda x, i: torch.index_select(x, 0, i)),
    "idx_index_put": (lambda: (r(16384, 256), torch.randint(0, 16384, (4096,)), r(4096, 256)),
                      lambda x, i, v: x.index_put((i,), v, accumulate=True)),
    "det_sort": (lambda: (r(8, 20000),), lambda x: torch.sort(x, 1, descending=True)[0]),
    "det_topk": (lambda: (r(8, 20000),), lambda x: torch.topk(x, 1000, 1)[0]),
    "cls_max_dim": (lambda: (r(256, 1000),), lambda x: torch.max(x, 1)[0]),
    "emb_norm": (lambda: (r(4096, 256),), lambda x: torch.linalg.vector_norm(x, dim=1)),
}

WARMUP, MIN_REPS, MAX_REPS, MIN_SECONDS = 3, 7, 200, 0.4


def timed(fn):
    ts = []
    for w in range(-WARMUP, MAX_REPS):
        dt = fn()
        if w >= 0:
            ts.append(dt)
            if len(ts) >= MIN_REPS and sum(ts) >= MIN_SECONDS:
                break
    return 1e3 * statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    print(f"PEER torch version={torch.__version__} threads={torch.get_num_threads()}", flush=True)
    for rid, (mk, op) in ROWS.items():
        if a.only and rid != a.only:
            continue
        ins = mk()

        def fwd():
            t0 = time.perf_counter()
            op(*ins)
            return time.perf_counter() - t0

        def bwd():
            for x in ins:
                x.grad = None
            out = op(*ins)
            g = torch.ones_like(out)
            t0 = time.perf_counter()
            out.backward(g)
            return time.perf_counter() - t0

        print(f"PEER torch id={rid} pass=fwd ms={timed(fwd):.4f}", flush=True)
        print(f"PEER torch id={rid} pass=bwd ms={timed(bwd):.4f}", flush=True)


if __name__ == "__main__":
    main()
