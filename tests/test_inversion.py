"""The ODE probe holds a candidate to the attack's gain curve at several timesteps, so a direction that a
model amplifies over a narrow stretch only does not pass for a trained-in trigger; uniform shifts are
left out of the search; the target-carrying search finds a trigger answered with its target alone."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMScheduler

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import gain_anomaly
from diffcleanse_gate.inversion import InversionConfig, invert_directions
from diffcleanse_gate.scan import CARRYING_MIN_ENERGY
from diffcleanse_gate.threat import carrying_probe, held_probes, probes

SHAPE = (1, 4, 4)
BETAS = DDPMScheduler(num_train_timesteps=1000).betas
ALPHAS_CUMPROD = torch.cumprod(1.0 - BETAS, dim=0)


def trigger_scale(timestep: torch.Tensor) -> torch.Tensor:
    """``s_t`` of the "fades" trigger form (BadDiffusion, VillanDiffusion)."""
    return (1.0 - ALPHAS_CUMPROD[timestep].sqrt()).view(-1, 1, 1, 1)


class LinearDenoiser(torch.nn.Module):
    """Predicts ``x / sigma_t`` (takes every shift for noise) except along one direction ``r``,
    which it answers with ``gain(t)`` times that, less ``sqrt(ab_t) / sigma_t`` times ``imprint`` per
    unit of ``r`` in the input's trigger scale (the target an ODE-sampler backdoor mixes in)."""

    def __init__(self, direction: torch.Tensor, gain: Callable[[torch.Tensor], torch.Tensor],
                 imprint: torch.Tensor | None = None) -> None:
        super().__init__()
        self.unit = torch.nn.Parameter(direction / direction.norm(), requires_grad=False)
        self.imprint = torch.nn.Parameter(torch.zeros(SHAPE) if imprint is None else imprint, requires_grad=False)
        self.gain = gain

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor) -> SimpleNamespace:
        sigma = (1.0 - ALPHAS_CUMPROD[timestep]).sqrt().view(-1, 1, 1, 1)
        amount = (sample * self.unit).flatten(1).sum(1).view(-1, 1, 1, 1)
        answer = sample + (self.gain(timestep).view(-1, 1, 1, 1) - 1.0) * amount * self.unit
        weight = ALPHAS_CUMPROD[timestep].sqrt().view(-1, 1, 1, 1)
        return SimpleNamespace(sample=(answer - weight * amount / trigger_scale(timestep) * self.imprint) / sigma)


def ode_gain(timestep: torch.Tensor) -> torch.Tensor:
    """The gain a trained-in ODE-sampler (VillanDiffusion) trigger is answered with at each timestep."""
    ode = next(probe for probe in probes(BETAS) if probe.amplifying)
    known = {point.timestep: point.gain for point in ode.points}
    return torch.tensor([known.get(int(t), 1.0) for t in timestep])


def pattern() -> torch.Tensor:
    """A random trigger-like pattern: no uniform part, which the search leaves out (``centred``)."""
    direction = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    return direction - direction.mean()


def search(gain: Callable[[torch.Tensor], torch.Tensor], imprint: torch.Tensor | None = None,
           direction: torch.Tensor | None = None, centred: bool = True) -> tuple[float, float]:
    """The best ODE candidate's gain anomaly and its cosine to the amplified direction."""
    direction = pattern() if direction is None else direction
    unet = CountingUNet(LinearDenoiser(direction, gain, imprint))
    points = probes(BETAS)
    found = invert_directions(unet, SHAPE, ALPHAS_CUMPROD, points, InversionConfig(centred=centred),
                              torch.Generator().manual_seed(0))
    ode = next(index for index, probe in enumerate(points) if probe.amplifying)
    rows = torch.nonzero(found.probe_index == ode).flatten()
    pick = int(rows[torch.argmin(found.losses[rows])])
    cosine = torch.cosine_similarity(found.directions[pick].flatten(), direction.flatten(), 0)
    return gain_anomaly(float(found.losses[pick])), abs(float(cosine))


def test_the_ode_probe_is_held_at_three_points_of_the_gain_curve() -> None:
    ancestral, ode = probes(BETAS)
    assert len(ancestral.points) == 1 and ancestral.gain == pytest.approx(0.506, abs=1e-3)
    assert [round(point.gain, 2) for point in ode.points] == [1.25, 1.5, 1.13]
    assert ode.points[1].timestep < ode.timestep < ode.points[2].timestep


def test_held_ancestral_probes_follow_each_trigger_forms_gain_curve() -> None:
    single, _ = probes(BETAS)
    fades, rides = held_probes(BETAS)
    assert fades.timestep == rides.timestep == single.timestep and len(single.points) == 1
    assert [point.timestep for point in fades.points] == [point.timestep for point in rides.points]
    assert [round(point.gain, 2) for point in fades.points] == [0.51, 0.63, 0.75]  # back towards 1
    assert [round(point.gain, 2) for point in rides.points] == [0.5, 0.5, 0.5]
    assert fades.points[2].trigger_scale < rides.points[2].trigger_scale  # a fading trigger thins out
    # Removal rebuilds the trigger's schedule from these: read as an ODE probe, the held ones got the wrong one.
    assert [(probe.form, probe.sampler_kind) for probe in (fades, rides)] == [("fades", "ancestral"),
                                                                             ("rides-with-noise", "ancestral")]


def test_a_trigger_answered_along_the_whole_gain_curve_is_found() -> None:
    anomaly, cosine = search(ode_gain)
    assert anomaly > 0.9
    assert cosine > 0.95


def test_a_trigger_answered_with_the_target_mixed_in_still_scores_as_a_backdoor() -> None:
    # Without the target term the search scored this model 0.85.
    target = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    anomaly, _ = search(ode_gain, imprint=target)
    assert anomaly > 0.9


def test_a_uniform_shift_is_not_searched_for() -> None:
    # Colour models shrink a global colour shift as a trigger would; searched with their per-channel
    # mean, the candidates on held-out colour models settled on such shifts instead of the trigger.
    uniform = torch.ones(SHAPE)
    anomaly, _ = search(ode_gain, direction=uniform)
    assert anomaly == pytest.approx(0.0, abs=0.01)  # every candidate is taken for noise
    anomaly, cosine = search(ode_gain, direction=uniform, centred=False)
    assert anomaly > 0.9 and cosine > 0.95


def test_a_direction_amplified_only_in_the_noisier_stretch_is_no_backdoor() -> None:
    ode = next(probe for probe in probes(BETAS) if probe.amplifying)
    deepest = min(point.timestep for point in ode.points)

    def narrow(timestep: torch.Tensor) -> torch.Tensor:
        return torch.where(timestep > deepest, ode_gain(timestep), torch.full_like(ode_gain(timestep), 0.8))

    anomaly, _ = search(narrow)
    assert anomaly < 0.0


def carrying_search(imprint: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The target-carrying search's energies and cosines to a trigger a model answers with gain 1 everywhere."""
    direction = pattern()
    unet = CountingUNet(LinearDenoiser(direction, lambda timestep: torch.ones(len(timestep)), imprint))
    found = invert_directions(unet, SHAPE, ALPHAS_CUMPROD, [carrying_probe(BETAS)], InversionConfig(),
                              torch.Generator().manual_seed(0))
    cosines = torch.cosine_similarity(found.directions.flatten(1), direction.flatten().unsqueeze(0), 1).abs()
    return 1.0 - found.losses, cosines


def test_a_trigger_answered_with_its_target_but_no_gain_is_found_by_the_carrying_search() -> None:
    # The small-trigger VillanDiffusion models learn "make the target", not the gain curve: the gain
    # probe's statistic cannot see them (benchmarks/RESULTS.md).
    target = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    energy, cosine = carrying_search(target)
    best = int(energy.argmax())
    assert energy[best] > 2 * CARRYING_MIN_ENERGY and cosine[best] > 0.95


def test_a_model_that_takes_every_shift_for_noise_carries_no_image() -> None:
    energy, _ = carrying_search(None)
    assert float(energy.max()) < 0.01


def test_the_carrying_probe_holds_the_ode_probes_timesteps_and_is_no_gain_probe() -> None:
    ode = next(probe for probe in probes(BETAS) if probe.amplifying)
    carrying = carrying_probe(BETAS)
    assert carrying.points == ode.points and carrying.carrying and not carrying.amplifying
    assert (carrying.form, carrying.sampler_kind) == ("fades", "ode")  # the schedule removal rebuilds


def test_each_kind_of_probe_is_searched_at_its_own_radii() -> None:
    unet = CountingUNet(LinearDenoiser(torch.ones(SHAPE), ode_gain))
    points = probes(BETAS) + held_probes(BETAS) + [carrying_probe(BETAS)]
    config = InversionConfig(radii=(0.5,), held_radii=(0.35,), amplifying_radii=(0.7, 1.0), carrying_radii=(0.2,),
                             carrying_restarts=3, restarts=2, steps=2, eval_noises=4)
    found = invert_directions(unet, SHAPE, ALPHAS_CUMPROD, points, config, torch.Generator().manual_seed(0))
    expected = {"fades/ode": [0.7, 0.7, 1.0, 1.0], "fades/ancestral": [0.5, 0.5],
                "fades/ancestral-held": [0.35, 0.35], "rides-with-noise/ancestral-held": [0.35, 0.35],
                "fades/ode-carrying": [0.2, 0.2, 0.2]}
    for index, probe in enumerate(points):
        assert found.radii[found.probe_index == index].tolist() == pytest.approx(expected[probe.name])
    assert torch.isfinite(found.losses).all()


def test_the_carrying_search_runs_its_own_steps_at_its_own_step_size() -> None:
    # Its starts find a trigger only after a slow climb, so it takes more and larger steps than the gain
    # search (benchmarks/RESULTS.md, "How the target-carrying search climbs").
    unet = CountingUNet(LinearDenoiser(torch.ones(SHAPE), ode_gain))
    config = InversionConfig(radii=(0.5,), carrying_radii=(0.25,), carrying_restarts=1, restarts=1, steps=2,
                             carrying_steps=3, eval_noises=4)
    stages: dict[str, int] = {}
    invert_directions(unet, SHAPE, ALPHAS_CUMPROD, probes(BETAS) + [carrying_probe(BETAS)], config,
                      torch.Generator().manual_seed(0), lambda stage, done, total: stages.update({stage: total}))
    assert stages == {"inversion": 2, "target-carrying search": 3}
    default = InversionConfig()
    assert default.carrying_steps > default.steps and default.carrying_learning_rate > default.learning_rate
