"""Reference fixtures for normalisation, activation, softmax and attention ops (PyTorch, float32)."""
import math

import torch
import torch.nn.functional as F

from common import save, seed_all


def group_norm_cases():
    seed_all(1)
    cases = {}
    # UNet-like: 8 groups of 8 channels, offset so the mean is far from zero.
    x = torch.randn(2, 64, 8, 8) * 2 + 3
    w = torch.randn(64) * 0.5 + 1
    b = torch.randn(64) * 0.5
    cases["g8"] = (x, 8, w, b, 1e-5)
    # 32 groups as in SD (VAE eps 1e-6), 2 channels per group.
    x = torch.randn(2, 64, 4, 4)
    w = torch.randn(64) * 0.5 + 1
    b = torch.randn(64) * 0.5
    cases["g32"] = (x, 32, w, b, 1e-6)
    # No spatial dims at all.
    x = torch.randn(3, 32) * 4 - 1
    w = torch.randn(32)
    b = torch.randn(32)
    cases["flat"] = (x, 4, w, b, 1e-5)
    # Three spatial dims.
    x = torch.randn(1, 12, 2, 3, 5)
    w = torch.randn(12)
    b = torch.randn(12)
    cases["3d"] = (x, 3, w, b, 1e-5)
    for name, (x, groups, w, b, eps) in cases.items():
        out = F.group_norm(x, groups, w, b, eps)
        save(f"ops/group_norm_{name}.safetensors",
             {"x": x, "weight": w, "bias": b, "out": out, "out_silu": F.silu(out)},
             {"groups": str(groups), "eps": repr(eps)})


def layer_norm_cases():
    seed_all(2)
    x = torch.randn(2, 10, 64) * 3 + 2
    w = torch.randn(64) * 0.5 + 1
    b = torch.randn(64) * 0.5
    save("ops/layer_norm.safetensors",
         {"x": x, "weight": w, "bias": b, "out": F.layer_norm(x, (64,), w, b, 1e-5)}, {"eps": "1e-05"})
    # Odd width (not a multiple of any vector size), CLIP's eps.
    x = torch.randn(3, 5, 37) * 10
    w = torch.randn(37)
    b = torch.randn(37)
    save("ops/layer_norm_odd.safetensors",
         {"x": x, "weight": w, "bias": b, "out": F.layer_norm(x, (37,), w, b, 1e-5)}, {"eps": "1e-05"})


def softmax_cases():
    seed_all(3)
    x = torch.randn(4, 7, 77) * 3
    x[0, 0] *= 100          # large magnitude: exp would overflow without max subtraction
    x[0, 1] = x[0, 1] * 20 + 1000
    x[0, 2] = x[0, 2] * 20 - 1000
    x[1, 3] = 0             # uniform row
    x[2, 4, :10] = -float("inf")  # masked entries
    save("ops/softmax.safetensors", {"x": x, "out": torch.softmax(x, dim=-1)})
    long = torch.randn(3, 1000) * 5
    save("ops/softmax_long.safetensors", {"x": long, "out": torch.softmax(long, dim=-1)})


def activation_cases():
    seed_all(4)
    x = torch.randn(2, 3, 50) * 4
    x[0, 0, :6] = torch.tensor([-100.0, -30.0, -10.0, 10.0, 30.0, 100.0])
    x[0, 1, :3] = torch.tensor([0.0, 1e-8, -1e-8])
    # A dense sweep as well: the vectorised exp and erf must hold over the whole curve.
    sweep = torch.linspace(-12, 12, 2401)
    for name, values in [("activations", x), ("activations_sweep", sweep)]:
        save(f"ops/{name}.safetensors", {
            "x": values,
            "silu": F.silu(values),
            "gelu": F.gelu(values, approximate="none"),
            "quick_gelu": values * torch.sigmoid(1.702 * values),
        })
    # GEGLU as diffusers does it: the projection output is split into hidden and gate.
    proj = torch.randn(2, 5, 48) * 2
    hidden, gate = proj.chunk(2, dim=-1)
    save("ops/geglu.safetensors", {"x": proj, "out": hidden * F.gelu(gate)})


def attention(q, k, v, heads, causal):
    b, lq, inner = q.shape
    d = inner // heads

    def split(t):
        return t.view(b, -1, heads, d).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
    return out.transpose(1, 2).reshape(b, lq, inner)


def attention_cases():
    seed_all(5)
    cases = {
        "self": (2, 64, 64, 4, 16, False),    # B, Lq, Lk, heads, d, causal
        "cross": (2, 64, 77, 4, 16, False),   # text conditioning: 77 tokens
        "causal": (1, 77, 77, 4, 16, True),   # CLIP text encoder mask
        "odd": (1, 37, 53, 2, 40, False),     # SD head size 40, lengths not a multiple of any block
    }
    for name, (b, lq, lk, heads, d, causal) in cases.items():
        q = torch.randn(b, lq, heads * d)
        k = torch.randn(b, lk, heads * d)
        v = torch.randn(b, lk, heads * d)
        save(f"ops/attention_{name}.safetensors",
             {"q": q, "k": k, "v": v, "out": attention(q, k, v, heads, causal)},
             {"heads": str(heads), "causal": str(causal).lower()})
    # Peaked scores (large q, k): softmax rows dominated by a few keys.
    q = torch.randn(1, 20, 32) * 4
    k = torch.randn(1, 30, 32) * 4
    v = torch.randn(1, 30, 32)
    save("ops/attention_peaked.safetensors",
         {"q": q, "k": k, "v": v, "out": attention(q, k, v, 2, False)}, {"heads": "2", "causal": "false"})


if __name__ == "__main__":
    torch.set_num_threads(1)
    group_norm_cases()
    layer_norm_cases()
    softmax_cases()
    activation_cases()
    attention_cases()
