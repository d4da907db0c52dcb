"""The three backdoor families of DESIGN.md section 2, as points of the threat model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..threat import trigger_schedule


@dataclass(frozen=True)
class Family:
    """A backdoor family: how its trigger moves through the forward process, and the sampler it targets."""

    name: str
    trigger_form: str  # "fades" or "rides-with-noise"
    sampler_kind: str  # "ancestral" or "ode"

    def schedule(self, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s_t, c_t)`` for every timestep of the given betas."""
        return trigger_schedule(self.trigger_form, self.sampler_kind, betas)


FAMILIES: dict[str, Family] = {
    "baddiffusion": Family("baddiffusion", "fades", "ancestral"),
    "trojdiff": Family("trojdiff", "rides-with-noise", "ancestral"),
    "villandiffusion": Family("villandiffusion", "fades", "ode"),
}
