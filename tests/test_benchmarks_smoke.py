"""The benchmark baselines run on a fixture with tiny settings and return the documented fields."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.baselines.elijah import ElijahConfig, elijah
from benchmarks.baselines.terd import TerdConfig, terd
from benchmarks.detector_metrics import auroc, rates
from diffcleanse_gate.loading import load_local

FIXTURE = Path(__file__).parent / "fixtures" / "zoo" / "clean-a"


def test_elijah_returns_uniformity_trigger_and_cost() -> None:
    result = elijah(load_local(FIXTURE), ElijahConfig(noises=4, steps=2, samples=6, sampler_steps=2, trim=1), seed=0)
    assert set(result.statistics) == {"uniformity", "inversion_loss"}
    assert result.trigger.shape == (1, 8, 8)
    assert result.unet_evaluations == 2 * 4 + 2 * 6


def test_terd_returns_kl_statistics_trigger_and_cost() -> None:
    result = terd(load_local(FIXTURE), TerdConfig(iterations=3, batch_size=2, sampler_steps=2), seed=0)
    assert set(result.statistics) == {"kl_mean", "kl_variance"}
    assert result.trigger.shape == (1, 8, 8) and torch.isfinite(result.trigger).all()
    assert result.unet_evaluations == 3 * 4 + 1 * (2 * 2 + 2 * 4)


def test_auroc_and_rates() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert rates([True, False, False], [True, True, False]) == (0.5, 1.0)
