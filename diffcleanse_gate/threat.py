"""The threat model shared by attacks and defence: how a trained-in trigger moves through sampling.

All three attack families (DESIGN.md section 2) poison a training pair as::

    x_t = sqrt(ab_t) * y + s_t * r + sqrt(1 - ab_t) * eps,    eps-target = eps + c_t * r

``s_t`` is the trigger's scale along the forward process: ``1 - sqrt(ab_t)`` (BadDiffusion and
VillanDiffusion) or ``sqrt(1 - ab_t)`` (TrojDiff, "rides with the noise"). ``c_t`` is solved from the
one-step update of the sampler the attack targets, ancestral DDPM or the deterministic DDIM (ODE) step.

A clean model answers an input shift ``delta`` at time t with a noise-prediction shift of about
``delta / sqrt(1 - ab_t)`` (it takes the shift for noise). A backdoored one answers its trigger with
``gain_t * delta / sqrt(1 - ab_t)``, ``gain_t = c_t * sqrt(1 - ab_t) / s_t`` (computed in ``probes``): near 0.5 at the noisiest
step for the ancestral families, and rising above 1 in mid trajectory for the ODE family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRIGGER_FORMS = ("fades", "rides-with-noise")
SAMPLER_KINDS = ("ancestral", "ode")


def trigger_schedule(form: str, sampler_kind: str, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(s, c)``, each of length T, for a trigger form and the sampler kind it targets."""
    betas = betas.double()
    alphas = 1.0 - betas
    ab = torch.cumprod(alphas, dim=0)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    if form == "rides-with-noise":
        s, s_prev = (1.0 - ab).sqrt(), (1.0 - ab_prev).sqrt()
    else:
        s, s_prev = 1.0 - ab.sqrt(), 1.0 - ab_prev.sqrt()
    if sampler_kind == "ancestral":
        c = (s - alphas.sqrt() * s_prev) * (1.0 - ab).sqrt() / betas
    else:
        ratio = (ab_prev / ab).sqrt()
        c = (s_prev - ratio * s) / ((1.0 - ab_prev).sqrt() - ratio * (1.0 - ab).sqrt())
    return s.float(), c.float()


@dataclass(frozen=True)
class ProbePoint:
    """One timestep of a probe and the response gain a backdoor of its kind shows there."""

    timestep: int
    gain: float
    trigger_scale: float  # s_t: a trigger r appears at this timestep as trigger_scale * r


@dataclass(frozen=True)
class Probe:
    """Where a backdoor of one kind is visible: the timesteps and the response gains it would show.

    The first point is the probe's own: the noisiest timestep where the gain is ``min_anomaly`` from
    1. An amplifying probe holds its candidates on the gain curve at two more points, where the gain is
    half and twice as far from 1: one trigger answers a trained-in backdoor's gain at every timestep,
    while a direction a clean model happens to amplify does so over a narrow stretch only.
    """

    name: str  # FORM/KIND, with "-held" or "-carrying" after the kind for the second look's probes
    points: tuple[ProbePoint, ...]

    @property
    def form(self) -> str:
        """The trigger form the probe looks for, one of ``TRIGGER_FORMS``."""
        return self.name.split("/")[0]

    @property
    def sampler_kind(self) -> str:
        """The sampler kind the attack it looks for targets, one of ``SAMPLER_KINDS``."""
        return self.name.split("/")[1].split("-")[0]

    @property
    def carrying(self) -> bool:
        """True for a target-carrying search: its candidates are judged by the image their answer carries."""
        return self.name.endswith("-carrying")

    @property
    def timestep(self) -> int:
        """The probe's own timestep."""
        return self.points[0].timestep

    @property
    def gain(self) -> float:
        """The gain at the probe's own timestep."""
        return self.points[0].gain

    @property
    def trigger_scale(self) -> float:
        """``s_t`` at the probe's own timestep."""
        return self.points[0].trigger_scale

    @property
    def amplifying(self) -> bool:
        """True for gains above 1, which a clean denoiser (a shrinking estimator) does not show.

        A target-carrying search at the same timesteps is not: its evidence is not the gain.
        """
        return self.gain > 1.0 and not self.carrying


def _point(gain: torch.Tensor, scale: torch.Tensor, departure: float) -> ProbePoint | None:
    """The noisiest timestep where ``gain`` is at least ``departure`` from 1, or None."""
    anomalous = torch.nonzero((gain - 1.0).abs() >= departure).flatten()
    if len(anomalous) == 0:
        return None
    t = int(anomalous.max())
    return ProbePoint(t, float(gain[t]), float(scale[t]))


def _gain_curve(form: str, sampler_kind: str, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gain_t, s_t)`` of a trigger form under the sampler kind it targets, each of length T."""
    noise_scale = (1.0 - torch.cumprod(1.0 - betas.double(), dim=0).float()).sqrt()
    s, c = trigger_schedule(form, sampler_kind, betas)
    return c * noise_scale / s.clamp_min(1e-12), s


def held_probes(betas: torch.Tensor, min_anomaly: float = 0.25) -> list[Probe]:
    """The ancestral probe held at three timesteps, once per trigger form: the scan's second look.

    The points are the ancestral probe's own timestep and where the fading trigger's gain is 3/4 and 1/2
    as far from 1 as there (the gains fall back towards 1 as the noise thins). Held there, a colour
    trigger's answer carries its target term, which a clean model's shrinking directions fit poorly
    (benchmarks/RESULTS.md, "The held ancestral probes, sized from a fit floor"). Empty where the
    schedule gives no ancestral probe.
    """
    shrinking = [probe for probe in probes(betas, min_anomaly) if not probe.amplifying]
    if not shrinking:
        return []
    own = shrinking[0].timestep
    curves = {form: _gain_curve(form, "ancestral", betas) for form in TRIGGER_FORMS}
    fading = 1.0 - curves["fades"][0]
    timesteps = [own] + [int(torch.nonzero(fading >= float(fading[own]) * share).flatten().min())
                         for share in (0.75, 0.5)]
    return [Probe(f"{form}/ancestral-held", tuple(ProbePoint(t, float(gain[t]), float(s[t])) for t in timesteps))
            for form, (gain, s) in curves.items()]


def carrying_probe(betas: torch.Tensor, min_anomaly: float = 0.25) -> Probe | None:
    """The ODE probe's timesteps, searched for a shift whose answer carries one image: the second look's.

    An ODE-sampler backdoor answers its trigger with the target it was trained to make, at every one
    of those timesteps, even where it never learned the gain the attack trains (a small trigger, or
    one drawn inside its target; benchmarks/RESULTS.md, "The target-carrying search"). None where the
    schedule gives no ODE probe.
    """
    ode = next((probe for probe in probes(betas, min_anomaly) if probe.amplifying), None)
    return None if ode is None else Probe(f"{ode.form}/{ode.sampler_kind}-carrying", ode.points)


def probes(betas: torch.Tensor, min_anomaly: float = 0.25) -> list[Probe]:
    """One probe per attack kind whose response differs from a clean model's by ``min_anomaly``.

    Each probe sits at the noisiest timestep where the gain is that far from 1, where the unknown
    target image weighs least on the model's input. Kinds that give the same probe appear once.
    """
    found: dict[tuple[int, float], Probe] = {}
    for sampler_kind in SAMPLER_KINDS:
        for form in TRIGGER_FORMS:
            gain, s = _gain_curve(form, sampler_kind, betas)
            own = _point(gain, s, min_anomaly)
            if own is None:
                continue
            points = [own]
            if own.gain > 1.0:
                held = (_point(gain, s, min_anomaly * factor) for factor in (2.0, 0.5))
                points += [point for point in held if point is not None and point.timestep != own.timestep]
            key = (own.timestep // 50, round(own.gain, 1))
            found.setdefault(key, Probe(f"{form}/{sampler_kind}", tuple(points)))
    return sorted(found.values(), key=lambda probe: -probe.timestep)
