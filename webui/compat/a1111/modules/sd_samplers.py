"""modules.sd_samplers: A1111's sampler list (names, aliases, options) from webui.core.samplers."""

from __future__ import annotations

from typing import Any, NamedTuple

from webui.core.samplers import SAMPLERS, SCHEDULE_TYPES


class SamplerData(NamedTuple):
    name: str
    constructor: Any
    aliases: list[str]
    options: dict[str, Any]

    def total_steps(self, steps: int) -> int:
        return steps


all_samplers = [SamplerData(s.name, None, list(s.aliases), dict(s.options)) for s in SAMPLERS]
all_samplers_map = {sampler.name: sampler for sampler in all_samplers}
samplers = samplers_for_img2img = all_samplers
samplers_map = {alias.lower(): s.name for s in all_samplers for alias in (s.name, *s.aliases)}
visible_sampler_names = [sampler.name for sampler in all_samplers]
schedulers = [schedule.label for schedule in SCHEDULE_TYPES]


def find_sampler_config(name: str) -> SamplerData | None:
    return all_samplers_map.get(samplers_map.get(str(name).lower(), ""))


def set_samplers() -> None:
    """The list is fixed here."""
