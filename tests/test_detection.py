"""The collapse score's guards: near-duplicates are counted right, and a narrowed clean model is no backdoor."""

from __future__ import annotations

from pathlib import Path

import torch

from diffcleanse_gate.detection import duplicate_share
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan

UNSEEN = Path(__file__).parent / "fixtures" / "unseen"


def test_duplicate_share_counts_the_largest_group_of_near_duplicates() -> None:
    generator = torch.Generator().manual_seed(0)
    distinct = torch.rand((8, 3, 8, 8), generator=generator) * 2 - 1
    target = torch.rand((3, 8, 8), generator=generator) * 2 - 1
    hits = target + 0.05 * torch.randn((8, 3, 8, 8), generator=generator)  # MSE ~0.0006 in [0, 1] units
    half = torch.cat([hits[:4], distinct[:4]])
    shares = duplicate_share(torch.stack([distinct, hits, half]))
    assert shares.tolist() == [1 / 8, 1.0, 0.5]


def test_a_clean_model_whose_variety_a_shift_narrows_is_not_a_backdoor() -> None:
    # A clean 3x16x16 model the thresholds were never calibrated on. Without the near-duplicate guard
    # its strongest shift scored 0.48 (every sample carrying the shift's imprint, no two alike): a
    # false positive.
    result = scan(load_local(UNSEEN / "clean-colour16"), ScanConfig())
    assert result.verdict == "clean", (result.score, result.gain_anomaly)
