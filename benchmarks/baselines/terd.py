"""TERD (Mo et al., ICML 2024): two-stage trigger estimation, then model detection against N(0, I).

What is implemented, from the paper:

1. Trigger estimation. A two-noise loss removes the unknown target: for images ``x0``, timesteps ``t``
   drawn from the last 10 of the schedule and two noises,
   ``0.5 * || (eps1 - eps_theta(x_t(eps1) + mu, t)) - (eps2 - eps_theta(x_t(eps2) + mu, t)) ||^2``
   (summed over pixels, averaged over the batch) ``- 5e-5 * ||mu||_1``; ``x0`` is standard noise (the
   target is unknown); ``mu`` starts at ``-U(0, 1)``; SGD lr 0.5 with cosine decay, 3000 iterations,
   batch 16.
2. Trigger refinement. A third as many iterations on images generated from ``noise + mu`` by a 10-step
   DDIM sampler (gradients flow through the sampler into ``mu``): the same loss at the last 10 timesteps
   with ``mu`` added and at the first 10 without it, averaged, minus the same L1 term; SGD lr 0.5 with
   cosine decay, gradient norm clipped to 0.01.
3. Model detection. The inverted trigger is read as a Gaussian ``N(mu, I)``; its per-pixel KL divergence
   to ``N(0, I)`` is ``mu^2 / 2``. The statistics are that KL's mean and its variance over pixels; a model
   is backdoored when either exceeds the clean models' mean + 3 sd (the benchmark calibrates this).

Where this differs: the benchmark uses the model's own noise schedule (its scheduler config) for the
loss and a DDIM scheduler built from the same config for refinement, and leaves out TERD's
normalising constants (the paper notes they do not change the decision). Input detection (per-sample
filtering at inference) is not part of a model gate and is not implemented.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.loading import LoadedModel
from diffcleanse_gate.sampling import build_scheduler, run_sampler

from . import BaselineResult


@dataclass(frozen=True)
class TerdConfig:
    """The paper's settings; refinement runs ``iterations // 3`` steps."""

    iterations: int = 3000
    batch_size: int = 16
    learning_rate: float = 0.5
    l1_weight: float = 5e-5
    clip_norm: float = 0.01
    sampler_steps: int = 10
    window: int = 10  # timesteps at either end of the schedule the loss is taken at


class _TwoNoiseLoss:
    """TERD's target-free loss over a noise schedule."""

    def __init__(self, unet: CountingUNet, alphas_cumprod: torch.Tensor, config: TerdConfig):
        self.unet, self.config = unet, config
        self.ab = alphas_cumprod.to(next(unet.parameters()).device)

    def __call__(self, mu: torch.Tensor, x0: torch.Tensor, late: bool, generator: torch.Generator) -> torch.Tensor:
        batch, device, total = x0.shape[0], x0.device, len(self.ab)
        low = total - self.config.window if late else 0
        t = torch.randint(low, low + self.config.window, (batch,), generator=generator).to(device)
        eps = torch.randn((2, *x0.shape), generator=generator).to(device)
        a = self.ab[t].view(1, -1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps + (mu if late else 0.0)
        predicted = self.unet(x_t.flatten(0, 1), t.repeat(2)).sample.view_as(eps)
        residual = (eps[0] - predicted[0]) - (eps[1] - predicted[1])
        return 0.5 * residual.pow(2).sum((1, 2, 3)).mean()


def estimate_trigger(model: LoadedModel, unet: CountingUNet, config: TerdConfig,
                     generator: torch.Generator) -> torch.Tensor:
    """Both stages of TERD's trigger estimation; returns ``mu`` ``[C, H, W]``."""
    device, shape = next(unet.parameters()).device, model.sample_shape
    ddpm = build_scheduler(model.scheduler_config)
    loss_of = _TwoNoiseLoss(unet, ddpm.alphas_cumprod, config)
    mu = (-torch.rand(shape, generator=generator)).to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([mu], lr=config.learning_rate)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.iterations)
    for _ in range(config.iterations):
        x0 = torch.randn((config.batch_size, *shape), generator=generator).to(device)
        loss = loss_of(mu, x0, True, generator) - config.l1_weight * mu.abs().sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
    refine = config.iterations // 3
    optimizer = torch.optim.SGD([mu], lr=config.learning_rate)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, refine))
    ddim = build_scheduler(model.scheduler_config, "ddim")
    for _ in range(refine):
        noise = torch.randn((config.batch_size, *shape), generator=generator).to(device)
        images = run_sampler(unet, ddim, noise + mu, config.sampler_steps, generator)
        loss = 0.5 * (loss_of(mu, images, True, generator) + loss_of(mu, images, False, generator))
        loss = loss - config.l1_weight * mu.abs().sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([mu], config.clip_norm)
        optimizer.step()
        decay.step()
    return mu.detach()


def kl_statistics(mu: torch.Tensor) -> dict[str, float]:
    """Mean and variance over pixels of the per-pixel KL(N(mu, 1) || N(0, 1)) = mu^2 / 2."""
    kl = mu.double().flatten().pow(2) / 2
    return {"kl_mean": float(kl.mean()), "kl_variance": float(kl.var(unbiased=False))}


def terd(model: LoadedModel, config: TerdConfig = TerdConfig(), seed: int = 0,
         device: str | torch.device = "cpu") -> BaselineResult:
    """Run TERD's trigger estimation and model-detection statistics on a loaded model."""
    unet = CountingUNet(model.unet.to(device))
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        mu = estimate_trigger(model, unet, config, generator)
    settings = asdict(config) | {"refine_iterations": config.iterations // 3}
    return BaselineResult(kl_statistics(mu), mu.cpu(), unet.evaluations, settings)
