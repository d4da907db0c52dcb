"""Training images that ship inside installed packages (no downloads)."""

from __future__ import annotations

import numpy as np
import torch


def load_digits_images() -> torch.Tensor:
    """sklearn's 1,797 handwritten digits as a float tensor [N, 1, 8, 8] in [-1, 1] (ink is +1)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    return torch.from_numpy(images * 2.0 - 1.0).unsqueeze(1)
