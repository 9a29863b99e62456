"""PyTorch's time for the operators of `sfumato bench-ops`, same shapes, same thread count,
printed as the same table rows so `make bench` shows both side by side."""
import os
import sys
import time

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count()
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
torch.set_num_threads(threads)
torch.manual_seed(0)


def row(name, shape, flops, body):
    body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    print(f"| PyTorch {torch.__version__} {name} | {shape} | {median * 1000:.1f} | {flops / median / 1e9:.1f} | |")


with torch.no_grad():
    image = torch.randn(1, 320, 64, 64)
    weight = torch.randn(320, 320, 3, 3) * 0.02
    bias = torch.randn(320)
    row("conv2d 3x3", "320->320 at 64x64, batch 1", 2 * 320 * 320 * 9 * 64 * 64,
        lambda: F.conv2d(image, weight, bias, padding=1))
    q, k, v = (torch.randn(1, 8, 4096, 40) for _ in range(3))
    row("self-attention", "4096 tokens, 8 heads of 40", 2 * 2 * 4096 * 4096 * 40 * 8,
        lambda: F.scaled_dot_product_attention(q, k, v))
