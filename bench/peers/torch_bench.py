"""PyTorch on the CPU as a peer for medgrad's benchmarks (optional: run only where torch is
installed). Reads a JSON job from stdin: {"matmul": [n, ...], "conv": [{x, w, stride,
padding}, ...], "time": seconds}; prints a JSON list of records {name, value, unit}.
Workload names and units match bench/core.ts and bench/cnn.ts."""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def median_seconds(fn, budget):
    fn()  # warm-up
    samples, start = [], time.perf_counter()
    while len(samples) < 3 or (time.perf_counter() - start < budget and len(samples) < 200):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def tf_same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def main():
    job = json.load(sys.stdin)
    budget = job.get("time", 1.0)
    torch.manual_seed(0)
    records = []
    for n in job.get("matmul", []):
        a, b = torch.randn(n, n), torch.randn(n, n)
        s = median_seconds(lambda: a @ b, budget)
        records.append({"name": f"matmul/{n}x{n}x{n}", "value": 2 * n**3 / s / 1e9, "unit": "GFLOP/s"})
    for c in job.get("conv", []):
        x, w = torch.randn(*c["x"]), torch.randn(*c["w"]) * 0.1
        kh, kw, st = c["w"][2], c["w"][3], c["stride"]
        if c["padding"] == "same":
            (pt, pb), (pl, pr) = tf_same_pads(c["x"][2], kh, st), tf_same_pads(c["x"][3], kw, st)
        else:
            pt = pb = pl = pr = 0

        def conv(xx, ww):
            return F.conv2d(F.pad(xx, (pl, pr, pt, pb)), ww, stride=st)

        y = conv(x, w)
        dy = torch.randn_like(y)
        flops = 2 * c["x"][0] * c["w"][0] * y.shape[2] * y.shape[3] * c["w"][1] * kh * kw
        label = "x".join(map(str, c["x"])) + f"-{c['w'][0]}x{kh}x{kw}" + (f"s{st}" if st > 1 else "")
        with torch.no_grad():
            s = median_seconds(lambda: conv(x, w), budget)
        records.append({"name": f"conv2d.fwd/{label}", "value": flops / s / 1e9, "unit": "GFLOP/s"})
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

        def step():
            out = conv(xg, wg)
            torch.autograd.grad(out, (xg, wg), dy)

        s = median_seconds(step, budget)
        records.append({"name": f"conv2d.fwdbwd/{label}", "value": 3 * flops / s / 1e9, "unit": "GFLOP/s"})
    json.dump(records, sys.stdout)


if __name__ == "__main__":
    main()
