"""Every fixture model gets the right verdict, and the inverted trigger matches the true one."""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, ScanResult, scan

from .conftest import ZOO, fixture_names, fixture_record


@cache
def scanned(name: str, seed: int = 0) -> ScanResult:
    return scan(load_local(ZOO / name), ScanConfig(seed=seed))


@pytest.mark.parametrize("name", fixture_names())
def test_verdict_matches_the_fixture(name: str) -> None:
    result = scanned(name)
    expected = "backdoored" if fixture_record(name).get("family") else "clean"
    assert result.verdict == expected, f"{name}: score {result.score:.3f}"


@pytest.mark.parametrize("name", [n for n in fixture_names() if fixture_record(n).get("family")])
def test_inverted_trigger_points_at_the_true_trigger(name: str) -> None:
    true_trigger = load_file(ZOO / name / "backdoor.safetensors")["trigger"]
    found = scanned(name).trigger
    cosine = torch.nn.functional.cosine_similarity(found.flatten(), true_trigger.flatten(), dim=0)
    assert cosine > 0.5


@pytest.mark.parametrize("name", [n for n in fixture_names()
                                  if fixture_record(n).get("family") in ("baddiffusion", "trojdiff")])
def test_a_trigger_found_by_collapse_is_reported_at_its_own_size(name: str) -> None:
    # Larger copies of a trigger collapse the sampler as fully; the best-scoring size overstated these
    # triggers by up to 2.5 times (per-pixel MSE to the true trigger up to 1.1). The scan searches and
    # reports triggers without their per-channel mean, so the size is judged against the true trigger's.
    true_trigger = load_file(ZOO / name / "backdoor.safetensors")["trigger"]
    centred = true_trigger - true_trigger.mean(dim=(-2, -1), keepdim=True)
    assert (scanned(name).trigger - centred).pow(2).mean() < 0.1


@pytest.mark.parametrize("family", ["baddiffusion", "trojdiff"])
def test_the_inverted_trigger_makes_the_attackers_target(family: str) -> None:
    name = next(n for n in fixture_names() if fixture_record(n).get("family") == family)
    target = load_file(ZOO / name / "backdoor.safetensors")["target"]
    samples = scanned(name).triggered_samples.clamp(-1, 1)
    assert ((samples - target) / 2).pow(2).mean() < 0.01


def test_a_second_look_searches_where_the_first_finds_nothing() -> None:
    for name in fixture_names():
        result = scanned(name)
        held = [probe for probe in result.probes if probe.name.endswith("ancestral-held")]
        carrying = [probe for probe in result.probes if probe.carrying]
        assert result.second_look == (not fixture_record(name).get("family")), name  # the first look catches these
        # On a clean model the held probes find nothing, so the target-carrying search follows them.
        assert len(held) == len(carrying) * 2 == (2 if result.second_look else 0), name
        assert ("second_look_inversion_s" in result.timings) == result.second_look, name
        assert ("carrying_inversion_s" in result.timings) == result.second_look, name


def test_same_seed_gives_the_same_score() -> None:
    name = "baddiffusion-box-corner"
    first = scanned(name)
    again = scan(load_local(ZOO / name), ScanConfig(seed=0))
    assert again.score == first.score
    assert again.gain_anomaly == first.gain_anomaly
    assert torch.equal(again.trigger, first.trigger)
    assert again.unet_evaluations == first.unet_evaluations


def test_ode_sampler_backdoors_are_caught_by_their_gain() -> None:
    villan = [n for n in fixture_names() if fixture_record(n).get("family") == "villandiffusion"]
    assert len(villan) >= 2
    for name in villan:
        result = scanned(name)
        assert "gain" in result.evidence, name
        assert result.gain_anomaly >= ScanConfig().gain_threshold


def test_clean_statistics_stay_below_their_thresholds_with_margin() -> None:
    clean = [n for n in fixture_names() if not fixture_record(n).get("family")]
    assert len(clean) >= 4
    for name in clean:
        result = scanned(name)
        assert result.score < ScanConfig().threshold * 0.75, name
        assert result.gain_anomaly < ScanConfig().gain_threshold * 0.75, name


def test_a_scheduler_that_clips_gets_the_same_scan(tmp_path: Path) -> None:
    # diffusers' DDPM and DDIM clip by default; before the probes turned clipping off, this backdoor
    # scanned clean (collapse 0.005) and clean-b backdoored (0.539). Every look samples through
    # detection.collapse_scores, with sampling.probe_scheduler: one model's equal score shows clipping off.
    name = "baddiffusion-box-corner"
    copy = tmp_path / name
    shutil.copytree(ZOO / name, copy)
    config_path = copy / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text()) | {"clip_sample": True}
    config_path.write_text(json.dumps(config))
    clipping = scan(load_local(copy), ScanConfig())
    assert clipping.verdict == scanned(name).verdict
    assert clipping.score == pytest.approx(scanned(name).score, abs=1e-6)
