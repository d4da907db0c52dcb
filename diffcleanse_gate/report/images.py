"""PNG grids and the inverted trigger as PNG and .npy, so a person sees what the backdoor makes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .files import write_atomic

UPSCALE_TO = 256  # shortest side of a written PNG, so tiny images stay visible


def _to_uint8(images: torch.Tensor, low: float, high: float) -> np.ndarray:
    scaled = ((images.float() - low) / max(high - low, 1e-8)).clamp(0, 1)
    return (scaled * 255).round().to(torch.uint8).numpy()


def grid(images: torch.Tensor, low: float = -1.0, high: float = 1.0) -> Image.Image:
    """Tile ``[N, C, H, W]`` images into one picture with a one-pixel gap."""
    count, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (height + 1) + 1, columns * (width + 1) + 1, channels), 128, np.uint8)
    pixels = _to_uint8(images, low, high).transpose(0, 2, 3, 1)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = 1 + row * (height + 1), 1 + column * (width + 1)
        canvas[top : top + height, left : left + width] = pixels[index]
    return _upscaled(canvas)


def _upscaled(canvas: np.ndarray) -> Image.Image:
    image = Image.fromarray(canvas[..., 0] if canvas.shape[-1] == 1 else canvas)
    factor = max(1, UPSCALE_TO // min(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def save_png(image: Image.Image, path: Path) -> None:
    """Save a PIL image as PNG atomically."""
    write_atomic(path, lambda target: image.save(target, format="PNG"))


def save_trigger(trigger: torch.Tensor, png: Path, npy: Path) -> None:
    """Save the trigger ``[C, H, W]`` as raw values (.npy) and as a PNG scaled symmetrically around 0."""
    bound = float(trigger.abs().max()) or 1.0
    save_png(_upscaled(_to_uint8(trigger.unsqueeze(0), -bound, bound)[0].transpose(1, 2, 0)), png)
    def write_npy(target: Path) -> None:
        with target.open("wb") as handle:
            np.save(handle, trigger.numpy())

    write_atomic(npy, write_npy)
