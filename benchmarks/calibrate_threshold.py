"""Derive both default thresholds from clean models only, and print the figures behind them.

Scans every clean model of the given zoos (default: the fixture zoo) with several seeds; each
threshold is the mean plus three standard deviations of the clean models' statistic (the 3-sigma
rule TERD uses)::

    python benchmarks/calibrate_threshold.py [--seeds 3] [--zoo tests/fixtures/zoo runs/holdout]
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
    parser.add_argument("--zoo", type=Path, nargs="+", default=[ZOO])
    args = parser.parse_args()
    torch.set_num_threads(1)
    clean = [p for zoo in args.zoo for p in sorted(zoo.iterdir())
             if (p / "fixture.json").is_file() and "family" not in json.loads((p / "fixture.json").read_text())]
    statistics_by_name: dict[str, list[float]] = {"collapse score": [], "gain anomaly": []}
    for path in clean:
        model = load_local(path)
        for seed in range(args.seeds):
            result = scan(model, ScanConfig(seed=seed))
            statistics_by_name["collapse score"].append(result.score)
            statistics_by_name["gain anomaly"].append(result.gain_anomaly)
            print(f"{path.name:<14} seed {seed}: collapse {result.score:+.4f}  gain {result.gain_anomaly:+.4f}", flush=True)
    for name, values in statistics_by_name.items():
        mean, sd = statistics.mean(values), statistics.stdev(values)
        print(f"{name}: {len(values)} clean scans, mean {mean:+.4f}, sd {sd:.4f}, max {max(values):+.4f}; "
              f"threshold = mean + 3 sd = {mean + 3 * sd:.4f}")


if __name__ == "__main__":
    main()
