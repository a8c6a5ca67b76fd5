#!/usr/bin/env python3
"""The PyTorch side of the cross-check (tests/xcheck).

Runs xcheck_run (the dkhost side) in f64 and f32, reads the inputs, outputs and
gradients it wrote, recomputes each case with torch from the same inputs and
compares values and gradients. Exits 0 when every case agrees, 1 on any
difference, 77 (ctest's skip code) when torch cannot be imported.

    xcheck.py --runner build/bin/xcheck_run [--dtype f64,f32] [--case NAME] [-v]

Adding a case: one line in xcheck_cases.h (dkhost) and one line in CASES below
(torch), under the same name. A lambda gets the case's inputs as torch tensors
(float ones require grad) and `dt`, the run's float dtype.
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
    print(f"skipped: torch is not importable by {sys.executable} ({e.__class__.__name__}: {e})")
    sys.exit(77)

# name -> lambda(*inputs, dt) returning the torch result.
CASES = {
    # creation
    "full": lambda dt: torch.full((2, 3), 1.5, dtype=dt),
    "zeros_i64": lambda dt: torch.zeros(4, dtype=torch.int64),
    "arange": lambda dt: torch.arange(-1, 2, 0.25, dtype=dt),
    "arange_frac": lambda dt: torch.arange(0, 1, 0.3, dtype=dt),
    "arange_neg": lambda dt: torch.arange(5, -3, -2, dtype=torch.int64),
    "rand": lambda dt: torch.rand(64, 64, dtype=dt),
    "randn": lambda dt: torch.randn(64, 64, dtype=dt),
    # copy, cast, views
    "copy": lambda x, dt: x.clone(),
    "contiguous_t": lambda x, dt: x.t().contiguous(),
    "cast_f32": lambda x, dt: x.float(),
    "cast_f64": lambda x, dt: x.double(),
    "cast_i64": lambda x, dt: x.long(),
    "cast_bool": lambda x, dt: x.bool(),
    "cast_int_float": lambda x, dt: x.to(dt),
    "reshape": lambda x, dt: x.reshape(-1, 6),
    "reshape_t": lambda x, dt: x.t().reshape(-1),
    "flatten": lambda x, dt: torch.flatten(x, 1, 2),
    "unsqueeze": lambda x, dt: x.unsqueeze(-1),
    "squeeze": lambda x, dt: x.squeeze(1),
    "permute": lambda x, dt: x.permute(2, 0, 1),
    "transpose": lambda x, dt: x.transpose(0, -1),
    "slice": lambda x, dt: x[:, 1:100:2],
    "slice_neg": lambda x, dt: x[-4:-1],
    "select": lambda x, dt: x[:, -1],
    "expand": lambda x, dt: x.expand(2, 4, -1),
    # elementwise
    "neg": lambda x, dt: -x,
    "neg_i64": lambda x, dt: -x,
    "abs": lambda x, dt: x.abs(),
    "abs_i64": lambda x, dt: x.abs(),
    "exp": lambda x, dt: x.exp(),
    "ln": lambda x, dt: x.log(),
    "sqrt": lambda x, dt: x.sqrt(),
    "rsqrt": lambda x, dt: x.rsqrt(),
    "relu": lambda x, dt: F.relu(x),
    "relu_i64": lambda x, dt: F.relu(x),
    "sigmoid": lambda x, dt: torch.sigmoid(x),
    "sigmoid_big": lambda x, dt: torch.sigmoid(x * 400),
    "tanh": lambda x, dt: torch.tanh(x),
    "gelu": lambda x, dt: F.gelu(x),
    "silu": lambda x, dt: F.silu(x),
    "softplus": lambda x, dt: F.softplus(x),
    # dk_softplus is exact; torch's default threshold 20 returns x (gradient 1) above it.
    "softplus_big": lambda x, dt: F.softplus(x * 30, threshold=1e3),
    "leaky_relu": lambda x, dt: F.leaky_relu(x, 0.1),
    "clamp": lambda x, dt: torch.clamp(x, -0.7, 0.9),
    "clamp_i64": lambda x, dt: torch.clamp(x, -3, 4),
    "pow_scalar": lambda x, dt: x ** 2.5,
    "pow_scalar_neg": lambda x, dt: x ** 3,
    "add_scalar": lambda x, dt: x + 0.75,
    "mul_scalar": lambda x, dt: x * -1.25,
    "mul_scalar_i64": lambda x, dt: x * 3,
    "add": lambda a, b, dt: a + b,
    "add_bcast": lambda a, b, dt: a + b,
    "add_scalar_t": lambda a, b, dt: a + b,
    "add_i64": lambda a, b, dt: a + b,
    "sub": lambda a, b, dt: a - b,
    "mul": lambda a, b, dt: a * b,
    "div": lambda a, b, dt: a / b,
    "pow": lambda a, b, dt: a ** b,
    "maximum": lambda a, b, dt: torch.maximum(a, b),
    "maximum_ties": lambda a, b, dt: torch.maximum(a, b),
    "minimum": lambda a, b, dt: torch.minimum(a, b),
    "minimum_ties": lambda a, b, dt: torch.minimum(a, b),
    "eq": lambda a, b, dt: a == b,
    "ne": lambda a, b, dt: a != b,
    "lt": lambda a, b, dt: a < b,
    "le": lambda a, b, dt: a <= b,
    "gt": lambda a, b, dt: a > b,
    "ge": lambda a, b, dt: a >= b,
    "where": lambda c, a, b, dt: torch.where(c, a, b),
    # reductions
    "sum_all": lambda x, dt: x.sum(),
    "sum_dims": lambda x, dt: x.sum((0, -1), keepdim=True),
    "sum_bool": lambda x, dt: x.sum(1),
    "sum_i64": lambda x, dt: x.sum(),
    "mean": lambda x, dt: x.mean(1),
    "var": lambda x, dt: x.var(0, unbiased=True),
    "var_pop": lambda x, dt: x.var((1, 2), unbiased=False, keepdim=True),
    "logsumexp": lambda x, dt: torch.logsumexp(x, -1),
    "amax": lambda x, dt: torch.amax(x, 1),
    "amax_ties": lambda x, dt: torch.amax(x, (0, 1)),
    "amin": lambda x, dt: torch.amin(x, 0, keepdim=True),
    "amin_ties": lambda x, dt: torch.amin(x, 1),
    "argmax": lambda x, dt: torch.argmax(x, -1),
    "argmax_ties": lambda x, dt: torch.argmax(x, 0, keepdim=True),
    # products, softmax
    "matmul": lambda a, b, dt: a @ b,
    "matmul_batch": lambda a, b, dt: a @ b,
    "matmul_vec_mat": lambda a, b, dt: a @ b,
    "matmul_mat_vec": lambda a, b, dt: a @ b,
    "matmul_dot": lambda a, b, dt: a @ b,
    "matmul_big": lambda a, b, dt: a @ b,
    "linear": lambda x, w, b, dt: F.linear(x, w, b),
    "linear_nobias": lambda x, w, dt: F.linear(x, w),
    "softmax": lambda x, dt: F.softmax(x, -1),
    "softmax_dim0": lambda x, dt: F.softmax(x, 0),
    "log_softmax": lambda x, dt: F.log_softmax(x, -1),
    "log_softmax_dim1": lambda x, dt: F.log_softmax(x, 1),
    "softmax_rows_large": lambda x, dt: F.softmax(x, -1),
    "log_softmax_rows_large": lambda x, dt: F.log_softmax(x, -1),
    "softmax_channels_large": lambda x, dt: F.softmax(x, 1),
    # nn (nn.h)
    "conv2d": lambda x, w, b, dt: F.conv2d(x, w, b, (2, 1), (1, 0)),
    "conv2d_group_dil": lambda x, w, dt: F.conv2d(x, w, None, 1, 2, 2, 2),
    "conv_transpose2d": lambda x, w, b, dt: F.conv_transpose2d(x, w, b, 2, 1, 1),
    "batch_norm_train": lambda x, g, b, dt: F.batch_norm(x, torch.zeros(3, dtype=dt), torch.ones(3, dtype=dt),
                                                         g, b, True, 0.1, 1e-5),
    "batch_norm_eval": lambda x, g, b, dt: F.batch_norm(x, torch.full((3,), 0.3, dtype=dt),
                                                        torch.full((3,), 1.7, dtype=dt), g, b, False, 0.1, 1e-5),
    "layer_norm": lambda x, w, b, dt: F.layer_norm(x, (4, 5), w, b, 1e-5),
    "layer_norm_plain": lambda x, dt: F.layer_norm(x, (7,), None, None, 1e-5),
    "group_norm": lambda x, w, b, dt: F.group_norm(x, 3, w, b, 1e-5),
    "group_norm_plain": lambda x, dt: F.group_norm(x, 2, None, None, 1e-5),
    "max_pool2d": lambda x, dt: F.max_pool2d(x, 3, 2, 1),
    "max_pool2d_ceil": lambda x, dt: F.max_pool2d(x, 2, ceil_mode=True),
    "avg_pool2d": lambda x, dt: F.avg_pool2d(x, 3, 2, 1, False, True),
    "avg_pool2d_nopad": lambda x, dt: F.avg_pool2d(x, 3, 2, 1, True, False),
    "adaptive_avg_pool2d": lambda x, dt: F.adaptive_avg_pool2d(x, (3, 2)),
    # index, sorting, losses
    "cat": lambda a, b, dt: torch.cat([a, b], 0),
    "index_select": lambda x, i, dt: torch.index_select(x, 0, i),
    "gather": lambda x, i, dt: torch.gather(x, 1, i),
    "max_dim": lambda x, dt: torch.max(x, 1).values,
    "sort": lambda x, dt: torch.sort(x, -1, descending=True).values,
    "topk": lambda x, dt: torch.topk(x, 2, 1, largest=True).values,
    "norm": lambda x, dt: torch.linalg.vector_norm(x, 2, 1),
    "nonzero": lambda x, dt: torch.nonzero(x),
    "cross_entropy": lambda x, t, dt: F.cross_entropy(x, t),
    "cross_entropy_large": lambda x, t, dt: F.cross_entropy(x, t),
    "cross_entropy_seg_large": lambda x, t, dt: F.cross_entropy(x, t, ignore_index=1, label_smoothing=0.1),
    "cross_entropy_ls_ignore": lambda x, t, dt: F.cross_entropy(x, t, ignore_index=1, label_smoothing=0.1,
                                                                reduction="sum"),
    "index_put_acc": lambda x, i, v, dt: x.index_put((i,), v, accumulate=True),
    "scatter_add": lambda x, i, v, dt: x.scatter_add(1, i, v),
    "interp_nearest": lambda x, dt: F.interpolate(x, (5, 7), mode="nearest"),
    "interp_bilinear": lambda x, dt: F.interpolate(x, (5, 7), mode="bilinear", align_corners=False),
    "interp_bilinear_ac": lambda x, dt: F.interpolate(x, (5, 7), mode="bilinear", align_corners=True),
    "pad_constant": lambda x, dt: F.pad(x, (1, 2, -1, 1), "constant", 0.5),
    "pad_reflect": lambda x, dt: F.pad(x, (2, 1, 1, 2), "reflect"),
    "dropout_eval": lambda x, dt: F.dropout(x, 0.5, training=False),
    "box_iou": lambda a, b, dt: box_iou(torch.cat([a[:, :2], a[:, :2] + a[:, 2:]], 1),
                                        torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)),
    "nms": lambda a, s, dt: nms(torch.cat([a[:, :2], a[:, :2] + a[:, 2:]], 1), s, 0.3),
    "nll_loss": lambda x, t, dt: F.nll_loss(F.log_softmax(x, 1), t),
}

def box_iou(a, b):
    """torchvision.ops.box_iou's formula (x1, y1, x2, y2), without torchvision."""
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def nms(boxes, scores, thr):
    """torchvision.ops.nms's rule: greedy by descending score, drop IoU > thr; kept indices."""
    order = torch.argsort(scores, descending=True).tolist()
    iou = box_iou(boxes, boxes)
    keep = []
    for i in order:
        if all(iou[i, j] <= thr for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


# Cases whose values come from a random generator: compared by shape, dtype and range.
STATS = {"rand": (0.0, 1.0), "randn": (-10.0, 10.0)}

DTYPES = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16,
          "f16": torch.float16, "i32": torch.int32, "i64": torch.int64, "u8": torch.uint8,
          "bool": torch.bool}
# Relative tolerance (of max(1, max |reference|)) per float dtype of the run.
TOL = {"f64": 1e-10, "f32": 2e-5}


def parse(path):
    """Yields (name, dtype name, {role: tensor or None}, error or None) per case."""
    with open(path) as f:
        case = None
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "case":
                case = [parts[1], parts[2], {}, None]
            elif parts[0] == "T":
                role = parts[1]
                if parts[2] == "none":
                    case[2][role] = None
                    continue
                dt, ndim, dims = DTYPES[parts[2]], int(parts[3]), parts[4]
                shape = [] if ndim == 0 else [int(d) for d in dims.split(",")]
                vals = parts[5:]
                if dt.is_floating_point:
                    data = [float.fromhex(v) for v in vals]
                else:
                    data = [int(v) for v in vals]
                t = torch.tensor(data, dtype=torch.float64 if dt.is_floating_point else torch.int64)
                case[2][role] = t.to(dt).reshape(shape)
            elif parts[0] == "error":
                case[3] = line[len("error "):].strip()
            elif parts[0] == "end":
                yield tuple(case)
                case = None


def compare(what, got, ref, tol):
    """Returns None when got matches ref, else a one-line reason."""
    if got is None and ref is None:
        return None
    if ref is None:
        ref = torch.zeros_like(got)
    if got is None:
        got = torch.zeros_like(ref)
    if tuple(got.shape) != tuple(ref.shape):
        return f"{what}: shape {tuple(got.shape)}, torch {tuple(ref.shape)}"
    if got.dtype != ref.dtype:
        return f"{what}: dtype {got.dtype}, torch {ref.dtype}"
    if got.numel() == 0:
        return None
    if not got.dtype.is_floating_point:
        bad = (got != ref).nonzero()
        if len(bad):
            i = tuple(bad[0].tolist())
            return f"{what}: {len(bad)} values differ, first at {i}: {got[i].item()} vs torch {ref[i].item()}"
        return None
    g, r = got.double(), ref.double()
    same_nonfinite = (torch.isnan(g) & torch.isnan(r)) | (torch.isinf(g) & (g == r))
    fin = torch.isfinite(r)
    scale = max(1.0, r[fin].abs().max().item() if fin.any() else 1.0)
    err = torch.where(same_nonfinite, torch.zeros_like(g), (g - r).abs())
    err = torch.nan_to_num(err, nan=float("inf"))
    worst = err.max().item()
    if worst > tol * scale:
        i = tuple(int(v) for v in (err == err.max()).nonzero()[0].tolist())
        return f"{what}: max |diff| {worst:.3g} (tolerance {tol * scale:.3g}) at {i}: {g[i].item():.17g} vs torch {r[i].item():.17g}"
    return None


def check_case(name, dtn, t, err):
    if err is not None:
        return [f"dkhost failed: {err}"]
    fn = CASES.get(name)
    if fn is None:
        return ["no torch expression: add it to CASES in tests/xcheck/xcheck.py"]
    dt = DTYPES[dtn]
    n_in = sum(1 for k in t if k.startswith("in"))
    ins = []
    for i in range(n_in):
        x = t[f"in{i}"].clone()
        if x.dtype.is_floating_point and "gout" in t:
            x.requires_grad_(True)
        ins.append(x)
    out = fn(*ins, dt)
    if name in STATS:
        got = t["out"]
        lo, hi = STATS[name]
        probs = []
        if tuple(got.shape) != tuple(out.shape) or got.dtype != out.dtype:
            probs.append(f"out: {tuple(got.shape)} {got.dtype}, torch {tuple(out.shape)} {out.dtype}")
        elif got.numel() and (got.min().item() < lo or got.max().item() >= hi):
            probs.append(f"out: values outside [{lo}, {hi})")
        return probs
    tol = TOL[dtn]
    probs = []
    p = compare("out", t["out"], out.detach(), tol)
    if p:
        probs.append(p)
    if "gout" in t:
        gout = t["gout"]
        if out.requires_grad:
            out.backward(gout.to(out.dtype))
        for i, x in enumerate(ins):
            if x.dtype.is_floating_point:
                p = compare(f"grad of input {i}", t.get(f"grad{i}"), x.grad, tol)
                if p:
                    probs.append(p)
    return probs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", required=True, help="path to xcheck_run")
    ap.add_argument("--dtype", default="f64,f32")
    ap.add_argument("--case", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    failed = total = 0
    for dtn in a.dtype.split(","):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"xcheck_{dtn}.txt")
            cmd = [a.runner, "--dtype", dtn, "--out", path] + (["--case", a.case] if a.case else [])
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sys.stderr.write(r.stderr)
            if not os.path.exists(path):
                print(f"xcheck: {' '.join(cmd)} wrote nothing (exit {r.returncode})")
                return 1
            for name, cdt, t, err in parse(path):
                total += 1
                try:
                    probs = check_case(name, cdt, t, err)
                except Exception as e:  # noqa: BLE001 - a torch error is a failed case, not a crash
                    probs = [f"torch raised {e.__class__.__name__}: {e}"]
                if probs:
                    failed += 1
                    for p in probs:
                        print(f"FAIL {name} [{cdt}]: {p}")
                elif a.verbose:
                    print(f"ok   {name} [{cdt}]")
    print(f"xcheck: {total - failed}/{total} cases agree with torch {torch.__version__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
