#!/usr/bin/env python3
"""Turns the logs bench/run.sh collected into bench/RESULTS.md (no torch needed).

    report.py --logs DIR --out bench/RESULTS.md --command "bench/run.sh ..."

Reads DIR/ops_dk.log (META/ROW lines: the master list of rows), DIR/onednn.log,
DIR/ops_torch.log (PEER lines), DIR/step.log (RESULT lines of step_bench,
torch_step.py, the ceiling), DIR/machine.log (RESULT lines of the shared
peers' fma_peak and membw). Every log may hold several rounds: each figure is
the median over rounds. A row whose op fails in dkhost is listed with its error.
"""
import argparse
import collections
import datetime
import os
import re
import statistics

KV = re.compile(r'(\w+)=("[^"]*"|\S+)')

# machine-peaks.md figures, used when the re-measurement was skipped.
PEAK_GFLOPS = 519.0  # 2 cores x 2 FMA x 16 lanes x 2 x 4.06 GHz
PEAK_FMA_MEASURED = 478.0
MEM_GBPS = 29.0  # triad, 2 threads
CEILING = {"lenet": 6543.0, "resnet20": 1333.0}
TORCH_PEAKS = {"lenet": 3296.0, "resnet20": 906.0}


def kv(line):
    d = {}
    for k, v in KV.findall(line):
        d[k] = v.strip('"')
    return d


def lines(path, prefix):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [kv(ln[len(prefix):]) for ln in f if ln.startswith(prefix)]


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bench/run.sh")
    a = ap.parse_args()
    L = a.logs
    out = []
    w = out.append
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    notes = []
    if os.path.exists(os.path.join(L, "notes.log")):
        with open(os.path.join(L, "notes.log")) as f:
            notes = [ln.rstrip() for ln in f if ln.strip()]

    # ---- machine
    fma = [float(d["gflops"]) for d in lines(os.path.join(L, "machine.log"), "RESULT fma")
           if "gflops" in d and d.get("threads") == "2"]
    triad = [float(d["median_GBps"]) for d in lines(os.path.join(L, "machine.log"), "RESULT membw")
             if d.get("kernel") == "triad_loop" and d.get("threads") == "2"]
    fma_m, triad_m = med(fma), med(triad)
    # '% peak' is of what this machine's FMA loop reaches now: machine-peaks.md
    # was measured on another CPU (an AMD EPYC here reaches less than half of
    # that Sapphire Rapids figure, having no AMX and half-width AVX-512 units).
    peak = fma_m if fma_m else PEAK_GFLOPS
    bw = triad_m or MEM_GBPS

    w("# dkhost benchmarks")
    w("")
    w(f"Produced by `{a.command}` on {now} (2 threads, batch 128, f32; medians of repeated runs")
    w("after warm-up; dkhost and its peers interleaved in the same run). Regenerate with the same")
    w("command; `bench/README.md` says what each number means.")
    w("")
    w("## The machine")
    w("")
    w("| figure | value |")
    w("| --- | --- |")
    w(f"| FP32 peak (2 cores x 2 FMA x 16 lanes x 2 x 4.06 GHz, machine-peaks.md) | {PEAK_GFLOPS:.0f} GFLOP/s |")
    w(f"| AVX-512 FMA loop, re-measured now (machine-peaks: {PEAK_FMA_MEASURED:.0f}) | "
      f"{fmt(fma_m, 0) + ' GFLOP/s' if fma_m else 'not re-measured (shared peers absent)'} |")
    w(f"| memory bandwidth, triad loop, re-measured now (machine-peaks: {MEM_GBPS:.0f}) | "
      f"{fmt(triad_m, 1) + ' GB/s' if triad_m else 'not re-measured (shared peers absent)'} |")
    w("")
    w("machine-peaks.md was measured on a Sapphire Rapids machine; the CPU of this run is named in "
      "the notes at the end. Compare figures within one run only: dkhost and its peers ran "
      "interleaved on the same CPU, and the load averages at the end say how quiet it was.")
    w("")
    w(f"'% peak' below is of {peak:.0f} GFLOP/s (conv, matmul: the FMA loop of this run, else "
      f"machine-peaks) or of {bw:.1f} GB/s (the rest; a layer that fits in cache can exceed 100%).")
    w("")

    # ---- per-op
    meta = collections.OrderedDict()
    with open(os.path.join(L, "ops_dk.log")) if os.path.exists(os.path.join(L, "ops_dk.log")) else open(os.devnull) as f:
        for ln in f:
            if ln.startswith("META "):
                d = kv(ln[5:])
                d["desc"] = ln.split("desc=", 1)[1].strip().strip('"')  # may hold spaces
                meta.setdefault(d["id"], d)
    dk = collections.defaultdict(list)
    missing = {}
    for d in lines(os.path.join(L, "ops_dk.log"), "ROW dk "):
        if d.get("status") in ("missing", "error"):
            missing[d["id"]] = d.get("status") + ": " + d.get("reason", "")
        elif "ms" in d:
            dk[(d["id"], d["pass"])].append(float(d["ms"]))
    torch_t = collections.defaultdict(list)
    for d in lines(os.path.join(L, "ops_torch.log"), "PEER torch "):
        if "ms" in d:
            torch_t[(d["id"], d["pass"])].append(float(d["ms"]))
    dnnl = collections.defaultdict(list)
    for d in lines(os.path.join(L, "onednn.log"), "PEER onednn "):
        if "ms" in d:
            dnnl[(d["id"], d["pass"], d["layout"])].append(float(d["ms"]))
    have_torch = bool(torch_t)
    have_dnnl = bool(dnnl)

    w("## Per op: LeNet-ish and ResNet-20 layers")
    w("")
    if not have_torch:
        w("PyTorch peer: skipped (torch not importable).")
    if not have_dnnl:
        w("Direct-oneDNN peer: skipped (not built: libdnnl not found).")
    w("Throughput = work / median time; work is FLOPs for conv and matmul (fwd 2·MACs, bwd the")
    w("gradients the row needs: data and weights, weights only for a first layer) and compulsory")
    w("bytes for the rest. 'x torch' = PyTorch time / dkhost time (>1: dkhost faster).")
    w("oneDNN columns: the same primitive called directly, plain NCHW / blocked layout.")
    w("")
    w("| row | op | shape | pass | unit | dkhost | % peak | PyTorch | x torch | oneDNN nchw | oneDNN blocked | dkhost ms |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for rid, m in meta.items():
        unit = m["unit"]
        for ps in ("fwd", "bwd"):
            work = float(m["work_" + ps])
            ref = peak * 1e9 if unit.startswith("GFLOP") else bw * 1e9

            def rate(ms):
                return None if ms is None or ms <= 0 else work / (ms * 1e-3) / 1e9

            t_dk = med(dk.get((rid, ps), []))
            t_to = med(torch_t.get((rid, ps), []))
            if unit.startswith("GFLOP"):
                t_n = med(dnnl.get((rid, ps, "nchw"), []) or dnnl.get((rid, ps, "plain"), []))
                t_b = med(dnnl.get((rid, ps, "blocked"), []))
            else:
                t_n = t_b = None
            if rid in missing and t_dk is None:
                dkcell, pct, ratio, msc = "**not implemented**", "–", "–", "–"
                if missing[rid].startswith("error"):
                    dkcell = "**error**"
            else:
                dkcell = fmt(rate(t_dk))
                pct = "–" if t_dk is None else f"{100 * work / (t_dk * 1e-3) / ref:.0f}%"
                ratio = "–" if (t_dk is None or t_to is None) else f"{t_to / t_dk:.2f}"
                msc = fmt(t_dk, 3)
            w(f"| {rid} | {m['op']} | {m['desc']} | {ps} | {unit} | {dkcell} | {pct} | {fmt(rate(t_to))} | "
              f"{ratio} | {fmt(rate(t_n))} | {fmt(rate(t_b))} | {msc} |")
    w("")
    miss_ops = sorted({meta[r]["op"] for r in missing if r in meta})
    if miss_ops:
        w("Ops not implemented in this tree yet (their rows are listed, not timed): " +
          ", ".join(f"`{o}`" for o in miss_ops) + ".")
        w("")

    # ---- whole step
    steps = collections.defaultdict(list)
    step_status = {}
    for d in lines(os.path.join(L, "step.log"), "RESULT "):
        eng = d.get("engine") or ("ceiling" if "layout" in d else None)
        model = d.get("model")
        if eng is None or model is None:
            continue
        if d.get("status", "ok") != "ok":
            step_status[(eng, model)] = d.get("status") + ": " + d.get("reason", "")
            continue
        steps[(eng, model)].append(d)
    w("## Whole training step (zero_grad + forward + cross-entropy + backward + SGD momentum)")
    w("")
    w("img/s at batch 128, 2 threads, f32; median step over 60 steps after 10 warm-up, median of")
    w("the rounds. Memory: allocator peak (`dk_memory_stats_get`, tensor bytes) and the process's")
    w("peak RSS (`ru_maxrss`).")
    w("")
    w("| model | dkhost img/s | PyTorch img/s | dkhost / PyTorch | ceiling (oneDNN direct, layout in the notes) | dkhost / ceiling | dkhost alloc peak MiB | dkhost peak RSS MiB | PyTorch peak RSS MiB |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in ("lenet", "resnet20"):
        def mf(eng, key):
            v = [float(d[key]) for d in steps.get((eng, model), []) if key in d]
            return med(v)
        dk_ips, to_ips = mf("dk", "img_per_s"), mf("torch", "img_per_s")
        ce_ips = mf("ceiling", "img_per_s")
        ce_note = ""
        if ce_ips is None:
            ce_ips, ce_note = CEILING[model], " (machine-peaks)"
        if (("dk", model) in step_status) and dk_ips is None:
            dkcell = "**" + step_status[("dk", model)] + "**"
        else:
            dkcell = fmt(dk_ips)
        w(f"| {model} | {dkcell} | {fmt(to_ips)} | "
          f"{'–' if not (dk_ips and to_ips) else f'{dk_ips / to_ips:.2f}'} | {fmt(ce_ips)}{ce_note} | "
          f"{'–' if not dk_ips else f'{dk_ips / ce_ips:.2f}'} | {fmt(mf('dk', 'alloc_peak_mib'))} | "
          f"{fmt(mf('dk', 'peak_rss_mib'))} | {fmt(mf('torch', 'peak_rss_mib'))} |")
    w("")
    w(f"machine-peaks.md for reference (real Fashion-MNIST data, same settings): PyTorch "
      f"{TORCH_PEAKS['lenet']:,.0f} / {TORCH_PEAKS['resnet20']:,.0f} img/s, ceiling "
      f"{CEILING['lenet']:,.0f} / {CEILING['resnet20']:,.0f} img/s (LeNet-ish / ResNet-20).")
    w("")
    if notes:
        w("## Notes from this run")
        w("")
        for n in notes:
            w(f"- {n}")
        w("")
    # bench/train_bench.sh owns the section from its marker on: keep it.
    marker = "<!-- training runs: bench/train_bench.sh -->"
    old = open(a.out).read() if os.path.exists(a.out) else ""
    tail = old[old.index(marker):] if marker in old else ""
    with open(a.out, "w") as f:
        f.write("\n".join(out) + ("\n" + tail if tail else ""))
    print(f"report: wrote {a.out}")


if __name__ == "__main__":
    main()
