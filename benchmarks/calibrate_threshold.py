"""Derive the default threshold from clean models only, and print the figures behind it.

Scans every clean model of the fixture zoo with several seeds. The threshold is set halfway between
the top of the clean score distribution (mean + 3 sd) and complete collapse (score 1.0)::

    python benchmarks/calibrate_threshold.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clean = sorted(p for p in ZOO.iterdir() if "family" not in json.loads((p / "fixture.json").read_text()))
    scores = []
    for path in clean:
        model = load_local(path)
        for seed in range(args.seeds):
            score = scan(model, ScanConfig(seed=seed)).score
            scores.append(score)
            print(f"{path.name:<14} seed {seed}: {score:+.4f}", flush=True)
    mean, sd = statistics.mean(scores), statistics.stdev(scores)
    upper = mean + 3 * sd
    print(f"clean scans: {len(scores)}  mean {mean:+.4f}  sd {sd:.4f}  max {max(scores):+.4f}")
    print(f"mean + 3 sd = {upper:.4f};  threshold = (mean + 3 sd + 1) / 2 = {(upper + 1) / 2:.4f}")


if __name__ == "__main__":
    main()
