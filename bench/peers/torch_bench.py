"""PyTorch on the CPU as a peer for medgrad's benchmarks (optional: run only where torch is
installed). Reads a JSON job from stdin: {"matmul": [n, ...], "conv": [{x, w, stride,
padding}, ...], "time": seconds}; prints a JSON list of records {name, value, unit}.
Workload names and units match bench/core.ts and bench/cnn.ts.

Run as a PyTorch user would run it: every core (torch.set_num_threads), the BLAS the system
provides (Debian's threaded OpenBLAS where .ci/setup --bench installed it), and the malloc
settings bench/run.ts puts in the environment. Prints {"config": ..., "records": [...]}, the
config saying what actually ran (threads, the BLAS library loaded, the malloc settings)."""
import json
import os
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


def loaded_blas():
    """The BLAS shared library this process actually mapped (after a matmul has run)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and line.split()[-1].startswith("/")}
        return sorted(os.path.realpath(p) for p in libs)
    except OSError:
        return []


def main():
    job = json.load(sys.stdin)
    budget = job.get("time", 1.0)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    torch.randn(64, 64) @ torch.randn(64, 64)
    config = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "blas": loaded_blas(),
        "env": {k: os.environ[k] for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ},
    }
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
    json.dump({"config": config, "records": records}, sys.stdout)


if __name__ == "__main__":
    main()
