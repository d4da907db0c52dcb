"""The ODE probe with the target's imprint on the response modelled, not left to the trigger.

    python benchmarks/target_term_gain.py MODEL_DIR [MODEL_DIR ...]

A VillanDiffusion model learns, for an input that carries its trigger, ``eps = (x_t - sqrt(ab_t) y -
s_t r) / sigma_t + c_t r``. The scan's probe input has no target component, so the model's mean answer to
the trigger is ``c_t r - k_t v`` with ``k_t = sqrt(ab_t) / sigma_t`` and ``v`` about the target minus
the model's mean clean estimate; the scan's search has only ``r`` to fit this with, and its best
direction is the trigger minus part of the target. Here every candidate also has a free ``v`` (shared by
the probe's timesteps, kept orthogonal to ``r``: along ``r`` a free ``v`` would let a gain-1 model fit
too), fitted with the same budget, noises and held-out measure as the scan (worst timestep, units of a
gain-1 model's mismatch, the ``r`` part alone in the denominator; but 16 noises per timestep
per step, not shared out). Prints per model: the anomaly, per
timestep, the cosine of ``r`` to the true trigger and of ``v`` to the true centred target, and the
collapse score of the ``r`` trigger (x_T units) through the model's sampler, best over sizes 0.5-2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.inversion import InversionConfig
from diffcleanse_gate.loading import LoadedModel, load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import ScanConfig
from diffcleanse_gate.threat import probes


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    return x / x.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (x.dim() - 1)))


def search(model: LoadedModel, config: InversionConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    """Held-out mismatch ``[timesteps, candidates]``, triggers in x_T units, target terms, probe points."""
    unet = CountingUNet(model.unet.requires_grad_(False))
    scheduler = build_scheduler(model.scheduler_config)
    alpha_bar = scheduler.alphas_cumprod
    ode = next(probe for probe in probes(scheduler.betas, config.min_anomaly) if probe.amplifying)
    points = ode.points
    view = (len(points), 1, 1, 1, 1, 1)
    times = torch.tensor([p.timestep for p in points])
    sigma = (1 - alpha_bar[times]).sqrt().view(view)
    weight = alpha_bar[times].sqrt().view(view) / sigma
    scale = torch.tensor([p.trigger_scale / ode.trigger_scale for p in points]).view(view)
    gain = torch.tensor([p.gain for p in points]).view(view)
    level = (gain.flatten() - 1).pow(2).view(-1, 1)
    radii = torch.tensor(config.amplifying_radii).repeat_interleave(config.restarts)
    count, shape = len(radii), model.sample_shape

    def parts(direction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trigger = _unit_rms(direction) * radii.view(-1, 1, 1, 1)
        flat = trigger.flatten(1)
        along = (target.flatten(1) * flat).sum(1, keepdim=True) / flat.pow(2).sum(1, keepdim=True)
        return trigger, target - (along * flat).view_as(target)

    def mismatch(direction: torch.Tensor, target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        batch = noise.shape[0]
        trigger, orthogonal = parts(direction, target)
        noisy = sigma * noise.view(1, 1, batch, *shape)
        with torch.no_grad():
            base = unet(noisy.flatten(0, 2), times.repeat_interleave(batch)).sample.view(len(times), 1, batch, *shape)
        shift = scale * trigger.view(1, count, 1, *shape)
        predicted = unet((noisy + shift).flatten(0, 2), times.repeat_interleave(count * batch)).sample
        response = (predicted.view(len(times), count, batch, *shape) - base).mean(2)
        expected = shift.squeeze(2) / sigma.squeeze(2)
        error = response - gain.squeeze(2) * expected + weight.squeeze(2) * orthogonal.unsqueeze(0)
        return error.flatten(2).pow(2).sum(2) / expected.flatten(2).pow(2).sum(2) / level

    generator = torch.Generator().manual_seed(0)
    direction = torch.randn((count, *shape), generator=generator).requires_grad_(True)
    target = torch.zeros((count, *shape)).requires_grad_(True)
    optimizer = torch.optim.Adam([direction, target], lr=config.learning_rate)
    for _ in range(config.steps):
        loss = mismatch(direction, target, torch.randn((config.batch_size, *shape), generator=generator)).mean(0).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        held_out = mismatch(direction, target, torch.randn((config.eval_noises, *shape), generator=generator))
        trigger, orthogonal = parts(direction, target)
    return held_out, trigger / ode.trigger_scale, orthogonal, list(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config, scan_config = InversionConfig(), ScanConfig()
    print("| model | anomaly | per timestep | r cosine to true trigger | v cosine to true target "
          "| collapse of r (best size) |")
    print("|---|---|---|---|---|---|")
    for path in args.models:
        model = load_local(path)
        mismatch, triggers, targets, points = search(model, config)
        worst = mismatch.amax(0)
        best = int(worst.argmin())
        per_timestep = ", ".join(f"{p.timestep}: {float(1 - m):+.2f}" for p, m in zip(points, mismatch[:, best]))
        sizes = torch.tensor([0.5, 1.0, 1.5, 2.0]).view(-1, 1, 1, 1)
        noise = torch.randn((scan_config.verify_noises, *model.sample_shape), generator=torch.Generator().manual_seed(1))
        scores, _ = collapse_scores(CountingUNet(model.unet), model.scheduler_config, None, triggers[best] * sizes,
                                    noise, scan_config.sampler_steps, 1, scan_config.max_batch)
        pick = int(scores.argmax())
        trigger_cosine = target_cosine = "-"
        backdoor = path / "backdoor.safetensors"
        if backdoor.is_file():
            true = load_file(backdoor)
            trigger_cosine = f"{float(torch.cosine_similarity(triggers[best].flatten(), true['trigger'].flatten(), 0)):.2f}"
            centred = (true["target"] - true["target"].mean()).flatten()
            target_cosine = f"{float(torch.cosine_similarity(targets[best].flatten(), centred, 0)):.2f}"
        print(f"| {path.name} | {float(1 - worst[best]):+.3f} | {per_timestep} | {trigger_cosine} | {target_cosine} "
              f"| {float(scores[pick]):.2f} (x{float(sizes[pick]):.1f}) |", flush=True)


if __name__ == "__main__":
    main()
