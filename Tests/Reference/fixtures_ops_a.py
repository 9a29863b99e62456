"""Reference outputs for linear, conv2d, upsampling, concat, token layout and elementwise ops
(helper ops-a). Writes Tests/Fixtures/ops/{linear,conv2d,shape_ops,elementwise}.safetensors."""
import torch
import torch.nn.functional as F

from common import save, seed_all


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def linear_cases():
    tensors, names = {}, []
    # (name, input shape, out features, bias)
    for name, shape, out, bias in [
        ("tokens", (2, 5, 64), 48, True),      # [B, L, C] like attention projections
        ("matrix", (3, 32), 40, False),         # plain 2-D, no bias
        ("rank4", (2, 3, 4, 16), 24, True),     # more than one leading dimension
    ]:
        x = randn(*shape)
        w = randn(out, shape[-1]) / shape[-1] ** 0.5
        b = randn(out) if bias else None
        tensors[f"{name}.x"], tensors[f"{name}.w"] = x, w
        if b is not None:
            tensors[f"{name}.b"] = b
        tensors[f"{name}.y"] = F.linear(x, w, b)
        names.append(name)
    save("ops/linear.safetensors", tensors, {"cases": " ".join(names)})


def conv_cases():
    tensors, cases = {}, []
    # (name, input shape, out channels, kernel, stride, padding, bias)
    for name, shape, out, kernel, stride, padding, bias in [
        ("k3s1p1", (2, 16, 9, 13), 24, 3, 1, 1, True),     # UNet/VAE 3x3, batch 2, non-square
        ("k3s2p1", (1, 32, 16, 16), 32, 3, 2, 1, True),    # SD UNet downsampler
        ("k3s2p1odd", (2, 8, 9, 13), 16, 3, 2, 1, True),   # downsampler on odd sizes
        ("k3s2p0", (1, 16, 11, 10), 8, 3, 2, 0, True),     # VAE encoder downsampler (after its own pad)
        ("k1", (2, 64, 8, 8), 32, 1, 1, 0, True),          # 1x1 shortcut / proj_in: plain GEMM path
        ("k1s2p1", (1, 8, 7, 9), 8, 1, 2, 1, True),        # 1x1 through the general path
        ("k3p0", (1, 16, 10, 12), 8, 3, 1, 0, False),      # no padding, no bias
        ("k3c64", (1, 64, 16, 12), 16, 3, 1, 1, True),     # K = 576
        ("k5p2", (1, 8, 11, 9), 8, 5, 1, 2, True),         # larger odd kernel
        ("k2s1p1", (1, 4, 6, 7), 6, 2, 1, 1, True),        # even kernel
    ]:
        x = randn(*shape)
        w = randn(out, shape[1], kernel, kernel) / (shape[1] * kernel * kernel) ** 0.5
        b = randn(out) if bias else None
        tensors[f"{name}.x"], tensors[f"{name}.w"] = x, w
        if b is not None:
            tensors[f"{name}.b"] = b
        tensors[f"{name}.y"] = F.conv2d(x, w, b, stride=stride, padding=padding)
        cases.append(f"{name}={stride},{padding}")
    # One metadata key: safetensors writes several in no fixed order, and the file should be byte-stable.
    save("ops/conv2d.safetensors", tensors, {"cases": " ".join(cases)})


def shape_cases():
    t = {}
    t["upsample.x"] = randn(2, 8, 5, 7)
    t["upsample.y"] = F.interpolate(t["upsample.x"], scale_factor=2, mode="nearest")
    # UNet skip connections: concatenation along channels.
    t["cat1.a"], t["cat1.b"] = randn(2, 32, 6, 5), randn(2, 16, 6, 5)
    t["cat1.y"] = torch.cat([t["cat1.a"], t["cat1.b"]], dim=1)
    # CFG batch: along axis 0; three parts along the last axis.
    t["cat0.a"], t["cat0.b"] = randn(1, 4, 8, 8), randn(1, 4, 8, 8)
    t["cat0.y"] = torch.cat([t["cat0.a"], t["cat0.b"]], dim=0)
    t["catlast.a"], t["catlast.b"], t["catlast.c"] = randn(2, 3, 5), randn(2, 3, 1), randn(2, 3, 7)
    t["catlast.y"] = torch.cat([t["catlast.a"], t["catlast.b"], t["catlast.c"]], dim=-1)
    # diffusers' transformer block: permute(0, 2, 3, 1).reshape(N, H*W, C) and back.
    t["tokens.x"] = randn(2, 48, 9, 13)
    t["tokens.y"] = t["tokens.x"].permute(0, 2, 3, 1).reshape(2, 9 * 13, 48)
    t["nchw.x"] = randn(2, 9 * 13, 40)
    t["nchw.y"] = t["nchw.x"].reshape(2, 9, 13, 40).permute(0, 3, 1, 2)
    save("ops/shape_ops.safetensors", t)


def elementwise_cases():
    t = {}
    t["add.a"], t["add.b"] = randn(2, 32, 8, 8), randn(2, 32, 8, 8)
    t["add.y"] = t["add.a"] + t["add.b"]
    t["scaled.x"] = randn(2, 4, 9, 13)
    t["scaled.y"] = t["scaled.x"] * 0.18215  # the SD VAE scaling factor
    # ResnetBlock2D: time embedding projection broadcast over H, W.
    t["perchannel.x"], t["perchannel.b"] = randn(2, 64, 8, 12), randn(2, 64)
    t["perchannel.y"] = t["perchannel.x"] + t["perchannel.b"][:, :, None, None]
    save("ops/elementwise.safetensors", t, {"scale": "0.18215"})


if __name__ == "__main__":
    seed_all(20261125)
    linear_cases()
    conv_cases()
    shape_cases()
    elementwise_cases()
