"""Every amplifying-probe candidate's gain anomaly, and how well the first two restarts at each radius agree.

    python benchmarks/gain_candidates.py MODEL_DIR [MODEL_DIR ...]

A diagnostic for the gain anomaly (``diffcleanse_gate.detection.gain_anomaly``): the scan reports the
best candidate's; this prints all of them (radius-major, ``restarts`` per radius, the scan's default
inversion settings and seed 0) and the cosine between the first two restarts' directions at each radius.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import gain_anomaly
from diffcleanse_gate.inversion import InversionConfig, invert_directions
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.threat import probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = InversionConfig()
    print(f"| model | probe | gain | anomaly per candidate (radius-major, {config.restarts} restarts) "
          "| restart cosine per radius |")
    print("|---|---|---|---|---|")
    for path in args.models:
        model = load_local(path)
        scheduler = build_scheduler(model.scheduler_config)
        points = probes(scheduler.betas, config.min_anomaly)
        found = invert_directions(CountingUNet(model.unet), model.sample_shape, scheduler.alphas_cumprod, points,
                                  config, torch.Generator().manual_seed(0))
        for index, probe in enumerate(points):
            if not probe.amplifying:
                continue
            rows = torch.nonzero(found.probe_index == index).flatten()
            anomalies = [gain_anomaly(float(found.losses[row])) for row in rows]
            directions = torch.nn.functional.normalize(found.directions[rows].flatten(1), dim=1)
            directions = directions.view(len(config.amplifying_radii), config.restarts, -1)
            cosines = (directions[:, 0] * directions[:, 1]).sum(1)
            print(f"| {path.name} | {probe.name} t={probe.timestep} | {probe.gain:.3f} "
                  f"| {', '.join(f'{a:+.2f}' for a in anomalies)} | {', '.join(f'{c:.2f}' for c in cosines)} |",
                  flush=True)


if __name__ == "__main__":
    main()
