"""The two calibrated statistics a verdict rests on: sampler collapse and gain anomaly.

The collapse score of a trigger ``tau`` is ``1 - D(tau) / D(0)``, where ``D`` is the mean per-pixel
variance, across noises, of images sampled from ``noise + tau`` (clamped to [-1, 1]), and ``D(0)`` the
same for plain noise. The same noises and sampler randomness are used for both. Normal generation
scores near 0 (or below, when a shift only adds variety); a firing backdoor turns every noise into
its target and scores near 1.

A large shift can also push every sample to a blank, saturated image: a collapse that is no
backdoor (Diff-Cleanse guards against it with an entropy band). The score is therefore scaled down
when the image the samples collapse onto has less spatial contrast (each channel's variation over
pixels; a flat colour has none, whatever its hue) than ``MIN_STRUCTURE`` times that of the model's
ordinary samples.

A shift can also narrow a clean model's variety without any backdoor (one colour scheme, one stroke
width, the shift's own imprint on every sample, one flat mode of natural images such as sky or a
dark background), which lowers the variance a lot while every sample stays different. A backdoor
makes the *same* image from many noises, so the score is also scaled down when fewer than
``MIN_SHARE`` of the samples fall into one group of near-duplicates. Two samples are near-duplicates
when their MSE in [0, 1] pixel units is below ``DUPLICATE_MSE`` (two samples each within the
attack-success distance ``SUCCESS_MSE`` of one target are within about twice it of each other) and
below the mean of their own spatial variances: two unrelated images differ by at least the sum of
those, so flat patches alike only because they hold little variation at all do not count, while
copies of one image differ by their noise alone.

Last, a shift can make sampling diverge: samples far outside the data range (hundreds, for one clean
model), clamped to the same saturated image. A backdoored model was trained to make its target, an
image in the data range. The score is scaled down when the share of triggered pixels within
``IN_RANGE`` falls below ``MIN_KEPT_IN_RANGE`` times that of the plain-noise samples.

The gain anomaly (``gain_anomaly``) scores how well the inversion matched an amplifying probe, which
a clean denoiser cannot do (see ``threat`` and ``inversion``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .counting import CountingUNet
from .effect import SUCCESS_MSE
from .progress import ProgressCallback, no_progress
from .sampling import probe_scheduler, run_sampler

# Both thresholds are calibrated on clean models only (mean + 3 sd of clean scans), by
# benchmarks/calibrate_threshold.py; the figures are in benchmarks/RESULTS.md.
DEFAULT_THRESHOLD = 0.40
DEFAULT_GAIN_THRESHOLD = 0.25
MIN_STRUCTURE = 0.8
MIN_SHARE = 0.25
IN_RANGE = 1.5  # |pixel| of a sample before clamping; the data range is [-1, 1]
MIN_KEPT_IN_RANGE = 0.8
DUPLICATE_MSE = 2 * SUCCESS_MSE


def gain_anomaly(mismatch: float) -> float:
    """How much better than a model that takes every shift for noise a candidate matches an
    amplifying probe's gains, at the worst of the probe's timesteps.

    ``mismatch`` is the inversion's, in units of what such a gain-1 model leaves. 1 means a perfect
    match, 0 the take-it-for-noise level; a clean denoiser shrinks shifts away from the noisiest
    steps (gain below 1) and stays near or below 0 there.
    """
    return 1.0 - mismatch


def _spatial_variance(images: torch.Tensor) -> torch.Tensor:
    """Per-image spatial variance of ``[..., C, H, W]`` images: each channel's variance over pixels,
    averaged over channels (a flat colour has none, whatever its hue)."""
    return images.flatten(-2).var(-1, unbiased=False).mean(-1)


def _dispersion(images: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel variance across dim 1 of ``[N, B, C, H, W]`` images."""
    return (images - images.mean(1, keepdim=True)).pow(2).mean(dim=(1, 2, 3, 4))


def duplicate_share(images: torch.Tensor) -> torch.Tensor:
    """For ``[N, B, C, H, W]`` images in [-1, 1]: the share of each row's B samples in its largest
    group of near-duplicates (those of one of them, itself included; see the module docstring)."""
    pixels = ((images.clamp(-1, 1) + 1) / 2).double()
    flat = pixels.flatten(2)
    pairwise = torch.cdist(flat, flat).pow(2) / flat.shape[-1]
    variance = _spatial_variance(pixels)
    alike = (pairwise < DUPLICATE_MSE) & (pairwise < (variance.unsqueeze(-1) + variance.unsqueeze(-2)) / 2)
    alike |= torch.eye(images.shape[1], dtype=torch.bool, device=images.device)
    return (alike.sum(-1).amax(-1) / images.shape[1]).float()


def sample_from(
    unet: CountingUNet,
    scheduler_config: Mapping[str, Any],
    sampler: str | None,
    triggers: torch.Tensor,
    noise: torch.Tensor,
    steps: int,
    seed: int,
    max_batch: int,
    progress: ProgressCallback = no_progress,
    stage: str = "sampling",
) -> torch.Tensor:
    """Sample ``[N, B, C, H, W]`` images from ``noise + trigger`` for every trigger, without grad.

    Every trigger sees the same starting noises; sampler randomness comes from ``seed``.
    """
    count, batch = triggers.shape[0], noise.shape[0]
    per_chunk = max(1, max_batch // batch)
    chunks = []
    for start in range(0, count, per_chunk):
        part = triggers[start : start + per_chunk]
        generator = torch.Generator().manual_seed(seed)
        scheduler = probe_scheduler(scheduler_config, sampler)
        x_start = (noise.unsqueeze(0) + part.unsqueeze(1)).flatten(0, 1) * scheduler.init_noise_sigma
        with torch.no_grad():
            images = run_sampler(unet, scheduler, x_start, steps, generator)
        chunks.append(images.view(part.shape[0], batch, *noise.shape[1:]))
        progress(stage, min(start + per_chunk, count), count)
    return torch.cat(chunks)


def collapse_scores(
    unet: CountingUNet,
    scheduler_config: Mapping[str, Any],
    sampler: str | None,
    triggers: torch.Tensor,
    noise: torch.Tensor,
    steps: int,
    seed: int,
    max_batch: int,
    progress: ProgressCallback = no_progress,
    stage: str = "scoring",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collapse score of each trigger, and the samples (index 0 holds the plain-noise samples)."""
    with_zero = torch.cat([torch.zeros_like(triggers[:1]), triggers])
    images = sample_from(unet, scheduler_config, sampler, with_zero, noise, steps, seed, max_batch, progress, stage)
    clamped = images.clamp(-1, 1)
    dispersion = _dispersion(clamped)
    collapse = 1.0 - dispersion[1:] / dispersion[0].clamp_min(1e-12)
    ordinary_contrast = _spatial_variance(clamped[0]).sqrt().mean().clamp_min(1e-12)
    structure = _spatial_variance(clamped[1:].mean(1)).sqrt() / ordinary_contrast
    share = duplicate_share(clamped[1:])
    in_range = (images.abs() <= IN_RANGE).flatten(1).float().mean(1)
    kept_in_range = in_range[1:] / in_range[0].clamp_min(1e-12)
    guards = [(structure, MIN_STRUCTURE), (share, MIN_SHARE), (kept_in_range, MIN_KEPT_IN_RANGE)]
    for value, floor in guards:
        collapse = collapse * (value / floor).clamp(max=1.0)
    return collapse, images
