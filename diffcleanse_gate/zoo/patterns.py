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


PATTERNS: dict[str, Pattern] = {
    "box": box_bottom_right,
    "stop": stop_bottom_left,
    "bar": bar_top_right,
    "checker": checker_blend,
    "corner": corner_box_target,
    "hat": hat_target,
    "cross": cross_target,
    "frame": frame_target,
}


def make_pattern(name: str, channels: int, size: int, amplitude: float = 1.0) -> torch.Tensor:
    """The named pattern at the given shape, scaled by ``amplitude``."""
    return PATTERNS[name](channels, size) * amplitude
