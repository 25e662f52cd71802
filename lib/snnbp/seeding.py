"""One root seed per run; every generator is derived from it by name.

A derived seed is a stable hash of ``(root_seed, purpose)`` so that adding a new consumer
never changes the streams of the existing ones (hierarchical seeding, as in sacred).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(root_seed: int, purpose: str) -> int:
    """Return a 63-bit seed for ``purpose`` derived from ``root_seed`` (stable across runs)."""
    digest = hashlib.sha256(f"{int(root_seed)}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def torch_generator(root_seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``derive_seed(root_seed, purpose)``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(root_seed, purpose))
    return generator


def numpy_generator(root_seed: int, purpose: str) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded with ``derive_seed(root_seed, purpose)``."""
    return np.random.default_rng(derive_seed(root_seed, purpose))
