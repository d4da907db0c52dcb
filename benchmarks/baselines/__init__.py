"""Two published detectors, implemented from their papers, to compare the scan against (benchmarks only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class BaselineResult:
    """One baseline's answer for one model: its raw statistics, the inverted trigger and what it cost.

    ``statistics`` holds the named figures a threshold is calibrated on; which direction flags a model
    is the baseline's own (see its module). ``trigger`` is on the CPU, in [-1, 1] pixel units.
    """

    statistics: dict[str, float]
    trigger: torch.Tensor
    unet_evaluations: int
    settings: dict[str, float | int | str | None] = field(default_factory=dict)
