"""Trigger inversion: search for input shifts that the model answers the way a backdoor would.

A clean denoiser takes a shift of its input for more noise (``threat`` module). A backdoored one
answers its trigger with a distinct gain: about 0.5 at the noisiest step for ancestral-sampler
attacks, above 1 in mid trajectory for ODE-sampler attacks. For each such probe we look for
directions whose mean response has that gain (after Elijah's premise, extended to the ODE case), at
each of the probe's timesteps at once for the ODE case (the trigger scaled by ``s_t`` to each, the
target it mixes into the answer fitted alongside).
Each candidate is held on a sphere of fixed per-pixel RMS, so the trivial answers (a shift that
shrinks to 0, or a huge uniform one) are out of reach, and by default searched without its per-channel
mean: a colour model shrinks a global colour shift as a trigger would, so such shifts fit the probe on
clean and backdoored models alike and crowd the trigger out (benchmarks/RESULTS.md). All gain probes,
radii and random restarts run as one batch with fresh noise every step.

An ODE-sampler backdoor with a small trigger may never learn the gain its attack trains, yet it still
answers the trigger with its target image; the target-carrying search (the second look's) looks for
shifts whose answer carries one image across the ODE probe's timesteps. Which candidate, at which
size, truly makes the sampler collapse is decided afterwards by :mod:`diffcleanse_gate.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .counting import CountingUNet
from .progress import ProgressCallback, no_progress
from .threat import Probe


@dataclass(frozen=True)
class InversionConfig:
    """Settings of the direction search; the defaults suit models from 8x8 to 32x32.

    Radii are per-pixel RMS at the probe's timestep: ``radii`` for the shrinking (ancestral) probes,
    ``held_radii`` for the shrinking probes held at several timesteps (the second look's),
    ``amplifying_radii`` for the amplifying (ODE) ones and ``carrying_radii`` (with ``carrying_restarts``
    starts each, ``carrying_steps`` Adam steps of ``carrying_learning_rate``) for the target-carrying
    search. With ``centred``, every candidate is returned without its per-channel mean, and the gain
    probes' candidates are searched so too. The target-carrying search keeps the mean while it searches,
    where its energy floor was measured; on natural images its candidates' mean is a colour cast that
    makes sampling diverge, while the rest is the trigger (benchmarks/RESULTS.md, "The target-carrying
    candidates without their colour cast").
    """

    radii: tuple[float, ...] = (0.35, 0.5, 0.7, 1.0)
    # A shift as large as the noise is one a clean model answers with a gain near 1/2 of its own, so the
    # held probes' candidates fit it closely there whatever the model (benchmarks/RESULTS.md, "The second look").
    held_radii: tuple[float, ...] = (0.35, 0.5, 0.7)
    amplifying_radii: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0)
    # A start of the target-carrying search finds a trigger only after a slow climb, at one radius on one
    # model and another on the next, so it has more starts than the gain probes', a larger step and more
    # steps (benchmarks/RESULTS.md, "The target-carrying search", "How the target-carrying search climbs").
    carrying_radii: tuple[float, ...] = (0.25, 0.35, 0.5)
    carrying_restarts: int = 6
    carrying_steps: int = 150
    carrying_learning_rate: float = 0.1
    restarts: int = 3
    steps: int = 120
    batch_size: int = 16
    learning_rate: float = 0.05
    min_anomaly: float = 0.25
    eval_noises: int = 64
    centred: bool = True

    def radii_for(self, probe: Probe) -> tuple[float, ...]:
        """The radii ``probe``'s candidates are searched at."""
        if probe.carrying:
            return self.carrying_radii
        if probe.amplifying:
            return self.amplifying_radii
        return self.held_radii if len(probe.points) > 1 else self.radii


@dataclass
class Candidates:
    """The search's result: one row per candidate, ordered probe-major, then radius, then restart."""

    directions: torch.Tensor  # [N, C, H, W], unit per-pixel RMS
    # [N], on held-out noises: the worst of the probe's timesteps (_ProbeBatch.mismatch); for a
    # target-carrying search, 1 minus the energy one image explains (_CarryingBatch.energy)
    losses: torch.Tensor
    radii: torch.Tensor  # [N], the RMS each candidate was searched at
    probe_index: torch.Tensor  # [N], which probe each candidate answers


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (x.dim() - 1)))


def _without_channel_mean(x: torch.Tensor) -> torch.Tensor:
    """``x`` less its per-channel mean, a global colour (or brightness) shift."""
    return x - x.mean(dim=(-2, -1), keepdim=True)


def _orthogonal(target: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """``target`` without its component along ``direction``, per candidate."""
    flat = direction.flatten(1)
    along = (target.flatten(1) * flat).sum(1, keepdim=True) / flat.pow(2).sum(1, keepdim=True)
    return target - (along * flat).view_as(target)


def _mean_responses(unet: CountingUNet, noisy: list[torch.Tensor], shifts: list[torch.Tensor],
                    timesteps: list[int]) -> list[torch.Tensor]:
    """Per row, each candidate's mean change of the UNet's answer when its shift is added to the row's noisy inputs.

    Row ``r`` holds the noisy inputs ``noisy[r]`` ``[B, C, H, W]`` at ``timesteps[r]`` and the candidates' shifts
    ``shifts[r]`` ``[N, C, H, W]``; its result is ``[N, C, H, W]``. All rows go through the UNet in one batch, the
    unshifted inputs without gradient.
    """
    device = noisy[0].device
    with torch.no_grad():
        plain = unet(torch.cat(noisy), torch.cat([torch.full((len(part),), timestep, device=device)
                                                 for part, timestep in zip(noisy, timesteps)])).sample
    shifted = [(part.unsqueeze(0) + shift.unsqueeze(1)).flatten(0, 1) for part, shift in zip(noisy, shifts)]
    answers = unet(torch.cat(shifted), torch.cat([torch.full((len(inputs),), timestep, device=device)
                                                  for inputs, timestep in zip(shifted, timesteps)])).sample
    return [(answer.view(len(shift), *baseline.shape) - baseline).mean(1)
            for answer, baseline, shift in zip(answers.split([len(inputs) for inputs in shifted]),
                                                plain.split([len(part) for part in noisy]), shifts)]


class _ProbeBatch:
    """Evaluates, for every candidate, how far its mean response is from its probe's gains.

    Each (probe, timestep) pair is one row: every candidate of the probe enters it as its shift at the
    probe's own timestep, rescaled by ``s_t`` to that row's timestep, as a trained-in trigger would.
    A backdoor answers its trigger with ``c_t r`` minus ``sqrt(ab_t) / sigma_t`` times the target it was
    trained to make (less the model's mean clean estimate): the probe's input carries no target, the
    poisoned training inputs did. So each candidate of a probe held at several timesteps (the ODE probe,
    the second look's ancestral ones; at the noisiest step alone the target weighs nothing) also has a
    target term ``v``, shared by its timesteps and kept orthogonal to the candidate (along it, a free
    ``v`` would let a model that takes shifts for noise match any gain).
    """

    def __init__(self, unet: CountingUNet, alphas_cumprod: torch.Tensor, probes: list[Probe], config: InversionConfig):
        device = next(unet.parameters()).device
        self.unet = unet
        self.centred = config.centred
        self.steps, self.learning_rate = config.steps, config.learning_rate
        radii = [config.radii_for(probe) for probe in probes]
        counts = [len(probe_radii) * config.restarts for probe_radii in radii]
        starts = [sum(counts[:index]) for index in range(len(probes))]
        self.slices = [slice(start, start + count) for start, count in zip(starts, counts)]
        self.radii = torch.tensor([radius for probe_radii in radii for radius in probe_radii],
                                  device=device).repeat_interleave(config.restarts)
        self.probe_index = torch.arange(len(probes), device=device).repeat_interleave(torch.tensor(counts, device=device))
        self.rows = [(index, position, len(probe.points), point)
                     for index, probe in enumerate(probes) for position, point in enumerate(probe.points)]
        self.rescale = [point.trigger_scale / probes[index].trigger_scale for index, _, _, point in self.rows]
        alphas_cumprod = alphas_cumprod.to(device)
        self.sigma = (1.0 - alphas_cumprod).sqrt()
        self.target_weight = [float(alphas_cumprod[point.timestep].sqrt() / self.sigma[point.timestep])
                              if len(probes[index].points) > 1 else 0.0 for index, _, _, point in self.rows]
        self.points_per_row = torch.tensor([points for _, _, points, _ in self.rows], device=device).view(-1, 1)

    def mismatch(self, direction: torch.Tensor, noise: torch.Tensor, target: torch.Tensor,
                 spread: bool = False) -> torch.Tensor:
        """Mismatch per row and candidate, ``[R, N]`` (0 outside the candidate's probe), on the noises.

        The squared distance of the mean response from the gain's (with the target term), relative to
        the response of a model that takes the shift for noise, divided by ``(gain - 1) ** 2``, what such a
        model leaves: 0 is a perfect match, 1 the take-it-for-noise level. With ``spread``, a
        probe's noises are shared out between its timesteps instead of each timestep seeing all of them.
        """
        if self.centred:
            direction = _without_channel_mean(direction)
        unit = direction / _rms(direction) * self.radii.view(-1, 1, 1, 1)
        target = _orthogonal(target, direction)
        noisy, shifts = [], []
        for (index, position, points, point), rescale in zip(self.rows, self.rescale):
            part = noise.tensor_split(points)[position] if spread else noise
            noisy.append(self.sigma[point.timestep] * part)
            shifts.append(unit[self.slices[index]] * rescale)
        responses = _mean_responses(self.unet, noisy, shifts, [point.timestep for _, _, _, point in self.rows])
        placed = torch.zeros(len(self.rows), len(direction), device=noise.device)
        for row, response in enumerate(responses):
            index, _, _, point = self.rows[row]
            expected = shifts[row] / self.sigma[point.timestep]
            error = response - point.gain * expected + self.target_weight[row] * target[self.slices[index]]
            relative = error.flatten(1).pow(2).sum(1) / expected.flatten(1).pow(2).sum(1)
            placed[row, self.slices[index]] = relative / (point.gain - 1.0) ** 2
        return placed

    def fitted(self, count: int, shape: tuple[int, ...], device: torch.device) -> list[torch.Tensor]:
        """What the search fits alongside the candidates: their target terms, from 0."""
        return [torch.zeros((count, *shape), device=device, requires_grad=True)]

    def objective(self, direction: torch.Tensor, noise: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """What the search minimises: each candidate's mismatch averaged over its probe's rows, noises shared out."""
        return (self.mismatch(direction, noise, target, spread=True) / self.points_per_row).sum()

    def losses(self, direction: torch.Tensor, noise: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Each candidate's mismatch at the worst of its probe's timesteps, every timestep on all of ``noise``."""
        return self.mismatch(direction, noise, target).amax(0)


class _CarryingBatch:
    """Evaluates, for every candidate, how much of its answer one image explains at all of a probe's timesteps.

    A backdoor answers its trigger with the target it was trained to make, ``sqrt(ab_t)`` times the
    target at each timestep, whatever gain it learned along the trigger; a clean model's answer to a
    shift is mostly along the shift. Per timestep, the answer's part orthogonal to the shift (``sigma_t``
    times the noise-prediction change, per unit shift) is fitted by one image shared by the timesteps
    and weighted by ``sqrt(ab_t)``; a candidate's energy is what that fit explains, averaged over the
    timesteps. Candidates keep their per-channel mean while searched, the search and its energy floor
    were measured so; with ``centred`` they are returned without it (``InversionConfig``).
    """

    def __init__(self, unet: CountingUNet, alphas_cumprod: torch.Tensor, probe: Probe, config: InversionConfig):
        device = next(unet.parameters()).device
        self.unet = unet
        self.centred = config.centred
        self.steps, self.learning_rate = config.carrying_steps, config.carrying_learning_rate
        self.points = probe.points
        self.radii = torch.tensor(config.carrying_radii, device=device).repeat_interleave(config.carrying_restarts)
        self.probe_index = torch.zeros(len(self.radii), dtype=torch.long, device=device)
        self.rescale = [point.trigger_scale / probe.trigger_scale for point in probe.points]
        alphas_cumprod = alphas_cumprod.to(device)
        self.sigma = [float((1.0 - alphas_cumprod[point.timestep]).sqrt()) for point in probe.points]
        self.signal = [float(alphas_cumprod[point.timestep].sqrt()) for point in probe.points]

    def energy(self, direction: torch.Tensor, noise: torch.Tensor, spread: bool = False) -> torch.Tensor:
        """Each candidate's explained energy, ``[N]``, on the noises (shared out between timesteps with ``spread``)."""
        return self.carried(direction, noise, spread)[0]

    def carried(self, direction: torch.Tensor, noise: torch.Tensor,
                spread: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Each candidate's explained energy, ``[N]``, and the image its answer carries, ``[N, C*H*W]``
        (for a backdoor's trigger, close to its centred target)."""
        unit = direction / _rms(direction) * self.radii.view(-1, 1, 1, 1)
        parts = noise.tensor_split(len(self.points)) if spread else [noise] * len(self.points)
        noisy = [sigma * part for sigma, part in zip(self.sigma, parts)]
        shifts = [unit * rescale for rescale in self.rescale]
        responses = _mean_responses(self.unet, noisy, shifts, [point.timestep for point in self.points])
        rests, weights = [], []
        for response, shift, sigma, signal in zip(responses, shifts, self.sigma, self.signal):
            response, shift = sigma * response.flatten(1), shift.flatten(1)
            size = shift.pow(2).sum(1, keepdim=True)
            rests.append((response - (response * shift).sum(1, keepdim=True) / size * shift) / size.sqrt())
            weights.append(signal / size.sqrt())
        rest, weight = torch.stack(rests), torch.stack(weights)
        image = -(weight * rest).sum(0) / weight.pow(2).sum(0)
        left = (rest + weight * image).pow(2).sum(2)
        return (rest.pow(2).sum(2) - left).mean(0), image

    def fitted(self, count: int, shape: tuple[int, ...], device: torch.device) -> list[torch.Tensor]:
        """Nothing is fitted alongside the candidates: the energy fits its image in closed form."""
        return []

    def objective(self, direction: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the search minimises: minus the candidates' energy, noises shared out between timesteps."""
        return -self.energy(direction, noise, spread=True).sum()

    def losses(self, direction: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """1 minus each candidate's energy, every timestep on all of ``noise``."""
        return 1.0 - self.energy(direction, noise)


def invert_directions(
    unet: CountingUNet,
    shape: tuple[int, int, int],
    alphas_cumprod: torch.Tensor,
    probes: list[Probe],
    config: InversionConfig,
    generator: torch.Generator,
    progress: ProgressCallback = no_progress,
) -> Candidates:
    """Search candidate trigger directions for every probe: the gain probes together, then each target-carrying one.

    The gain search minimises each candidate's mismatch averaged over its probe's timesteps; the returned
    losses are the worst timestep's, measured afresh on ``config.eval_noises`` noises the search never saw.
    """
    gain = [index for index, probe in enumerate(probes) if not probe.carrying]
    parts = []
    if gain:
        parts.append((gain, _search(_ProbeBatch(unet, alphas_cumprod, [probes[i] for i in gain], config),
                                    unet, shape, config, generator, progress, "inversion")))
    for index, probe in enumerate(probes):
        if probe.carrying:
            parts.append(([index], _search(_CarryingBatch(unet, alphas_cumprod, probe, config),
                                           unet, shape, config, generator, progress, "target-carrying search")))
    device = next(unet.parameters()).device
    return Candidates(
        torch.cat([found.directions for _, found in parts]),
        torch.cat([found.losses for _, found in parts]),
        torch.cat([found.radii for _, found in parts]),
        torch.cat([torch.tensor(indices, device=device)[found.probe_index] for indices, found in parts]),
    )


def _search(
    batch: _ProbeBatch | _CarryingBatch,
    unet: CountingUNet,
    shape: tuple[int, int, int],
    config: InversionConfig,
    generator: torch.Generator,
    progress: ProgressCallback,
    stage: str,
) -> Candidates:
    """Adam on ``batch``'s objective from random starts (its steps and step size), fresh noise every step; losses on
    held-out noises."""
    device = next(unet.parameters()).device
    count = len(batch.radii)
    direction = torch.randn((count, *shape), generator=generator).to(device).requires_grad_(True)
    fitted = batch.fitted(count, shape, device)
    optimizer = torch.optim.Adam([direction, *fitted], lr=batch.learning_rate)
    for step in range(batch.steps):
        noise = torch.randn((config.batch_size, *shape), generator=generator).to(device)
        loss = batch.objective(direction, noise, *fitted)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress(stage, step + 1, batch.steps)
    with torch.no_grad():
        held_out = torch.randn((config.eval_noises, *shape), generator=generator).to(device)
        losses = batch.losses(direction, held_out, *fitted)
        if batch.centred:
            direction = _without_channel_mean(direction)
        direction = direction / _rms(direction)
    return Candidates(direction.detach(), losses, batch.radii, batch.probe_index)
