"""First-order Taylor saliency of every channel for a loss, and the choice of channels to prune."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch_pruning as tp
from diffusers import UNet2DModel

from ..progress import ProgressCallback, no_progress
from .channels import ChannelGroups

Loss = Callable[[UNet2DModel], torch.Tensor]


def taylor_saliency(
    unet: UNet2DModel, groups: ChannelGroups, loss: Loss, batches: int,
    stage: str, progress: ProgressCallback = no_progress,
) -> torch.Tensor:
    """``sum |w * dL/dw|`` per channel over each group's coupled layers, summed over ``batches``."""
    importance = tp.importance.GroupTaylorImportance(normalizer=None)
    total = torch.zeros(groups.total)
    parameters = list(unet.parameters())
    requires = [parameter.requires_grad for parameter in parameters]
    for parameter in parameters:
        parameter.requires_grad_(True)
    try:
        for batch in range(batches):
            unet.zero_grad(set_to_none=False)
            with torch.enable_grad():
                loss(unet).backward()
            total += torch.cat([importance(group).detach().float().cpu() for group in groups.groups])
            progress(stage, batch + 1, batches)
    finally:
        unet.zero_grad(set_to_none=True)
        for parameter, flag in zip(parameters, requires):
            parameter.requires_grad_(flag)
    return total / batches


def backdoor_channels(backdoor: torch.Tensor, clean: torch.Tensor, ratio: float, exclude: torch.Tensor) -> torch.Tensor:
    """Indices of the ``ratio`` share of channels that matter most to the backdoor relative to clean work.

    Each saliency is divided by its mean over all channels, so the two are on one scale; a channel's
    score is its backdoor share minus its clean share (Diff-Cleanse's trade-off). ``exclude`` marks
    channels pruned already.
    """
    score = backdoor / backdoor.mean().clamp_min(1e-20) - clean / clean.mean().clamp_min(1e-20)
    score[exclude] = -torch.inf
    count = min(round(ratio * len(score)), int((~exclude).sum()))
    return torch.topk(score, count).indices if count else torch.empty(0, dtype=torch.long)


def split_by_group(channels: torch.Tensor, sizes: list[int]) -> dict[int, list[int]]:
    """Global channel indices as ``{group index: [channel within the group]}``."""
    starts = torch.tensor([0, *sizes]).cumsum(0)
    found: dict[int, list[int]] = {}
    for channel in sorted(int(c) for c in channels):
        group = int(torch.searchsorted(starts, channel, right=True)) - 1
        found.setdefault(group, []).append(channel - int(starts[group]))
    return found
