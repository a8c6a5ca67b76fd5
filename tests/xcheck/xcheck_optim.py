#!/usr/bin/env python3
"""The torch side of the optimizer and schedule cross-check (tests/xcheck).

Runs optim_run (the dkhost side), reads the parameters, gradients and
results it wrote, and recomputes every case with torch.optim:

- optimizer cases: the same initial values and gradients through
  torch.optim.SGD / Adam / AdamW (and torch.nn.utils.clip_grad_* where the
  case clips), compared in f32;
- schedule cases: torch's chainable schedulers stepped the way mmengine steps
  its own (each entry built when its `begin` is reached, stepped after every
  iteration or epoch until its `end`), compared with dkhost's closed form.

Exits 0 when every case agrees, 1 on any difference, 77 (ctest's skip code)
when torch cannot be imported.

    xcheck_optim.py --runner build/bin/optim_run [--case NAME] [-v]

Adding a case: one entry in optim_run.c and one entry below, same name.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import warnings

try:
    import torch
except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
    print(f"skipped: torch is not importable by {sys.executable} ({e.__class__.__name__}: {e})")
    sys.exit(77)

from torch.optim import lr_scheduler as S

STEPS = 5
SHAPES = [(37,), (129, 65), (70001,)]

# ---- optimizer cases: name -> (optimizer factory, clip, beta1 per step) ----------------
OPTIM_CASES = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.1), None, None),
    "sgd_wd": (lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01), None, None),
    "sgd_momentum": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1,
                                               weight_decay=0.001), None, None),
    "sgd_nesterov": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=0.01), None, None),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.05), None, None),
    "adam_amsgrad": (lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True), None, None),
    "adamw": (lambda p: torch.optim.AdamW(p, lr=0.003, betas=(0.85, 0.98), eps=1e-6,
                                          weight_decay=0.1), None, None),
    "adamw_amsgrad": (lambda p: torch.optim.AdamW(p, lr=0.003, amsgrad=True, weight_decay=0.5),
                      None, None),
    "adamw_beta1_schedule": (lambda p: torch.optim.AdamW(p, lr=0.002, betas=(0.95, 0.99)), None,
                             [0.95, 0.9, 0.87, 0.85, 0.9]),
    "sgd_clip_norm": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), ("norm", 2.0, 2.0),
                      None),
    "sgd_clip_inf": (lambda p: torch.optim.SGD(p, lr=0.1), ("norm", 0.05, math.inf), None),
    "adamw_clip_value": (lambda p: torch.optim.AdamW(p, lr=0.01), ("value", 0.1, None), None),
}


# ---- schedule cases: name -> (base, max_epochs, ipe, entries) --------------------------
# Each entry: (unit "iter"|"epoch", begin, end, factory(optimizer)) with begin/end in the
# unit, as mmengine has them after convert_to_iter_based; spans are end - begin, and
# mmengine's LinearLR / ConstantLR / PolyLR count total_iters = end - begin - 1.
SCHED_CASES = {
    "warmup_multistep": (0.02, 12, 100, [
        ("iter", 0, 500, lambda o: S.LinearLR(o, start_factor=0.001, total_iters=499)),
        ("epoch", 0, 12, lambda o: S.MultiStepLR(o, milestones=[8, 11], gamma=0.1)),
    ]),
    "warmup_cosine": (0.1, 20, 30, [
        ("iter", 0, 50, lambda o: S.LinearLR(o, start_factor=0.01, total_iters=49)),
        ("epoch", 0, 20, lambda o: S.CosineAnnealingLR(o, T_max=20)),
    ]),
    "cosine_eta_min": (0.1, 10, 5, [
        ("epoch", 0, 10, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
    ]),
    "warmup_then_cosine_iter": (0.1, 10, 100, [
        ("iter", 0, 100, lambda o: S.LinearLR(o, start_factor=0.1, total_iters=99)),
        ("iter", 100, 1000, lambda o: S.CosineAnnealingLR(o, T_max=900, eta_min=0.0001)),
    ]),
    "step": (0.1, 12, 4, [
        ("epoch", 0, 12, lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
    ]),
    "exponential": (0.1, 10, 4, [
        ("epoch", 0, 10, lambda o: S.ExponentialLR(o, gamma=0.8)),
    ]),
    "constant": (0.1, 10, 4, [
        ("epoch", 0, 5, lambda o: S.ConstantLR(o, factor=0.25, total_iters=4)),
    ]),
    "poly": (0.1, 5, 20, [
        ("iter", 0, 100, lambda o: S.PolynomialLR(o, total_iters=99, power=0.9)),
    ]),
    "onecycle": (0.1, 5, 20, [
        ("iter", 0, 100, lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=100,
                                                cycle_momentum=False)),
    ]),
    "linear_multistep_converted": (0.1, 5, 7, [
        ("iter", 0, 14, lambda o: S.LinearLR(o, start_factor=0.25, total_iters=13)),
        ("iter", 0, 35, lambda o: S.MultiStepLR(o, milestones=[21], gamma=0.1)),
    ]),
    # The momentum schedule on a stand-in: torch schedules lr, and a
    # CosineAnnealingMomentum is CosineAnnealingLR's function of the momentum.
    "bevfusion_momentum": (0.95, 6, 10, [
        ("iter", 0, 24, lambda o: S.CosineAnnealingLR(o, T_max=24, eta_min=0.8947368421052632)),
        ("iter", 24, 60, lambda o: S.CosineAnnealingLR(o, T_max=36, eta_min=1.0)),
    ]),
}


def parse(path):
    cases = {}
    with open(path) as f:
        for line in f:
            name, field, n, *vals = line.split()
            assert int(n) == len(vals), f"{name} {field}: {n} values announced, {len(vals)} read"
            cases.setdefault(name, {})[field] = [float.fromhex(v) for v in vals]
    return cases


def close(got, want, rtol, atol):
    got = torch.tensor(got, dtype=torch.float64)
    want = torch.as_tensor(want, dtype=torch.float64)
    err = (got - want).abs()
    bad = err > atol + rtol * want.abs()
    if bad.any():
        i = int(bad.nonzero()[0])
        return f"{int(bad.sum())} of {len(got)} differ; first at {i}: got {got[i]:.9g}, " \
               f"torch {want[i]:.9g}"
    return None


def check_optim(name, d):
    make, clip, beta1 = OPTIM_CASES[name]
    params = [torch.tensor(d[f"init{k}"], dtype=torch.float32).reshape(SHAPES[k]).requires_grad_()
              for k in range(3)]
    opt = make(params)
    norms = []
    for step in range(STEPS):
        for k, p in enumerate(params):
            p.grad = torch.tensor(d[f"grad{step}.{k}"], dtype=torch.float32).reshape(SHAPES[k])
        if beta1:
            for g in opt.param_groups:
                g["betas"] = (beta1[step], g["betas"][1])
        if clip and clip[0] == "norm":
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip[1], clip[2])))
        elif clip:
            torch.nn.utils.clip_grad_value_(params, clip[1])
        opt.step()
    probs = []
    for k, p in enumerate(params):
        msg = close(d[f"final{k}"], p.detach().reshape(-1).double(), 2e-6, 1e-7)
        if msg:
            probs.append(f"param {k}: {msg}")
    if norms:
        msg = close(d["grad_norm"], norms, 1e-5, 0)
        if msg:
            probs.append(f"grad_norm: {msg}")
    return probs


def check_sched(name, d):
    base, max_epochs, ipe, entries = SCHED_CASES[name]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    live = [None] * len(entries)

    def advance(unit, g):
        # mmengine: an entry is active at global step g when begin <= g < end; its
        # first active step is the constructor's, the others are step() calls.
        for k, (u, begin, end, make) in enumerate(entries):
            if u != unit:
                continue
            if live[k] is None and g == begin:
                live[k] = make(opt)
            elif live[k] is not None and begin < g < end:
                live[k].step()

    want = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (u, begin, _, make) in enumerate(entries):
            if begin == 0:
                live[k] = make(opt)
        for it in range(max_epochs * ipe):
            want.append(opt.param_groups[0]["lr"])
            opt.step()
            advance("iter", it + 1)
            if (it + 1) % ipe == 0:
                advance("epoch", (it + 1) // ipe)
    msg = close(d["values"], want, 1e-10, 1e-15)
    return [msg] if msg else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", required=True, help="path to optim_run")
    ap.add_argument("--case", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optim.txt")
        r = subprocess.run([a.runner, "--out", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0 or not os.path.exists(path):
            print(f"xcheck_optim: {a.runner} failed (exit {r.returncode})")
            return 1
        cases = parse(path)
    failed = total = 0
    expected = set(OPTIM_CASES) | set(SCHED_CASES)
    for missing in sorted(expected - set(cases)):
        print(f"FAIL {missing}: optim_run wrote no such case")
        failed += 1
    for name in sorted(cases):
        if a.case and name != a.case:
            continue
        total += 1
        try:
            if name in OPTIM_CASES:
                probs = check_optim(name, cases[name])
            elif name in SCHED_CASES:
                probs = check_sched(name, cases[name])
            else:
                probs = ["no torch recipe for this case"]
        except Exception as e:  # noqa: BLE001 - a torch error is a failed case, not a crash
            probs = [f"torch raised {e.__class__.__name__}: {e}"]
        if probs:
            failed += 1
            for p in probs:
                print(f"FAIL {name}: {p}")
        elif a.verbose:
            print(f"ok   {name}")
    print(f"xcheck_optim: {total - failed}/{total} cases agree with torch {torch.__version__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
