"""Count single-image UNet evaluations: the scan's hardware-independent cost figure."""

from __future__ import annotations

import torch
from diffusers import UNet2DModel


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and counts every image it is called on (forward passes, with or without grad)."""

    def __init__(self, unet: UNet2DModel) -> None:
        super().__init__()
        self.unet = unet
        self.evaluations = 0

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int):
        """Call the UNet and count ``sample``'s batch size."""
        self.evaluations += sample.shape[0]
        return self.unet(sample, timestep)
