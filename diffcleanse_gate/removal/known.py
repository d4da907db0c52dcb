"""A known backdoor (the true trigger and target, e.g. of a test fixture), to measure removal against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import UsageError


@dataclass(frozen=True)
class KnownBackdoor:
    """The attacker's trigger and, when known, target; both ``[C, H, W]`` in [-1, 1] image units."""

    trigger: torch.Tensor
    target: torch.Tensor | None


def read_known_backdoor(path: Path, shape: tuple[int, int, int]) -> KnownBackdoor:
    """Read a safetensors file holding ``trigger`` (and optionally ``target``) of the model's image shape."""
    if not path.is_file():
        raise UsageError(f"--true-trigger {path}: no such file")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise UsageError(f"--true-trigger {path}: not a readable safetensors file: {error}") from None
    if "trigger" not in tensors:
        raise UsageError(f"--true-trigger {path}: holds no tensor named 'trigger'")
    found = {name: tensors[name].float() for name in ("trigger", "target") if name in tensors}
    for name, tensor in found.items():
        if tuple(tensor.shape) != shape:
            raise UsageError(f"--true-trigger {path}: {name} has shape {tuple(tensor.shape)}, the model needs {shape}")
    return KnownBackdoor(found["trigger"], found.get("target"))
