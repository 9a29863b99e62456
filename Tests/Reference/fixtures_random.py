"""torch.randn reference values for TorchRandom (Tests/Fixtures/random/randn.safetensors).

Tensor names: s<seed>_<shape joined by x>. Shapes with more than 4096 elements keep only
`_head` (first 64 values), `_tail` (last 64) and `_stats` ([sum, sum of squares] in float64,
stored as float32). `s<seed>_seq<k>_<shape>` are consecutive calls on one generator.
"""
import torch

from common import save

SEEDS = [0, 42, 2**32 + 7, 1234567]
SHAPES = [[1, 4, 8, 8], [2, 4, 64, 64], [7], [15], [16], [17], [33], [1, 4, 9, 9], [1, 4, 16, 16]]
# Small odd, large, then small again: the double path caches a value across calls.
SEQUENCE = [[5], [20], [3], [1]]
FULL_LIMIT = 4096


def store(tensors: dict, name: str, values: torch.Tensor) -> None:
    flat = values.flatten()
    if flat.numel() <= FULL_LIMIT:
        tensors[name] = values
    else:
        tensors[name + "_head"] = flat[:64]
        tensors[name + "_tail"] = flat[-64:]
        wide = flat.double()
        tensors[name + "_stats"] = torch.stack([wide.sum(), (wide * wide).sum()])


def main() -> None:
    tensors = {}
    for seed in SEEDS:
        for shape in SHAPES:
            generator = torch.Generator("cpu").manual_seed(seed)
            store(tensors, f"s{seed}_" + "x".join(map(str, shape)), torch.randn(shape, generator=generator))
        generator = torch.Generator("cpu").manual_seed(seed)
        for k, shape in enumerate(SEQUENCE):
            values = torch.randn(shape, generator=generator)
            store(tensors, f"s{seed}_seq{k}_" + "x".join(map(str, shape)), values)
    # torch's float path is bit-reproducible only where it runs its AVX2 kernel; the test reads this.
    capability = torch.backends.cpu.get_cpu_capability()
    save("random/randn.safetensors", tensors, {"torch": torch.__version__, "cpu_capability": capability})


if __name__ == "__main__":
    main()
