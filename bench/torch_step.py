#!/usr/bin/env python3
"""PyTorch peer of bench/step_bench.c: the LeNet-ish / ResNet-20 training step.

The same models and settings as /work/shared/peers/torch_bench.py (the
machine-peaks figures): batch 128, torch.set_num_threads(2), SGD lr 0.05
momentum 0.9, nn.CrossEntropyLoss, zero_grad(set_to_none=True), 10 warm-up
steps then the median of 60, f32 NCHW. Data are synthetic (normal inputs,
uniform labels) like step_bench's, pre-built before the clock starts.
Prints one "RESULT engine=torch ..." line with img/s and peak RSS;
"skipped: ..." when torch is not importable.

    torch_step.py --model lenet|resnet20 [--threads 2] [--warmup 10] [--steps 60]
"""
import argparse
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001
    print(f"skipped: torch is not importable by {sys.executable} ({e})")
    sys.exit(0)


class LeNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.f1, self.f2 = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.f2(F.relu(self.f1(torch.flatten(x, 1))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down, self.pad = stride != 1 or cin != cout, cout - cin

    def forward(self, x):
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2)) if self.down else x
        return F.relu(out + sc)


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers, self.fc = nn.Sequential(*layers), nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.b(self.c(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def timed_steps(model, opt, lossf, batches, warmup, steps):
    """Trains warmup + steps steps cycling over batches; returns the times of the
    last `steps` steps (zero_grad, forward, loss, backward, step) and every loss."""
    times, losses = [], []
    for k in range(warmup + steps):
        xb, yb = batches[k % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xb), yb)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        losses.append(loss.item())
        if k >= warmup:
            times.append(t1 - t0)
    return times, losses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["lenet", "resnet20"], default="lenet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=60)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LeNetish() if a.model == "lenet" else ResNet20()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    batches = [(torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))) for _ in range(4)]
    times, losses = timed_steps(model, opt, lossf, batches, a.warmup, a.steps)
    med = statistics.median(times)
    nparams = sum(p.numel() for p in model.parameters())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT engine=torch model={a.model} status=ok threads={torch.get_num_threads()} batch=128 "
          f"params={nparams} steps={a.steps} warmup={a.warmup} median_step_ms={1e3 * med:.3f} "
          f"min_step_ms={1e3 * min(times):.3f} max_step_ms={1e3 * max(times):.3f} img_per_s={128 / med:.1f} "
          f"peak_rss_mib={rss:.1f} loss_first={losses[0]:.4f} loss_last={losses[-1]:.4f} "
          f"torch={torch.__version__}", flush=True)


if __name__ == "__main__":
    main()
