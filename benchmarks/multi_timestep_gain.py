"""The ODE gain anomaly with one trigger held to the gain curve at several timesteps at once.

    python benchmarks/multi_timestep_gain.py MODEL_DIR [MODEL_DIR ...] [--timesteps 400 521 650]

The scan matches the ODE probe's gain at one timestep (t = 521 for the linear schedule), where some
briefly trained clean models find directions that amplify too (`clean-m1`). A trained-in trigger
``r`` enters every timestep as ``s_t * r`` and is answered with the attack's gain ``g_t`` at each of
them, so here one direction per candidate (the scan's radii and restarts, in x_T units) must match
``g_t`` at all the given timesteps together: Adam on the sum of each timestep's relative mismatch
divided by its clean level ``((g_t - 1) / g_t) ** 2``, with the scan's inversion settings (steps, fresh
noises per step, learning rate), then measured on the scan's number of held-out noises. Prints the best candidate's anomaly (1 - mismatch / clean level, summed over the
timesteps), each timestep's own anomaly, and for backdoored models the cosine to the true trigger.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.inversion import InversionConfig
from diffcleanse_gate.loading import LoadedModel, load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.threat import trigger_schedule

Searched = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def search(model: LoadedModel, timesteps: list[int], config: InversionConfig) -> Searched:
    """Held-out mismatch ``[timesteps, candidates]``, clean levels ``[timesteps, 1]`` and the directions."""
    unet = model.unet.requires_grad_(False)
    scheduler = build_scheduler(model.scheduler_config)
    alpha_bar = scheduler.alphas_cumprod
    s, c = trigger_schedule("fades", "ode", scheduler.betas)
    gain = c * (1 - alpha_bar).sqrt() / s.clamp_min(1e-12)
    times = torch.tensor(timesteps)
    view = (len(times), 1, 1, 1, 1, 1)
    sigma, scale, target_gain = (1 - alpha_bar[times]).sqrt().view(view), s[times].view(view), gain[times].view(view)
    radii = torch.tensor(config.amplifying_radii).repeat_interleave(config.restarts)
    count, shape = len(radii), model.sample_shape

    def mismatch(direction: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        batch = noise.shape[0]
        noisy = sigma * noise.view(1, 1, batch, *shape)
        with torch.no_grad():
            base = unet(noisy.flatten(0, 2), times.repeat_interleave(batch)).sample.view(len(times), 1, batch, *shape)
        trigger = direction / direction.flatten(1).pow(2).mean(1).sqrt().view(-1, 1, 1, 1) * radii.view(-1, 1, 1, 1)
        shift = scale * trigger.view(1, count, 1, *shape)
        predicted = unet((noisy + shift).flatten(0, 2), times.repeat_interleave(count * batch)).sample
        response = (predicted.view(len(times), count, batch, *shape) - base).mean(2)
        expected = shift.squeeze(2) / sigma.squeeze(2)
        error = response - target_gain.squeeze(2) * expected
        return error.flatten(2).pow(2).sum(2) / expected.flatten(2).pow(2).sum(2)

    clean_level = ((target_gain - 1) / target_gain).pow(2).view(-1, 1)
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn((count, *shape), generator=generator).requires_grad_(True)
    optimizer = torch.optim.Adam([direction], lr=config.learning_rate)
    for _ in range(config.steps):
        loss = (mismatch(direction, torch.randn((config.batch_size, *shape), generator=generator)) / clean_level).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        held_out = mismatch(direction, torch.randn((config.eval_noises, *shape), generator=generator))
    return held_out, clean_level, direction.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[400, 521, 650])
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = InversionConfig()
    print("| model | anomaly (best candidate) | per timestep " + ", ".join(map(str, args.timesteps))
          + " | cosine to true |")
    print("|---|---|---|---|")
    for path in args.models:
        mismatch, clean_level, directions = search(load_local(path), args.timesteps, config)
        anomaly = 1 - mismatch.sum(0) / clean_level.sum()
        best = int(anomaly.argmax())
        per_timestep = ", ".join(f"{float(1 - value):+.2f}" for value in mismatch[:, best] / clean_level[:, 0])
        backdoor = path / "backdoor.safetensors"
        cosine = "-"
        if backdoor.is_file():
            true = load_file(backdoor)["trigger"].flatten()
            cosine = f"{float(torch.cosine_similarity(directions[best].flatten(), true, 0)):.2f}"
        print(f"| {path.name} | {float(anomaly[best]):+.3f} | {per_timestep} | {cosine} |", flush=True)


if __name__ == "__main__":
    main()
