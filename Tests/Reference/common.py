"""Helpers shared by the fixture scripts: seeding and writing safetensors fixtures."""
import json
import os
import random

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Fixtures")


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save(relative_path: str, tensors: dict, metadata: dict | None = None) -> None:
    """Write float32, contiguous tensors to Tests/Fixtures/<relative_path>."""
    path = os.path.join(FIXTURES, relative_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    clean = {}
    for name, value in tensors.items():
        tensor = torch.as_tensor(value).detach()
        if tensor.is_floating_point():
            tensor = tensor.float()
        clean[name] = tensor.contiguous()
    save_file(clean, path, metadata=metadata)
    _sort_header(path)
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def _sort_header(path: str) -> None:
    """Rewrites the header with sorted keys: safetensors orders metadata at random, and fixtures
    should come out byte-identical on every run. Offsets are explicit, so the data stays put."""
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
        data = f.read()
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)
