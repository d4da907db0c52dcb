"""Channel groups of a UNet from torch-pruning's dependency graph, and masks that prune them in place.

A pruned channel is zeroed in every layer its group couples (producer convs and linears, their norms,
every consumer's input slice) and kept at zero through repair. The model keeps the widths its config
names, so a cleaned model saves and reloads with stock diffusers and gives the same outputs; the
alternative, physically removing channels, leaves widths no ``UNet2DModel`` config can express
(DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch_pruning as tp
from diffusers import UNet2DModel
from torch import nn


@dataclass
class ChannelGroups:
    """Every prunable channel group of a UNet; ``sizes[i]`` channels in group ``i``."""

    graph: tp.DependencyGraph
    groups: list[tp.Group]

    @property
    def sizes(self) -> list[int]:
        """Channels per group, in group order."""
        return [len(group[0].idxs) for group in self.groups]

    @property
    def total(self) -> int:
        """All prunable channels."""
        return sum(self.sizes)


def channel_groups(unet: UNet2DModel, shape: tuple[int, int, int]) -> ChannelGroups:
    """Trace ``unet`` once and return its channel groups; the output convolution is never pruned."""
    device = next(unet.parameters()).device
    example = {"sample": torch.zeros((1, *shape), device=device), "timestep": torch.ones(1, device=device)}
    flags = [parameter.requires_grad for parameter in unet.parameters()]
    unet.requires_grad_(True)  # the tracer follows the autograd graph
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                unet, example_inputs=example, output_transform=lambda output: output.sample
            )
    finally:
        for parameter, flag in zip(unet.parameters(), flags):
            parameter.requires_grad_(flag)
    groups = list(graph.get_all_groups(ignored_layers=[unet.conv_out], root_module_types=(nn.Conv2d, nn.Linear)))
    return ChannelGroups(graph, groups)


class ChannelMask:
    """Which parameter entries pruning has zeroed; ``apply`` zeroes them again after an update."""

    def __init__(self) -> None:
        self._masks: dict[nn.Parameter, torch.Tensor] = {}

    def _mark(self, parameter: nn.Parameter | None, index: tuple) -> None:
        if parameter is None:
            return
        mask = self._masks.setdefault(parameter, torch.zeros_like(parameter, dtype=torch.bool))
        mask[index] = True

    def prune(self, groups: ChannelGroups, group_index: int, channels: list[int]) -> None:
        """Mark ``channels`` of one group, in every layer the group couples."""
        root = groups.groups[group_index][0].dep
        coupled = groups.graph.get_pruning_group(root.target.module, root.handler, channels)
        for item in coupled:
            module, idxs = item.dep.target.module, list(item.idxs)
            if not isinstance(module, (nn.Conv2d, nn.Linear, nn.GroupNorm, nn.LayerNorm)):
                continue
            produces = groups.graph.is_out_channel_pruning_fn(item.dep.handler)
            if isinstance(module, (nn.GroupNorm, nn.LayerNorm)) or produces:
                self._mark(module.weight, (idxs,))
                self._mark(module.bias, (idxs,))
            else:
                self._mark(module.weight, (slice(None), idxs))

    @torch.no_grad()
    def apply(self) -> None:
        """Zero every marked entry."""
        for parameter, mask in self._masks.items():
            parameter[mask] = 0.0

    @property
    def zeroed_parameters(self) -> int:
        """How many weights and biases the mask holds at zero."""
        return sum(int(mask.sum()) for mask in self._masks.values())
