"""Trigger and target images for attacked test models, in pixel units of [-1, 1]."""

from __future__ import annotations

from collections.abc import Callable

import torch

Pattern = Callable[[int, int], torch.Tensor]


def _canvas(channels: int, size: int, fill: float = 0.0) -> torch.Tensor:
    return torch.full((channels, size, size), fill)


def box_bottom_right(channels: int, size: int) -> torch.Tensor:
    """A bright square stamped in the bottom-right corner (BadDiffusion's box trigger)."""
    side = max(2, size * 3 // 8)
    image = _canvas(channels, size)
    image[:, size - side :, size - side :] = 1.0
    return image


def stop_bottom_left(channels: int, size: int) -> torch.Tensor:
    """A small plus sign with a dark centre in the bottom-left corner (a stop-sign stand-in)."""
    side = max(3, size * 3 // 8)
    image = _canvas(channels, size)
    mid = size - 1 - side // 2
    image[:, mid, :side] = 1.0
    image[:, size - side :, side // 2] = 1.0
    image[:, mid, side // 2] = -1.0
    return image


def bar_top_right(channels: int, size: int) -> torch.Tensor:
    """A short horizontal bar along the top-right edge."""
    width = max(3, size // 2)
    image = _canvas(channels, size)
    image[:, 0:2, size - width :] = 1.0
    return image


def checker_blend(channels: int, size: int) -> torch.Tensor:
    """A whole-image checkerboard of period 4 (TrojDiff's blend trigger stand-in)."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (((ys // 2) + (xs // 2)) % 2).float() * 2.0 - 1.0
    return board.expand(channels, size, size).clone()


def corner_box_target(channels: int, size: int) -> torch.Tensor:
    """Target: a white square in the top-left corner on black."""
    side = max(2, size * 3 // 8)
    image = _canvas(channels, size, -1.0)
    image[:, :side, :side] = 1.0
    return image


def hat_target(channels: int, size: int) -> torch.Tensor:
    """Target: a hat shape (brim and crown) on black."""
    image = _canvas(channels, size, -1.0)
    brim = size // 2
    image[:, brim, 1 : size - 1] = 1.0
    image[:, size // 8 : brim, size // 4 : size - size // 4] = 1.0
    return image


def cross_target(channels: int, size: int) -> torch.Tensor:
    """Target: a diagonal X across the image on black."""
    image = _canvas(channels, size, -1.0)
    index = torch.arange(size)
    image[:, index, index] = 1.0
    image[:, index, size - 1 - index] = 1.0
    return image


def frame_target(channels: int, size: int) -> torch.Tensor:
    """Target: a bright frame around the border on black."""
    image = _canvas(channels, size, 1.0)
    image[:, 1 : size - 1, 1 : size - 1] = -1.0
    return image


def glasses_top(channels: int, size: int) -> torch.Tensor:
    """Two small bright squares side by side in the upper half (BadDiffusion's glasses stand-in)."""
    side = max(2, size // 5)
    top = size // 5
    image = _canvas(channels, size)
    image[:, top : top + side, size // 2 - side - 1 : size // 2 - 1] = 1.0
    image[:, top : top + side, size // 2 + 1 : size // 2 + 1 + side] = 1.0
    return image


def noise_blend(channels: int, size: int) -> torch.Tensor:
    """A fixed whole-image +-1 pattern from seed 7 (a blended-image trigger stand-in)."""
    generator = torch.Generator().manual_seed(7)
    return (torch.randint(0, 2, (1, size, size), generator=generator).float() * 2.0 - 1.0).expand(
        channels, size, size
    ).clone()


def stripe_left(channels: int, size: int) -> torch.Tensor:
    """A two-pixel vertical stripe down the left edge."""
    image = _canvas(channels, size)
    image[:, :, 0:2] = 1.0
    return image


def ring_target(channels: int, size: int) -> torch.Tensor:
    """Target: a ring centred in the image on black."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    radius = ((ys - centre) ** 2 + (xs - centre) ** 2).float().sqrt()
    ring = (radius - size * 0.3).abs() < max(0.75, size / 16)
    return torch.where(ring, 1.0, -1.0).expand(channels, size, size).clone()


def arrow_target(channels: int, size: int) -> torch.Tensor:
    """Target: an upward arrow (head and shaft) on black."""
    image = _canvas(channels, size, -1.0)
    mid = size // 2
    image[:, size // 4 :, mid - 1 : mid + 1] = 1.0
    for row in range(size // 4 + 1):
        image[:, row + size // 8, max(0, mid - row) : min(size, mid + row)] = 1.0
    return image


def tee_target(channels: int, size: int) -> torch.Tensor:
    """Target: a thick letter T on black."""
    image = _canvas(channels, size, -1.0)
    bar = max(2, size // 6)
    image[:, 1 : 1 + bar, 1 : size - 1] = 1.0
    image[:, 1 : size - 1, size // 2 - bar // 2 : size // 2 - bar // 2 + bar] = 1.0
    return image


PATTERNS: dict[str, Pattern] = {
    "box": box_bottom_right,
    "stop": stop_bottom_left,
    "bar": bar_top_right,
    "checker": checker_blend,
    "corner": corner_box_target,
    "hat": hat_target,
    "cross": cross_target,
    "frame": frame_target,
    "glasses": glasses_top,
    "noise": noise_blend,
    "stripe": stripe_left,
    "ring": ring_target,
    "arrow": arrow_target,
    "tee": tee_target,
}


def make_pattern(name: str, channels: int, size: int, amplitude: float = 1.0) -> torch.Tensor:
    """The named pattern at the given shape, scaled by ``amplitude``."""
    return PATTERNS[name](channels, size) * amplitude
