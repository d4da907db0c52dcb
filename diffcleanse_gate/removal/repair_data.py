"""Clean images for repair and for measuring fidelity: the model's own samples, or a folder of images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import UsageError
from ..progress import ProgressCallback, no_progress
from ..sampling import build_scheduler, run_sampler

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@torch.no_grad()
def own_samples(
    unet: torch.nn.Module,
    scheduler_config: Mapping[str, Any],
    shape: tuple[int, int, int],
    count: int,
    steps: int,
    generator: torch.Generator,
    max_batch: int = 256,
    progress: ProgressCallback = no_progress,
) -> torch.Tensor:
    """``count`` images in [-1, 1] the model draws from plain noise with deterministic DDIM.

    A backdoored model behaves on plain noise (the trigger is absent), so its own samples are clean
    data that needs no dataset.
    """
    device = next(unet.parameters()).device
    scheduler = build_scheduler(scheduler_config, "ddim")
    images = []
    batches = -(-count // max_batch)
    for index, start in enumerate(range(0, count, max_batch)):
        noise = torch.randn((min(max_batch, count - start), *shape), generator=generator).to(device)
        images.append(run_sampler(unet, scheduler, noise, steps, generator).clamp(-1, 1))
        progress("own samples", index + 1, batches)
    return torch.cat(images)


def folder_images(folder: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """Every image in ``folder``, converted to the model's channels and size, in [-1, 1]."""
    if not folder.is_dir():
        raise UsageError(f"--repair-data {folder}: no such folder")
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UsageError(f"--repair-data {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise UsageError(f"--repair-data needs a model with 1 or 3 channels, this one has {channels}")
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert(mode).resize((width, height), Image.BICUBIC), np.float32)
        except (OSError, UnidentifiedImageError) as error:
            raise UsageError(f"--repair-data: cannot read {path.name}: {error}") from None
        images.append(torch.from_numpy(pixels.reshape(height, width, channels)).permute(2, 0, 1))
    return torch.stack(images) / 127.5 - 1.0
