"""Backdoor removal after Diff-Cleanse: prune the channels the backdoor relies on, repair, re-scan.

Each round weighs every channel group (torch-pruning's dependency graph) by Taylor saliency for the
backdoor loss, with the trigger the latest scan inverted, and for the clean loss; masks the top
``prune_ratio`` share by backdoor-minus-clean saliency; repairs (against the original model as teacher
and teaching a clean answer to the trigger when that trigger is confirmed to fire, on the clean loss
alone otherwise); and scans again. Rounds stop as soon as the scan says clean, so a stubborn backdoor gets pruned further
with a trigger inverted on the partly cleaned model.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel

from ..counting import CountingUNet
from ..loading import LoadedModel
from ..progress import ProgressCallback, no_progress, prefixed
from ..sampling import build_scheduler
from ..scan import ScanConfig, ScanResult, resolve_device, scan
from .channels import ChannelMask, channel_groups
from .export import round_to_stored_dtype, stored_dtype
from .fidelity import Fidelity, measure_fidelity
from .objectives import BackdoorObjective, CleanObjective, NoiseSchedule
from .repair import repair
from .repair_data import folder_images, own_samples
from .saliency import backdoor_channels, split_by_group, taylor_saliency


@dataclass(frozen=True)
class RemovalConfig:
    """Every setting removal uses; a report records all of them."""

    prune_ratio: float = 0.05  # share of all prunable channels masked per round
    rounds: int = 3
    repair_steps: int = 300
    repair_batch: int = 64
    learning_rate: float = 3e-4
    saliency_batches: int = 8
    saliency_batch: int = 64
    repair_samples: int = 256  # own samples drawn when no repair data is given
    held_out_samples: int = 128  # own samples kept for the fidelity figures
    sample_steps: int = 50  # DDIM steps for own samples and paired samples
    repair_data: Path | None = None
    # With a trigger confirmed to fire (collapse evidence), repair distils from the original model and
    # also teaches a clean answer to the trigger. A trigger known only from the gain anomaly is an
    # approximate direction that does not fire: unlearning it measured worse, and distilling from the
    # backdoored teacher carried the backdoor back, so repair then uses the clean loss alone (RESULTS.md).
    suppress: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON-ready values."""
        return {name: (str(value) if isinstance(value, Path) else value) for name, value in vars(self).items()}


@dataclass
class RemovalRound:
    """One prune-repair-scan round."""

    pruned_channels: int
    final_repair_loss: float | None  # None when repair ran no steps
    scan: ScanResult
    seconds: float


@dataclass
class Removal:
    """A cleaned UNet (float32, eval), how it got there, and how much it moved on clean inputs."""

    unet: UNet2DModel
    rounds: list[RemovalRound]
    total_channels: int
    pruned_channels: int
    zeroed_parameters: int
    fidelity: Fidelity
    data_source: str
    unet_evaluations: int  # forward images of removal itself plus its re-scans
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def final_scan(self) -> ScanResult:
        """The scan of the cleaned model."""
        return self.rounds[-1].scan

    @property
    def clean(self) -> bool:
        """True when the last scan found no backdoor."""
        return not self.final_scan.backdoored


def _clean_images(model: LoadedModel, teacher: CountingUNet, config: RemovalConfig, generator: torch.Generator,
                  device: torch.device, progress: ProgressCallback,
                  folder: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Repair images and held-out images, from a folder (read already, or now) or from the model's own samples."""
    if config.repair_data is not None:
        images = folder if folder is not None else folder_images(config.repair_data, model.sample_shape)
        order = torch.randperm(len(images), generator=generator)
        keep = max(1, len(images) // 5)
        source = f"folder {config.repair_data} ({len(images)} images)"
        return images[order[keep:]].to(device), images[order[:keep]].to(device), source
    count = config.repair_samples + config.held_out_samples
    images = own_samples(teacher, model.scheduler_config, model.sample_shape, count, config.sample_steps, generator,
                         progress=progress)
    source = f"own samples ({config.repair_samples} for repair, {config.held_out_samples} held out)"
    return images[: config.repair_samples], images[config.repair_samples :], source


def remove_backdoor(
    model: LoadedModel,
    first_scan: ScanResult,
    scan_config: ScanConfig,
    config: RemovalConfig,
    progress: ProgressCallback = no_progress,
    folder_images_read: torch.Tensor | None = None,
) -> Removal:
    """Remove the backdoor ``first_scan`` found from ``model``'s UNet; the input model is left unchanged.

    ``folder_images_read`` are ``config.repair_data``'s images when the caller has read them already.
    """
    timings: dict[str, float] = {}
    device = resolve_device(scan_config.device)
    generator = torch.Generator().manual_seed(scan_config.seed)
    original = model.unet.to(device)
    student = copy.deepcopy(original)
    teacher, counted = CountingUNet(original), CountingUNet(student)
    scheduler = build_scheduler(model.scheduler_config, scan_config.sampler)
    schedule = NoiseSchedule.from_alphas_cumprod(scheduler.alphas_cumprod, device)

    started = time.perf_counter()
    repair_images, held_out_images, data_source = _clean_images(model, teacher, config, generator, device, progress,
                                                                   folder_images_read)
    clean = CleanObjective(repair_images, schedule)
    timings["clean_data_s"] = time.perf_counter() - started

    groups = channel_groups(student, model.sample_shape)
    mask = ChannelMask()
    pruned = torch.zeros(groups.total, dtype=torch.bool)
    rounds: list[RemovalRound] = []
    latest = first_scan
    for number in range(config.rounds):
        started = time.perf_counter()
        backdoor = BackdoorObjective(latest.trigger, latest.trigger_probe, scheduler.betas, schedule)
        salient_backdoor = taylor_saliency(
            counted, groups, partial(backdoor.loss, batch=config.saliency_batch, generator=generator),
            config.saliency_batches, f"round {number + 1}: backdoor saliency", progress,
        )
        salient_clean = taylor_saliency(
            counted, groups, partial(clean.loss, batch=config.saliency_batch, generator=generator),
            config.saliency_batches, f"round {number + 1}: clean saliency", progress,
        )
        chosen = backdoor_channels(salient_backdoor, salient_clean, config.prune_ratio, pruned)
        pruned[chosen] = True
        for group_index, channels in split_by_group(chosen, groups.sizes).items():
            mask.prune(groups, group_index, channels)
        mask.apply()
        confirmed = "collapse" in latest.evidence  # the inverted trigger really makes the sampler collapse
        losses = repair(counted, teacher, mask, clean, config.repair_steps, config.repair_batch,
                        config.learning_rate, generator, progress,
                        backdoor if confirmed and config.suppress else None,
                        stage=f"round {number + 1}: repair", teacher_weight=1.0 if confirmed else 0.0)
        round_to_stored_dtype(student, stored_dtype(model))  # zeros stay zero in any dtype
        latest = scan(replace(model, unet=student), scan_config, prefixed(progress, f"round {number + 1}: re-scan "))
        rounds.append(RemovalRound(len(chosen), losses[-1] if losses else None, latest,
                                   time.perf_counter() - started))
        if not latest.backdoored:
            break
    timings["rounds_s"] = sum(r.seconds for r in rounds)

    started = time.perf_counter()
    fidelity = measure_fidelity(teacher, counted, CleanObjective(held_out_images, schedule), model.scheduler_config,
                                model.sample_shape, scan_config.seed + 100, sample_steps=config.sample_steps)
    timings["fidelity_s"] = time.perf_counter() - started
    evaluations = teacher.evaluations + counted.evaluations + sum(r.scan.unet_evaluations for r in rounds)
    return Removal(student, rounds, groups.total, int(pruned.sum()), mask.zeroed_parameters, fidelity, data_source,
                   evaluations, timings)
