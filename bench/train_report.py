#!/usr/bin/env python3
"""Turns the logs of bench/train_bench.sh into the "Training runs" section of
bench/RESULTS.md, replacing that section (between its two markers) and keeping
everything before and after it.

    train_report.py --logs DIR --out bench/RESULTS.md --command "..." --warmup 10
"""
import argparse
import json
import os
import re
import statistics

MARKER = "<!-- training runs: bench/train_bench.sh -->"
END = "<!-- end of training runs -->"


def dkhost_steps(path, warmup):
    """{(model, precision): [median step seconds of each run]} from the JSONL lines."""
    runs = {}
    for line in open(path):
        model, prec, rec = line.split(" ", 2)
        rec = json.loads(rec)
        if rec.get("mode") != "train" or "time" not in rec:
            continue
        runs.setdefault((model, prec), []).append(rec)
    out = {}
    for key, recs in runs.items():
        # Several runs (rounds) are concatenated: a run restarts at iter 1.
        split, cur = [], []
        for rec in recs:
            if cur and rec["iter"] <= cur[-1]["iter"]:
                split.append(cur)
                cur = []
            cur.append(rec)
        split.append(cur)
        out[key] = [statistics.median(r["time"] for r in run if r["iter"] > warmup) for run in split]
    return out


def rss(path):
    res = {}
    for line in open(path):
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        res.setdefault((kv["model"], kv["precision"]), []).append(int(kv["maxrss_kib"]) / 1024)
    return res


def torch_runs(path):
    res = {}
    if not os.path.exists(path):
        return res
    for line in open(path):
        r = json.loads(line.split(" ", 1)[1])
        kind = "bf16 autocast + channels_last" if r["amp"] == "bf16" else (
            "f32 channels_last" if r["channels_last"] else "f32 default")
        res.setdefault((r["model"], kind), []).append((r["img_per_s"], r["peak_rss_mib"]))
    return res


def ceiling_runs(path):
    """{(model, precision): [img/s]} of the oneDNN whole-step ceiling (peers/ceiling)."""
    res = {}
    if not os.path.exists(path):
        return res
    for line in open(path):
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        prec = "bf16" if kv["dtype"] == "bf16" else "fp32"
        res.setdefault((kv["model"], prec), []).append(float(kv["img_per_s"]))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    steps = dkhost_steps(os.path.join(a.logs, "dkhost_steps.log"), a.warmup)
    mem = rss(os.path.join(a.logs, "rss.log"))
    torch = torch_runs(os.path.join(a.logs, "torch.log"))
    ceiling = ceiling_runs(os.path.join(a.logs, "ceiling.log"))
    batch = 128

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    def pct(x, ceil):
        return "–" if ceil != ceil else f"{100 * x / ceil:.0f}%"

    lines = [MARKER, "", "## Training runs (dkhost train vs PyTorch)", "",
             f"`{a.command}`: the shipped configs trained by `dkhost` (data loader, pipeline, "
             "hooks, SGD) for a fixed number of iterations, batch 128, 2 threads, Fashion-MNIST "
             "in memory, beside PyTorch 1.13 training the same model "
             "(`../shared/peers/torch_bench.py`) and the same step written straight on oneDNN "
             "(`../shared/peers/ceiling/`, the ceiling, in the layout the notes name). img/s from the median step after 10 warm-up "
             "steps, median over rounds; dkhost's step time includes the data wait. Peak RSS of "
             "the whole process.", "",
             "| model | run | img/s | vs PyTorch f32 default | vs PyTorch best of same precision "
             "| of oneDNN ceiling | peak RSS MiB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for model in ("lenet", "resnet20"):
        t_def = med([x[0] for x in torch.get((model, "f32 default"), [])])
        t_cl = med([x[0] for x in torch.get((model, "f32 channels_last"), [])])
        t_bf = med([x[0] for x in torch.get((model, "bf16 autocast + channels_last"), [])])
        for prec in ("fp32", "bf16"):
            s = steps.get((model, prec))
            if not s:
                continue
            ips = batch / med(s)
            best = max(t_def, t_cl) if prec == "fp32" else t_bf
            ceil = med(ceiling.get((model, prec), []))
            lines.append(f"| {model} | dkhost {prec} | {ips:,.0f} | {ips / t_def:.2f} | "
                         f"{ips / best:.2f} | {pct(ips, ceil)} | "
                         f"{med(mem.get((model, prec), [])):,.0f} |")
        for kind in ("f32 default", "f32 channels_last", "bf16 autocast + channels_last"):
            runs = torch.get((model, kind))
            if runs:
                lines.append(f"| {model} | PyTorch {kind} | {med([x[0] for x in runs]):,.0f} | "
                             f"– | – | – | {med([x[1] for x in runs]):,.0f} |")
        for prec in ("fp32", "bf16"):
            runs = ceiling.get((model, prec))
            if runs:
                lines.append(f"| {model} | oneDNN ceiling {prec} | {med(runs):,.0f} | – | – | "
                             f"100% | – |")
    lines += ["", "Notes: " + "; ".join(l.strip() for l in open(os.path.join(a.logs, "notes.log"))), ""]

    # Replace this section only; what follows its end marker (accuracy runs) stays.
    text = open(a.out).read() if os.path.exists(a.out) else ""
    head, tail = text, ""
    if MARKER in text:
        head = text[:text.index(MARKER)]
        if END in text:
            tail = text[text.index(END) + len(END):]
    with open(a.out, "w") as f:
        f.write(head.rstrip("\n") + "\n\n" + "\n".join(lines) + END + "\n\n" + tail.lstrip("\n"))


if __name__ == "__main__":
    main()
