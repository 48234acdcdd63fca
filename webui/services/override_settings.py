"""A1111's "Override settings": options an infotext carries (RNG, ENSD, Eta, …) are settings, not
generation parameters. On paste they are offered as "Key: value" entries, each for the next job only.

The keys are A1111's (its options' `infotext` names and `infotext_to_setting_name_mapping`), for the
options this program has; Clip skip, Tiling and the checkpoint are parameters here and paste as such.
As in A1111, an entry is offered only when it differs from the current setting, and an infotext without
`RNG` was made with the default GPU source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webui.core.errors import UserError
from webui.services.option_table import Option
from webui.services.settings import Settings

# (infotext key, option name), in A1111's order
INFOTEXT_OPTIONS: tuple[tuple[str, str], ...] = (
    ("ENSD", "eta_noise_seed_delta"),
    ("Eta", "eta_ancestral"),
    ("Eta DDIM", "eta_ddim"),
    ("RNG", "randn_source"),
    ("VAE", "sd_vae"),
)
ABSENT_MEANS = {"RNG": "GPU"}  # A1111's parser fills this in for an infotext without the key


def option_value(option: Option, text: str) -> Any:
    """An infotext value as the option's type (A1111's cast_value), validated against the option."""
    text = text.strip()
    value: Any = text
    try:
        if option.type is bool:
            value = text.lower() == "true"
        elif option.type is int:
            value = int(float(text))
        elif option.type is float:
            value = float(text)
    except ValueError as error:
        raise UserError(f"{option.name}: {text!r} is not a number") from error
    return option.validate(value)


@dataclass(frozen=True)
class Offered:
    """What a pasted infotext offers: "Key: value" entries, and the keys that could not be used."""

    entries: list[str]
    warnings: list[str]


class OverrideSettings:
    """Infotext fields → override entries (on paste) → options by name (on Generate)."""

    def __init__(self, settings: Settings, check: Callable[[Mapping[str, Any]], None]) -> None:
        self.settings = settings
        self.check = check  # raises for an option value the models cannot use (an unknown VAE)

    def offered(self, fields: Mapping[str, str]) -> Offered:
        entries, warnings = [], []
        for key, name in INFOTEXT_OPTIONS:
            text = fields.get(key, ABSENT_MEANS.get(key))
            if text is None:
                continue
            try:
                value = option_value(self.settings.option(name), text)
                self.check({name: value})
            except UserError as error:
                warnings.append(f"{key} not pasted: {error}")
                continue
            if value != self.settings.get(name):
                entries.append(f"{key}: {text.strip()}")
        return Offered(entries, warnings)

    def options(self, entries: Sequence[str]) -> dict[str, Any]:
        """The options the chosen entries set (A1111's create_override_settings_dict)."""
        names = dict(INFOTEXT_OPTIONS)
        chosen: dict[str, Any] = {}
        for entry in entries:
            key, _, text = entry.partition(":")
            name = names.get(key.strip())
            if name is None:
                raise UserError(f"Override settings: unknown entry {entry!r}")
            chosen[name] = option_value(self.settings.option(name), text)
        return chosen
