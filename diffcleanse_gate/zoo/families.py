"""The three backdoor families as trigger schedules (DESIGN.md section 2).

Every family poisons a training pair the same way::

    x_t = sqrt(ab_t) * y + s_t * r + sqrt(1 - ab_t) * eps,    eps-target = eps + c_t * r

and differs only in ``s_t`` (how the trigger rides along the forward process) and the sampler whose
one-step update ``c_t`` is solved for (ancestral DDPM or the deterministic DDIM ODE step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Family:
    """A backdoor family: its trigger schedule and the sampler its correction term targets."""

    name: str
    trigger_rides_with_noise: bool
    sampler: str  # "ddpm" (ancestral) or "ddim" (ODE)


FAMILIES: dict[str, Family] = {
    "baddiffusion": Family("baddiffusion", trigger_rides_with_noise=False, sampler="ddpm"),
    "trojdiff": Family("trojdiff", trigger_rides_with_noise=True, sampler="ddpm"),
    "villandiffusion": Family("villandiffusion", trigger_rides_with_noise=False, sampler="ddim"),
}


def trigger_schedule(family: Family, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(s, c)``, each of length T: the trigger's scale in x_t and in the eps-target."""
    betas = betas.double()
    alphas = 1.0 - betas
    ab = torch.cumprod(alphas, dim=0)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    if family.trigger_rides_with_noise:
        s, s_prev = (1.0 - ab).sqrt(), (1.0 - ab_prev).sqrt()
    else:
        s, s_prev = 1.0 - ab.sqrt(), 1.0 - ab_prev.sqrt()
    if family.sampler == "ddpm":
        c = (s - alphas.sqrt() * s_prev) * (1.0 - ab).sqrt() / betas
    else:
        ratio = (ab_prev / ab).sqrt()
        c = (s_prev - ratio * s) / ((1.0 - ab_prev).sqrt() - ratio * (1.0 - ab).sqrt())
    return s.float(), c.float()
