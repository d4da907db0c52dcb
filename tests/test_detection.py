"""The collapse score: its guards (near-duplicates counted right, a narrowed clean model is no backdoor, nor one
narrowed to a flat mode of photographs), a colour backdoor caught, a small ODE-sampler trigger found by the
target-carrying search (under a colour cast, on photographs), which candidates it sizes and at which size."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import (
    DEFAULT_THRESHOLD,
    collapse_scores,
    duplicate_share,
)
from diffcleanse_gate.inversion import Candidates, invert_directions
from diffcleanse_gate.loading import LoadedModel, load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import (
    CARRYING_MIN_ENERGY,
    HELD_MIN_FIT,
    ScanConfig,
    scan,
    sized_candidates,
    smallest_firing,
)
from diffcleanse_gate.threat import Probe, ProbePoint, carrying_probe

UNSEEN = Path(__file__).parent / "fixtures" / "unseen"


def test_duplicate_share_counts_the_largest_group_of_near_duplicates() -> None:
    generator = torch.Generator().manual_seed(0)
    distinct = torch.rand((8, 3, 8, 8), generator=generator) * 2 - 1
    target = torch.rand((3, 8, 8), generator=generator) * 2 - 1
    hits = target + 0.05 * torch.randn((8, 3, 8, 8), generator=generator)  # MSE ~0.0006 in [0, 1] units
    half = torch.cat([hits[:4], distinct[:4]])
    # One flat colour with faint texture of its own: pairwise MSE ~0.005, within DUPLICATE_MSE, but as large
    # as the samples' own spatial variation, so no two are the same image.
    colour = torch.tensor([-0.8, 0.1, 0.0]).view(3, 1, 1)
    flat = colour + 0.1 * torch.randn((8, 3, 8, 8), generator=generator)
    shares = duplicate_share(torch.stack([distinct, hits, half, flat]))
    assert shares.tolist() == [1 / 8, 1.0, 0.5, 1 / 8]


def test_a_shift_that_selects_a_flat_mode_of_a_photo_model_is_not_a_backdoor() -> None:
    # A clean model of photograph patches (held-out zoo clean-p0, 9,000 steps); the thresholds were never
    # calibrated on such data. Its seed-2 scan verified this candidate at collapse 0.548, a false positive:
    # most samples became dark-teal background patches, each textured differently, near-duplicates by MSE
    # alone. The shift narrows the sampling as much as a partial backdoor would; no image is repeated.
    path = UNSEEN / "clean-p0"
    model, config = load_local(path), ScanConfig()
    trigger = load_file(path / "narrowing-trigger.safetensors")["trigger"]
    noise = torch.randn((64, *model.sample_shape), generator=torch.Generator().manual_seed(4))
    scores, images = collapse_scores(CountingUNet(model.unet), model.scheduler_config, None, trigger.unsqueeze(0),
                                     noise, config.sampler_steps, 4, config.max_batch)
    clamped = images.clamp(-1, 1)
    narrowed = 1 - float(clamped[1].var(0).mean() / clamped[0].var(0).mean())
    assert narrowed > DEFAULT_THRESHOLD and float(scores[0]) < DEFAULT_THRESHOLD, (narrowed, float(scores[0]))


def test_a_clean_model_whose_variety_a_shift_narrows_is_not_a_backdoor() -> None:
    # A clean 3x16x16 model the thresholds were never calibrated on. Without the near-duplicate guard
    # the first look's strongest shift scored 0.48 (every sample carrying the shift's imprint, no two
    # alike): a false positive. The guard is under test, so the first look alone (the second look's
    # verdicts on this model: benchmarks/RESULTS.md, "How the target-carrying search climbs").
    result = scan(load_local(UNSEEN / "clean-colour16"), ScanConfig(second_look=False))
    assert result.verdict == "clean", (result.score, result.gain_anomaly)


def test_a_colour_backdoor_is_caught_by_collapse_with_its_trigger() -> None:
    # A 3x16x16 BadDiffusion model (stop-sign trigger, 97 % attack success) the thresholds were never
    # calibrated on. Searched with its per-channel mean, every candidate settled on a global colour
    # shift that clean colour models shrink as well (cosine to the trigger at most 0.19): a miss. And
    # the trigger fires only at sizes 0.3-0.45, between two points of a grid 0.25 apart.
    path = UNSEEN / "baddiffusion-stop-frame"
    result = scan(load_local(path), ScanConfig())
    assert result.verdict == "backdoored" and "collapse" in result.evidence, (result.score, result.gain_anomaly)
    true_trigger = load_file(path / "backdoor.safetensors")["trigger"]
    assert torch.nn.functional.cosine_similarity(result.trigger.flatten(), true_trigger.flatten(), dim=0) > 0.9


def _sized_carrying_candidates(model: LoadedModel, config: ScanConfig) -> torch.Tensor:
    """The directions of the target-carrying search (seed 0) that the scale search sizes."""
    scheduler = build_scheduler(model.scheduler_config)
    probe = carrying_probe(scheduler.betas)
    found = invert_directions(CountingUNet(model.unet), model.sample_shape, scheduler.alphas_cumprod, [probe],
                              config.inversion, torch.Generator().manual_seed(0))
    return found.directions[sized_candidates(found, [probe])]


def _best_collapse(model: LoadedModel, directions: torch.Tensor, config: ScanConfig) -> float:
    """The highest collapse score of ``directions`` at the scan's sizes, on 16 noises."""
    sizes = torch.tensor(config.trigger_scales).view(1, -1, 1, 1, 1)
    candidates = (directions.unsqueeze(1) * sizes).flatten(0, 1)
    noise = torch.randn((16, *model.sample_shape), generator=torch.Generator().manual_seed(1))
    scores, _ = collapse_scores(CountingUNet(model.unet), model.scheduler_config, None, candidates, noise,
                                config.sampler_steps, 0, config.max_batch)
    return float(scores.max())


def test_a_small_ode_trigger_the_gain_misses_is_found_by_the_carrying_search_and_collapses_the_sampler() -> None:
    # A small trigger (two squares, per-pixel RMS 0.27) the model never learned the ODE attack's gain for
    # (gain anomaly 0.05, threshold 0.25): it answers the trigger with its target instead.
    path = UNSEEN / "villandiffusion-glasses-arrow"
    model, config = load_local(path), ScanConfig()
    sized = _sized_carrying_candidates(model, config)
    true_trigger = load_file(path / "backdoor.safetensors")["trigger"].flatten()
    cosines = torch.cosine_similarity(sized.flatten(1), true_trigger.unsqueeze(0), 1)
    assert len(sized) > 0 and float(cosines.min()) > 0.5
    assert _best_collapse(model, sized, config) >= config.threshold


def test_a_photo_models_carrying_candidates_are_sized_without_their_colour_cast() -> None:
    # The same attack on a model of photograph patches (trigger on a cross target, 78 % attack success).
    # Its search finds the trigger under a colour cast, a third of the candidate's energy, that makes
    # sampling diverge: sized with the cast, no candidate collapsed the sampler (at most 0.17 on the
    # scale search's noises) and the scan missed the model at seeds 0-2.
    path = UNSEEN / "villandiffusion-glasses-cross"
    model, config = load_local(path), ScanConfig()
    sized = _sized_carrying_candidates(model, config)
    assert float(sized.mean(dim=(-2, -1)).abs().max()) < 1e-4
    true_trigger = load_file(path / "backdoor.safetensors")["trigger"]
    centred = (true_trigger - true_trigger.mean(dim=(-2, -1), keepdim=True)).flatten()
    assert float(torch.cosine_similarity(sized.flatten(1), centred.unsqueeze(0), 1).max()) > 0.5
    assert _best_collapse(model, sized, config) >= config.threshold


def test_the_scale_search_sizes_every_single_timestep_candidate_and_no_amplifying_one() -> None:
    ancestral = Probe("fades/ancestral", (ProbePoint(999, 0.51, 0.99),))
    ode = Probe("fades/ode", (ProbePoint(521, 1.25, 0.75),))
    rides = Probe("rides-with-noise/ancestral", (ProbePoint(950, 0.6, 0.9),))
    radii = torch.tensor([0.5, 0.5, 1.0, 0.7, 0.7, 0.5])
    losses = torch.tensor([0.4, 0.1, 0.2, 0.0, 0.0, 0.3])  # the fit does not decide which are sized
    found = Candidates(torch.zeros(6, 1, 2, 2), losses, radii, torch.tensor([0, 0, 0, 1, 1, 2]))
    assert sized_candidates(found, [ancestral, ode, rides]).tolist() == [0, 1, 2, 5]


def test_the_scale_search_sizes_a_held_probes_candidates_from_its_fit_floor() -> None:
    # On the fixture zoo's clean models, held candidates that narrow the sampler fit the probe 0.04-0.21:
    # sized, they flagged two of the four clean models (collapse 0.67-0.69).
    held = Probe("rides-with-noise/ancestral-held", (ProbePoint(999, 0.5, 0.99), ProbePoint(518, 0.5, 0.8)))
    ode = Probe("fades/ode", (ProbePoint(521, 1.25, 0.75), ProbePoint(366, 1.5, 0.6)))
    fits = torch.tensor([0.05, 0.2, HELD_MIN_FIT, 0.9, 0.95, 0.1, 0.2])
    found = Candidates(torch.zeros(7, 1, 2, 2), 1.0 - fits, torch.full((7,), 0.5), torch.tensor([0, 0, 0, 0, 1, 2, 2]))
    assert sized_candidates(found, [held, ode, held]).tolist() == [2, 3]  # none of the third probe's


def test_the_scale_search_sizes_a_carrying_searchs_candidates_from_its_energy_floor() -> None:
    # The target-carrying search finds shifts that narrow a clean model's sampling (collapse up to 0.75)
    # whose answer carries little of one image (0.03-0.17 on the clean models measured).
    carrying = Probe("fades/ode-carrying", (ProbePoint(521, 1.25, 0.75), ProbePoint(366, 1.5, 0.6)))
    ode = Probe("fades/ode", carrying.points)
    energies = torch.tensor([0.04, 0.17, CARRYING_MIN_ENERGY - 1e-3, CARRYING_MIN_ENERGY + 1e-3, 0.33, 0.9])
    found = Candidates(torch.zeros(6, 1, 2, 2), 1.0 - energies, torch.full((6,), 0.35), torch.tensor([0, 0, 0, 0, 0, 1]))
    assert sized_candidates(found, [carrying, ode]).tolist() == [3, 4]


def test_the_scale_search_keeps_the_smallest_size_that_fires_as_fully_as_the_best() -> None:
    sizes = torch.tensor([0.25, 0.5, 0.75, 1.0, 0.25, 0.5, 0.75, 1.0])
    saturated = torch.tensor([-0.2, 0.66, 0.995, 1.0, 0.1, 0.4, 0.999, 0.998])  # larger copies fire as well
    assert smallest_firing(saturated, sizes) == 6
    partial = torch.tensor([0.1, 0.3, 0.5, 0.58, 0.0, 0.2, 0.45, 0.55])  # nothing else near the best
    assert smallest_firing(partial, sizes) == 3
    clean = torch.tensor([-0.3, -0.1, -0.05, -0.2, -0.4, -0.051, -0.6, -0.5])
    assert smallest_firing(clean, sizes) == 5
