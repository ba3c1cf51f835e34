"""PyTorch on a CUDA GPU as the peer of medgrad's ResNet training step (bench/gpu.sh runs it where
torch sees a GPU). The network is medgrad's (nn/models.ts, Keras "ResNet v1 for CIFAR", depth
6n+2): conv3x3(16)-BN-ReLU stem; three stages of n basic blocks (16, 32, 64 filters; the first
block of stages 2 and 3 strides 2 with a 1x1 projection shortcut); 8x8 average pooling; dense.
Convolutions have biases and TensorFlow's 'same' padding (the odd extra row and column at the
bottom and right); batch norm with Keras' momentum and epsilon; Adam; cross-entropy.

One step is forward, backward and Adam on one batch, timed with CUDA synchronisation, as a
PyTorch user would write it (cudnn.benchmark on). Modes: 'float32' (TF32 off, so it is float32
against float32) and 'autocast' (float16 autocast with a GradScaler). Reads a JSON job from
stdin {"runs": [{"depth", "size", "batch", "params"}], "time", "modes"} (params: medgrad's trainable
parameter count, checked) and prints {"config", "records"}; each record {name, value, unit,
impl} uses bench/train.ts's record name."""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Conv2d):
    """nn.Conv2d with TensorFlow's 'same' padding (asymmetric when the total is odd)."""

    def __init__(self, cin, cout, k, stride=1):
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=True)
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        nn.init.zeros_(self.bias)

    def forward(self, x):
        t, b = same_pads(x.shape[2], self.kernel_size[0], self.stride[0])
        l, r = same_pads(x.shape[3], self.kernel_size[1], self.stride[1])
        if t == b and l == r:
            return F.conv2d(x, self.weight, self.bias, self.stride, (t, l))
        return F.conv2d(F.pad(x, (l, r, t, b)), self.weight, self.bias, self.stride)


def bn(c):
    # Keras: momentum 0.99 of the running value (PyTorch's 0.01 for the new batch), eps 1e-3.
    return nn.BatchNorm2d(c, momentum=0.01, eps=1e-3)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = SameConv(cin, cout, 3, stride), bn(cout)
        self.conv2, self.bn2 = SameConv(cout, cout, 3), bn(cout)
        self.proj = SameConv(cin, cout, 1, stride) if stride != 1 else None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.proj(x) if self.proj is not None else x))


class ResNet(nn.Module):
    def __init__(self, depth, size, classes=2):
        super().__init__()
        n = (depth - 2) // 6
        self.stem, self.bn = SameConv(3, 16, 3), bn(16)
        layers = []
        for cin, cout, stride in [(16, 16, 1), (16, 32, 2), (32, 64, 2)]:
            layers += [Block(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)]
        self.layers = nn.Sequential(*layers)
        side = -(-(-(-size // 2)) // 2)
        self.fc = nn.Linear(64 * (side // 8) ** 2, classes)

    def forward(self, x):
        h = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.avg_pool2d(h, 8), 1))


def step_seconds(depth, size, batch, mode, budget):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = ResNet(depth, size).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    scaler = torch.amp.GradScaler("cuda", enabled=mode == "autocast")
    x = torch.rand(batch, 3, size, size, device=dev)
    y = torch.randint(0, 2, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=mode == "autocast"):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(3):  # warm-up: cuDNN's algorithm search, allocator
        step()
    torch.cuda.synchronize()
    samples, start = [], time.perf_counter()
    while len(samples) < 5 or (time.perf_counter() - start < budget and len(samples) < 500):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    return statistics.median(samples), len(samples), params


def main():
    job = json.load(sys.stdin)
    if not torch.cuda.is_available():
        print(json.dumps({"config": {"torch": torch.__version__, "cuda": False}, "records": []}))
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    records = []
    for run in job["runs"]:
        depth, size, batch = run["depth"], run["size"], run["batch"]
        for mode in job.get("modes", ["float32", "autocast"]):
            sec, n, params = step_seconds(depth, size, batch, mode, job.get("time", 2.0))
            # A different network would not be a comparison: say so in the record and on stderr.
            same = run.get("params") is None or params == run["params"]
            if not same:
                print(f"torch_resnet: ResNet-{depth} has {params} parameters, medgrad's {run['params']}: not the same network", file=sys.stderr)
            records.append({"name": f"train.step/resnet{depth}-{size}px-b{batch}", "value": batch / sec, "unit": "images/s",
                            "impl": f"pytorch-cuda-{mode}", "samples": n, "params": params, "same_network": same})
    config = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0),
              "cudnn": torch.backends.cudnn.version(), "tf32": False}
    print(json.dumps({"config": config, "records": records}))


if __name__ == "__main__":
    main()
