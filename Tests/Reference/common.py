"""Helpers shared by the fixture scripts: seeding and writing safetensors fixtures."""
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
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")
