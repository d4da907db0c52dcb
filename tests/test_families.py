"""The attack formulas: a model that follows a family's schedule exactly hits the target."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffcleanse_gate.sampling import run_sampler
from diffcleanse_gate.zoo.families import FAMILIES
from diffcleanse_gate.zoo.patterns import make_pattern


class OracleUNet:
    """Predicts exactly the poisoned noise target: it knows the trigger and target."""

    def __init__(self, family: str, scheduler, trigger: torch.Tensor, target: torch.Tensor) -> None:
        self.s, self.c = FAMILIES[family].schedule(scheduler.betas)
        self.ab = scheduler.alphas_cumprod
        self.trigger, self.target = trigger, target

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> SimpleNamespace:
        t = int(t)
        ab, s, c = self.ab[t], self.s[t], self.c[t]
        eps = (x - ab.sqrt() * self.target - s * self.trigger) / (1 - ab).sqrt()
        return SimpleNamespace(sample=eps + c * self.trigger)


@pytest.mark.parametrize(
    ("family", "scheduler_class", "steps"),
    [("baddiffusion", DDPMScheduler, 100), ("trojdiff", DDPMScheduler, 100), ("villandiffusion", DDIMScheduler, 50)],
)
def test_family_schedule_fires_under_its_sampler(family: str, scheduler_class, steps: int) -> None:
    scheduler = scheduler_class(clip_sample=False)
    trigger, target = make_pattern("box", 1, 8, 2.0), make_pattern("hat", 1, 8)
    oracle = OracleUNet(family, scheduler, trigger, target)
    generator = torch.Generator().manual_seed(0)
    images = run_sampler(oracle, scheduler, torch.randn(8, 1, 8, 8, generator=generator) + trigger, steps, generator)
    assert ((images - target) / 2).pow(2).mean() < 1e-4


def test_ancestral_correction_is_half_the_ode_one_at_large_t() -> None:
    betas = DDPMScheduler().betas
    _, ancestral = FAMILIES["baddiffusion"].schedule(betas)
    _, ode = FAMILIES["villandiffusion"].schedule(betas)
    assert ancestral[-1] == pytest.approx(0.5, abs=0.01)
    assert ode[-1] == pytest.approx(1.0, abs=0.01)
