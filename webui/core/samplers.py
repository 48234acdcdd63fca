"""A1111 sampler and schedule-type names ⇄ a diffusers scheduler class name plus config overrides.

Pure data: no diffusers import here. `webui.engine.sampling.schedulers.make_scheduler` turns a `SamplerChoice`
into a scheduler and checks the class really accepts the overrides.

Names, aliases, order and default schedule types follow A1111 v1.10 (`/sdapi/v1/samplers`,
`/sdapi/v1/schedulers`). Samplers diffusers cannot express (DPM fast, DPM adaptive, Restart,
DDIM CFG++) are left out rather than approximated silently. Every schedule type A1111 lists runs with
every sampler, as in A1111:

- Where the sampler's diffusers class has a config for the schedule type (Karras, Exponential, Beta,
  timestep spacings), that config is used.
- Otherwise (Polyexponential, KL Optimal, Align Your Steps, and e.g. Karras with Euler a) the engine
  computes the sigmas as A1111 does (webui.engine.sampling.sigmas) and hands them to the scheduler:
  `SamplerChoice.sigmas` names the schedule type then.
- DDIM, PLMS and UniPC are A1111's "timesteps" samplers, which ignore the schedule type: a type their
  diffusers class cannot express runs their Automatic schedule, and the infotext keeps the type, as
  A1111's does.

Where diffusers differs from A1111 it is said below:

- "DPM++ 2S a": diffusers has no ancestral single-step DPM-Solver++; the engine builds k-diffusion's on
  diffusers' DPM2 a (`DPMSolver2SAncestralScheduler`, engine.sampling.dpmpp_2s_ancestral).
- SDE samplers draw their noise differently from A1111's Brownian tree (except "DPM++ SDE").
- "Automatic" means what A1111 does: the sampler's own default schedule type (Karras or Exponential
  for the DPM++ family, as A1111 names it in the infotext), otherwise the spacing A1111's own
  implementation of that sampler uses (k-diffusion samplers: uniform in timesteps; DDIM and PLMS:
  A1111's "DDIM" discretisation; UniPC: its "time uniform" spacing). It never depends on whatever
  spacing the model's scheduler config happens to carry, so a choice cannot leak into the next one.
- Karras, Exponential and Beta span the model's full sigma range as A1111 does (linspace spacing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from webui.core.errors import InvalidParameter

AUTOMATIC = "Automatic"

_SPACING_KEYS = frozenset({"timestep_spacing", "steps_offset"})
_SIGMA_KEYS = frozenset({"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"})

# Which schedule-type config keys each diffusers scheduler honours. LCMScheduler accepts
# timestep_spacing but its set_timesteps ignores it, so it honours none. tests/engine/sampling/
# test_schedulers.py checks this against diffusers.
SCHEDULE_KEYS_BY_CLASS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "EulerAncestralDiscreteScheduler": _SPACING_KEYS,
        "EulerDiscreteScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "LMSDiscreteScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "HeunDiscreteScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "KDPM2DiscreteScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "KDPM2AncestralDiscreteScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "DPMSolver2SAncestralScheduler": _SPACING_KEYS | _SIGMA_KEYS,  # the engine's, on DPM2 a's
        "DPMSolverMultistepScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "DPMSolverSDEScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "DDIMScheduler": _SPACING_KEYS,
        "PNDMScheduler": _SPACING_KEYS,
        "UniPCMultistepScheduler": _SPACING_KEYS | _SIGMA_KEYS,
        "LCMScheduler": frozenset(),
    }
)


@dataclass(frozen=True)
class ScheduleType:
    """One entry of A1111's "Schedule type" list and the diffusers config that expresses it."""

    name: str  # A1111's id, e.g. "sgm_uniform"
    label: str  # what users see and the infotext says, e.g. "SGM Uniform"
    aliases: tuple[str, ...]
    config: Mapping[str, Any]
    # Keys the scheduler class must honour to express this schedule type by config; None: diffusers has
    # no config for it, its sigmas are always computed.
    requires: frozenset[str] | None

    def names(self) -> tuple[str, ...]:
        return (self.label, self.name, *self.aliases)


def _schedule(
    name: str, label: str, config: dict[str, Any], requires: set[str] | None, *aliases: str
) -> ScheduleType:
    keys = None if requires is None else frozenset(requires)
    return ScheduleType(name, label, aliases, MappingProxyType(config), keys)


def _sigmas(flag: str) -> tuple[dict[str, Any], set[str]]:
    # Linspace timesteps make the sigma-shaped schedules start from the model's sigma_max, as A1111.
    return {flag: True, "timestep_spacing": "linspace"}, {flag}


SCHEDULE_TYPES: tuple[ScheduleType, ...] = (
    _schedule("automatic", AUTOMATIC, {}, set()),
    _schedule("uniform", "Uniform", {"timestep_spacing": "linspace"}, {"timestep_spacing"}),
    _schedule("karras", "Karras", *_sigmas("use_karras_sigmas")),
    _schedule("exponential", "Exponential", *_sigmas("use_exponential_sigmas")),
    _schedule("polyexponential", "Polyexponential", {}, None),
    _schedule(
        "sgm_uniform", "SGM Uniform", {"timestep_spacing": "trailing"}, {"timestep_spacing"}, "SGMUniform"
    ),
    _schedule("kl_optimal", "KL Optimal", {}, None),
    _schedule("align_your_steps", "Align Your Steps", {}, None),
    # A1111's Simple takes every n-th model sigma from the top: diffusers' trailing spacing.
    _schedule("simple", "Simple", {"timestep_spacing": "trailing"}, {"timestep_spacing"}),
    # A1111's Normal is linspace in timesteps, like Uniform.
    _schedule("normal", "Normal", {"timestep_spacing": "linspace"}, {"timestep_spacing"}),
    # A1111's DDIM discretisation: every n-th timestep counted from 1 = leading spacing, offset 1.
    _schedule("ddim", "DDIM", {"timestep_spacing": "leading", "steps_offset": 1}, {"timestep_spacing"}),
    _schedule("beta", "Beta", *_sigmas("use_beta_sigmas")),
)


@dataclass(frozen=True)
class Sampler:
    """One entry of A1111's "Sampling method" list and the diffusers scheduler that runs it."""

    name: str
    aliases: tuple[str, ...]
    class_name: str
    config: Mapping[str, Any]
    # A1111's default schedule type: "Automatic" becomes it, and the infotext names it.
    default_schedule: str | None
    # Otherwise what "Automatic" means: the schedule type matching A1111's own spacing for this sampler
    # (None: the scheduler keeps its own, e.g. LCM). The infotext then says "Automatic", as A1111.
    automatic_spacing: str | None
    description: str = ""
    # A1111's "timesteps" samplers (DDIM, PLMS, UniPC) ignore the schedule type.
    ignores_schedule: bool = False
    # A1111 computes one sigma more and drops the next-to-last one (DPM2, DPM2 a, DPM++ 3M SDE).
    discard_penultimate: bool = False

    @property
    def options(self) -> dict[str, str]:
        """The sampler's options as A1111 names them: its default schedule type, if it has one."""
        return {"scheduler": self.default_schedule} if self.default_schedule else {}

    @property
    def schedule_types(self) -> tuple[str, ...]:
        """Labels of the schedule types this sampler can use, "Automatic" first: all of them, as A1111."""
        return tuple(s.label for s in SCHEDULE_TYPES)


def _sampler(
    name: str,
    aliases: tuple[str, ...],
    class_name: str,
    config: dict[str, Any] | None = None,
    *,
    default: str | None = None,
    automatic: str | None = "uniform",
    description: str = "",
    ignores_schedule: bool = False,
    discard_penultimate: bool = False,
) -> Sampler:
    frozen = MappingProxyType(config or {})
    return Sampler(
        name,
        aliases,
        class_name,
        frozen,
        default,
        automatic,
        description,
        ignores_schedule,
        discard_penultimate,
    )


def _dpmpp(algorithm: str, order: int, solver_type: str = "midpoint") -> dict[str, Any]:
    return {"algorithm_type": algorithm, "solver_order": order, "solver_type": solver_type}


SAMPLERS: tuple[Sampler, ...] = (
    _sampler(
        "DPM++ 2M", ("k_dpmpp_2m",), "DPMSolverMultistepScheduler", _dpmpp("dpmsolver++", 2), default="karras"
    ),
    _sampler("DPM++ SDE", ("k_dpmpp_sde",), "DPMSolverSDEScheduler", default="karras"),
    _sampler(
        "DPM++ 2M SDE",
        ("k_dpmpp_2m_sde",),
        "DPMSolverMultistepScheduler",
        _dpmpp("sde-dpmsolver++", 2),
        default="exponential",
        description="Gaussian noise each step instead of A1111's Brownian tree.",
    ),
    _sampler(
        "DPM++ 2M SDE Heun",
        ("k_dpmpp_2m_sde_heun",),
        "DPMSolverMultistepScheduler",
        _dpmpp("sde-dpmsolver++", 2, "heun"),
        default="exponential",
        description="Gaussian noise each step instead of A1111's Brownian tree.",
    ),
    _sampler(
        "DPM++ 2S a",
        ("k_dpmpp_2s_a",),
        "DPMSolver2SAncestralScheduler",
        default="karras",
    ),
    _sampler(
        "DPM++ 3M SDE",
        ("k_dpmpp_3m_sde",),
        "DPMSolverMultistepScheduler",
        _dpmpp("sde-dpmsolver++", 3),
        default="exponential",
        description="Gaussian noise each step instead of A1111's Brownian tree.",
        discard_penultimate=True,
    ),
    _sampler("Euler a", ("k_euler_a", "k_euler_ancestral"), "EulerAncestralDiscreteScheduler"),
    _sampler("Euler", ("k_euler",), "EulerDiscreteScheduler"),
    _sampler("LMS", ("k_lms",), "LMSDiscreteScheduler"),
    _sampler("Heun", ("k_heun",), "HeunDiscreteScheduler"),
    _sampler("DPM2", ("k_dpm_2",), "KDPM2DiscreteScheduler", default="karras", discard_penultimate=True),
    _sampler(
        "DPM2 a",
        ("k_dpm_2_a",),
        "KDPM2AncestralDiscreteScheduler",
        default="karras",
        discard_penultimate=True,
    ),
    _sampler("DDIM", ("ddim",), "DDIMScheduler", automatic="ddim", ignores_schedule=True),
    _sampler(
        "PLMS", ("plms",), "PNDMScheduler", {"skip_prk_steps": True}, automatic="ddim", ignores_schedule=True
    ),
    _sampler("UniPC", ("unipc",), "UniPCMultistepScheduler", automatic="sgm_uniform", ignores_schedule=True),
    _sampler("LCM", ("k_lcm",), "LCMScheduler", automatic=None),
)

# Config keys a SamplerChoice decides. make_scheduler drops them from the model's scheduler config
# before applying the overrides, so nothing from an earlier choice carries over.
OWNED_CONFIG_KEYS: frozenset[str] = frozenset(
    {key for s in SAMPLERS for key in s.config}
    | {key for t in SCHEDULE_TYPES for key in t.config}
    | _SIGMA_KEYS
)


@dataclass(frozen=True)
class SamplerChoice:
    """A resolved sampler: what to build (class_name + config_overrides) and what to call it."""

    sampler_name: str  # canonical A1111 name, e.g. "DPM++ 2M"
    scheduler: str  # schedule type in effect, "Automatic" resolved as A1111 writes it in the infotext
    class_name: str  # diffusers scheduler class, e.g. "DPMSolverMultistepScheduler"
    config_overrides: dict[str, Any] = field(hash=False)  # a fresh dict per call; treat as read-only
    # The schedule type (A1111 id, e.g. "kl_optimal") whose sigmas the engine computes as A1111 does and
    # hands to the scheduler, where its class has no config for it; None: the config says it all.
    sigmas: str | None = None
    discard_penultimate: bool = False  # of those computed sigmas, as A1111 for this sampler


def _find_sampler(name: str) -> Sampler | None:
    wanted = name.strip().lower()
    for sampler in SAMPLERS:
        if wanted == sampler.name.lower() or wanted in (alias.lower() for alias in sampler.aliases):
            return sampler
    return None


def _find_schedule(name: str) -> ScheduleType | None:
    wanted = name.strip().lower()
    for schedule in SCHEDULE_TYPES:
        if wanted in (option.lower() for option in schedule.names()):
            return schedule
    return None


def _unknown_sampler(name: str) -> InvalidParameter:
    valid = ", ".join(s.name for s in SAMPLERS)
    return InvalidParameter(f"Unknown sampler {name!r}. Valid samplers: {valid}")


def _unknown_schedule(name: str) -> InvalidParameter:
    valid = ", ".join(s.label for s in SCHEDULE_TYPES)
    return InvalidParameter(f"Unknown schedule type {name!r}. Valid schedule types: {valid}")


def _split(name: str) -> tuple[Sampler, ScheduleType | None]:
    """Sampler and the schedule type named by a suffix ("DPM++ 2M Karras"), if any."""
    sampler = _find_sampler(name)
    if sampler is not None:
        return sampler, None
    for schedule in SCHEDULE_TYPES:
        for option in schedule.names():
            suffix = " " + option.lower()
            if name.strip().lower().endswith(suffix):
                base = _find_sampler(name.strip()[: -len(suffix)])
                if base is not None:
                    return base, schedule
    raise _unknown_sampler(name)


def _normalize(name: str, scheduler: str) -> tuple[Sampler, ScheduleType]:
    sampler, suffix = _split(name)
    schedule = suffix or _find_schedule(scheduler or AUTOMATIC)
    if schedule is None:
        raise _unknown_schedule(scheduler)
    if schedule.name == sampler.default_schedule:
        return sampler, SCHEDULE_TYPES[0]
    return sampler, schedule


def split_sampler_name(name: str, scheduler: str = AUTOMATIC) -> tuple[str, str]:
    """Canonical (sampler name, schedule-type label), as A1111 reads a sampler from an infotext.

    Old combined names are split ("DPM++ SDE Karras" → Karras), a suffix wins over `scheduler`, aliases
    and any letter case are accepted, and a schedule type equal to the sampler's default becomes
    "Automatic" (A1111 does the same, so a pasted "DPM++ 2M Karras" selects DPM++ 2M + Automatic).
    """
    sampler, schedule = _normalize(name, scheduler)
    return sampler.name, schedule.label


def find_sampler(name: str) -> Sampler:
    """The sampler by name or alias (any letter case); InvalidParameter naming the valid ones otherwise."""
    sampler = _find_sampler(name)
    if sampler is None:
        raise _unknown_sampler(name)
    return sampler


def _by_name(name: str) -> ScheduleType:
    return next(s for s in SCHEDULE_TYPES if s.name == name)


def resolve(sampler_name: str, scheduler: str = AUTOMATIC) -> SamplerChoice:
    """The diffusers class and config overrides for an A1111 sampler + schedule type.

    Raises InvalidParameter for an unknown sampler or schedule type. Every pair of known names runs:
    by config where the class can express the schedule type, else by sigmas the engine computes
    (`SamplerChoice.sigmas`), else (A1111's timesteps samplers) with the sampler's Automatic schedule.
    """
    sampler, schedule = _normalize(sampler_name, scheduler)
    if schedule.label == AUTOMATIC and sampler.default_schedule:
        schedule = _by_name(sampler.default_schedule)
    keys = SCHEDULE_KEYS_BY_CLASS[sampler.class_name]
    in_effect, computed = schedule, None
    if schedule.requires is None or not schedule.requires <= keys:
        in_effect = SCHEDULE_TYPES[0]
        computed = None if sampler.ignores_schedule else schedule.name
    if in_effect.label == AUTOMATIC and sampler.automatic_spacing:
        in_effect = _by_name(sampler.automatic_spacing)
    overrides = dict(sampler.config)
    overrides.update((key, value) for key, value in in_effect.config.items() if key in keys)
    discard = sampler.discard_penultimate and computed is not None
    return SamplerChoice(sampler.name, schedule.label, sampler.class_name, overrides, computed, discard)
