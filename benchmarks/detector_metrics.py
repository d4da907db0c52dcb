"""Turn per-model detector statistics into verdicts and figures: 3-sigma calibration, TPR/TNR, ROC, AUROC."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

SIGMAS = 3.0


def clean_z(value: float, clean: Sequence[float], higher_flags: bool) -> float:
    """How many clean-model standard deviations ``value`` lies on the flagging side of the clean mean (NaN
    without clean models to compare with)."""
    if not clean:
        return float("nan")
    mean, sd = statistics.mean(clean), statistics.stdev(clean) if len(clean) > 1 else 0.0
    sd = max(sd, 1e-12)
    return (value - mean) / sd if higher_flags else (mean - value) / sd


def roc_points(scores: Sequence[float], positive: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every threshold (higher score = more suspect), from (0, 0) to (1, 1)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    labels = np.asarray(positive, dtype=bool)[order]
    ranked = np.asarray(scores, dtype=float)[order]
    tps, fps = np.cumsum(labels), np.cumsum(~labels)
    last_of_tie = np.r_[np.diff(ranked) != 0, True]
    tpr = np.r_[0.0, tps[last_of_tie] / max(1, labels.sum())]
    fpr = np.r_[0.0, fps[last_of_tie] / max(1, (~labels).sum())]
    return fpr, tpr


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve (ties count half), or NaN without both classes."""
    labels = np.asarray(positive, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    fpr, tpr = roc_points(scores, positive)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def rates(flagged: Sequence[bool], positive: Sequence[bool]) -> tuple[float, float]:
    """(TPR, TNR); NaN where a class is absent."""
    hits = np.asarray(flagged, dtype=bool)
    labels = np.asarray(positive, dtype=bool)
    tpr = hits[labels].mean() if labels.any() else float("nan")
    tnr = (~hits[~labels]).mean() if (~labels).any() else float("nan")
    return float(tpr), float(tnr)
