"""Every candidate of the scan's second look, sized: probe, radius, fit or energy, best collapse and at what size.

    python benchmarks/second_look_candidates.py MODEL_DIR[:SEED] [MODEL_DIR[:SEED] ...] [--held-radii 0.35 0.5 0.7 1.0]

Runs the scan as shipped, except that the second look sizes every candidate whatever its fit or energy
(``ScanConfig.held_min_fit`` and ``carrying_min_energy`` = -inf), and runs it even where the first look
finds evidence. For each candidate: its probe, search radius, fit (``1 -`` held-out mismatch; for the
target-carrying search, the energy one image explains), best collapse score over the
scan's sizes on the search's 8 noises, the size it came at, and (with a ``backdoor.safetensors``) its
cosine to the true trigger; then the best verified collapse with every candidate sized (no verdict: the
thresholds are set out of reach so that the second look always runs). Where the first look finds no
evidence, the second look meets the same noises as in the scan. This is how the second look's radii,
fit floor and energy floor were checked (benchmarks/RESULTS.md, "The second look", "The target-carrying
search").
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from diffcleanse_gate import scan as scan_module
from diffcleanse_gate.inversion import Candidates, InversionConfig
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig
from diffcleanse_gate.threat import Probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders, each optionally :SEED (default 0)")
    parser.add_argument("--held-radii", type=float, nargs="+", default=list(InversionConfig.held_radii))
    args = parser.parse_args()
    inversion = replace(InversionConfig(), held_radii=tuple(args.held_radii))
    torch.set_num_threads(1)
    for spec in args.models:
        folder, _, seed = spec.partition(":")
        path = Path(folder)
        backdoor = path / "backdoor.safetensors"
        true = load_file(backdoor)["trigger"].flatten() if backdoor.is_file() else None
        print(f"\n{path.name}, seed {seed or 0}\n")
        print("| probe | radius | fit or energy | best collapse (8 noises) | at size | cosine to true trigger |")
        print("|---|---|---|---|---|---|")
        with _every_held_candidate_printed(true):
            config = ScanConfig(seed=int(seed or 0), held_min_fit=-math.inf, carrying_min_energy=-math.inf,
                                inversion=inversion)
            result = scan_module.scan(load_local(path), _always_second_look(config))
        print(f"\nbest verified collapse {result.score:.3f}, from {result.trigger_probe.name}")


def _always_second_look(config: ScanConfig) -> ScanConfig:
    """``config`` with thresholds no statistic reaches, so that the second look always runs."""
    return replace(config, threshold=math.inf, gain_threshold=math.inf)


class _every_held_candidate_printed:
    """Within the block, the scan's scale search prints one table row per sized second-look candidate."""

    def __init__(self, true: torch.Tensor | None):
        self.true = true
        self.pending: tuple[torch.Tensor, Candidates, list[Probe]] | None = None

    def __enter__(self) -> None:
        self.sized, self.scores = scan_module.sized_candidates, scan_module.collapse_scores
        scan_module.sized_candidates = self._sized
        scan_module.collapse_scores = self._scores

    def __exit__(self, *exc: object) -> None:
        scan_module.sized_candidates, scan_module.collapse_scores = self.sized, self.scores

    def _sized(self, found: Candidates, points: list[Probe], held_min_fit: float,
               carrying_min_energy: float) -> torch.Tensor:
        chosen = self.sized(found, points, held_min_fit, carrying_min_energy)
        if any(len(probe.points) > 1 and not probe.amplifying for probe in points):
            self.pending = (chosen, found, points)
        return chosen

    def _scores(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        scores, images = self.scores(*args, **kwargs)
        if self.pending is not None:
            chosen, found, points = self.pending
            self.pending = None
            sizes = ScanConfig.trigger_scales
            for row, per_size in zip(chosen.tolist(), scores.view(len(chosen), len(sizes))):
                cosine = "-" if self.true is None else \
                    f"{float(torch.cosine_similarity(found.directions[row].flatten(), self.true, 0)):+.2f}"
                print(f"| {points[int(found.probe_index[row])].name} | {float(found.radii[row]):.2f} "
                      f"| {1 - float(found.losses[row]):.3f} | {float(per_size.max()):+.3f} "
                      f"| {sizes[int(per_size.argmax())]} | {cosine} |", flush=True)
        return scores, images


if __name__ == "__main__":
    main()
