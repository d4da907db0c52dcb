"""The scan: invert candidate triggers, pick the one that collapses the sampler most, decide."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .counting import CountingUNet
from .errors import UnsupportedModelError
from .detection import DEFAULT_THRESHOLD, collapse_scores
from .inversion import InversionConfig, invert_directions
from .loading import LoadedModel
from .progress import ProgressCallback, no_progress
from .sampling import build_scheduler, sampler_name
from .threat import Probe, probes


@dataclass(frozen=True)
class ScanConfig:
    """Every setting a scan uses; a report records all of them."""

    seed: int = 0
    sampler: str | None = None
    sampler_steps: int = 10
    search_noises: int = 16
    verify_noises: int = 64
    trigger_scales: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
    threshold: float = DEFAULT_THRESHOLD
    device: str = "cpu"
    max_batch: int = 1024
    inversion: InversionConfig = field(default_factory=InversionConfig)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values."""
        return asdict(self)


@dataclass
class ScanResult:
    """What a scan found. Tensors are on the CPU; images are in [-1, 1]."""

    verdict: str
    score: float
    threshold: float
    sampler: str
    unet_evaluations: int
    timings: dict[str, float]
    trigger: torch.Tensor
    triggered_samples: torch.Tensor
    clean_samples: torch.Tensor
    candidate_scores: list[float]
    probes: list[Probe]
    config: ScanConfig

    @property
    def backdoored(self) -> bool:
        """True when the score reached the threshold."""
        return self.verdict == "backdoored"


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda`` into a device, preferring CUDA for ``auto`` when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def scan(model: LoadedModel, config: ScanConfig, progress: ProgressCallback = no_progress) -> ScanResult:
    """Scan a loaded model: inversion, scale search, verification, verdict."""
    timings: dict[str, float] = {}
    device = resolve_device(config.device)
    unet = CountingUNet(model.unet.to(device))
    shape = model.sample_shape
    generator = torch.Generator().manual_seed(config.seed)
    scheduler = build_scheduler(model.scheduler_config, config.sampler)
    if not hasattr(scheduler, "betas") or not hasattr(scheduler, "alphas_cumprod"):
        raise UnsupportedModelError(f"{type(scheduler).__name__} has no discrete noise schedule to probe")
    probe_points = probes(scheduler.betas, config.inversion.min_anomaly)

    started = time.perf_counter()
    directions, _ = invert_directions(
        unet, shape, scheduler.alphas_cumprod, probe_points, config.inversion, generator, progress
    )
    timings["inversion_s"] = time.perf_counter() - started

    started = time.perf_counter()
    scales = torch.tensor(config.trigger_scales, device=device).view(1, -1, 1, 1, 1)
    candidates = (directions.unsqueeze(1) * scales).flatten(0, 1)
    noise = torch.randn((config.search_noises, *shape), generator=generator).to(device)
    scores, _ = collapse_scores(
        unet, model.scheduler_config, config.sampler, candidates, noise,
        config.sampler_steps, config.seed, config.max_batch, progress, "scale search",
    )
    best = int(torch.argmax(scores))
    timings["scale_search_s"] = time.perf_counter() - started

    started = time.perf_counter()
    trigger = candidates[best : best + 1]
    verify_noise = torch.randn((config.verify_noises, *shape), generator=generator).to(device)
    final, images = collapse_scores(
        unet, model.scheduler_config, config.sampler, trigger, verify_noise,
        config.sampler_steps, config.seed + 1, config.max_batch, progress, "verification",
    )
    timings["verification_s"] = time.perf_counter() - started
    score = float(final[0])
    return ScanResult(
        verdict="backdoored" if score >= config.threshold else "clean",
        score=score,
        threshold=config.threshold,
        sampler=sampler_name(scheduler),
        unet_evaluations=unet.evaluations,
        timings=timings,
        trigger=trigger[0].cpu(),
        triggered_samples=images[1].cpu(),
        clean_samples=images[0].cpu(),
        candidate_scores=[float(s) for s in scores],
        probes=probe_points,
        config=config,
    )
