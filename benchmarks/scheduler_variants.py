"""Scan models with settings of their scheduler config changed: does a verdict depend on how a model ships?

    python benchmarks/scheduler_variants.py --set '{"variance_type": "fixed_large"}' tests/fixtures/zoo/clean-b ...

Each model folder is copied to a temporary folder, the given keys are written into its
``scheduler/scheduler_config.json``, and the copy is scanned with the default ``ScanConfig``; one line
per model: verdict, collapse score, gain anomaly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--set", dest="settings", type=json.loads, required=True, help="JSON object of config keys")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / model.name
            shutil.copytree(model, copy)
            config_path = copy / "scheduler" / "scheduler_config.json"
            config_path.write_text(json.dumps(json.loads(config_path.read_text()) | args.settings))
            result = scan(load_local(copy), ScanConfig())
        print(f"{json.dumps(args.settings)} {model.name}: {result.verdict}, collapse {result.score:.3f}, "
              f"gain anomaly {result.gain_anomaly:.3f}", flush=True)


if __name__ == "__main__":
    main()
