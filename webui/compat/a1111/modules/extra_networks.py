"""modules.extra_networks: an ExtraNetwork registered for `<name:…>` prompt tags gets those tags'
params in activate(p, params_list) before the generation (the tags are removed from the prompts), and
deactivate(p) after it (webui/compat/a1111/state.py). Our engine handles <lora:…> itself."""

from __future__ import annotations

import re
from typing import Any

from webui.compat.a1111.modules import _app
from webui.compat.a1111.state import ExtraNetworkParams

__all__ = ["ExtraNetwork", "ExtraNetworkParams", "parse_prompt", "parse_prompts", "register_extra_network"]

_TAG = re.compile(r"<(\w+):([^<>]+)>")


class ExtraNetwork:
    def __init__(self, name: str) -> None:
        self.name = name

    def activate(self, p: Any, params_list: list[ExtraNetworkParams]) -> None:
        """Called with the params of each `<name:…>` tag of the first prompt."""

    def deactivate(self, p: Any) -> None:
        """Called after the generation."""


def register_extra_network(extra_network: ExtraNetwork) -> None:
    _app.compat().register_network(extra_network)


def register_extra_network_alias(extra_network: ExtraNetwork, alias: str) -> None:
    extra_network.name = alias
    _app.compat().register_network(extra_network)


def parse_prompt(prompt: str) -> tuple[str, dict[str, list[ExtraNetworkParams]]]:
    """The prompt without any `<kind:…>` tags, and the tags' params by kind."""
    found: dict[str, list[ExtraNetworkParams]] = {}

    def take(match: re.Match[str]) -> str:
        found.setdefault(match.group(1), []).append(ExtraNetworkParams.parse(match.group(2)))
        return ""

    return _TAG.sub(take, prompt), found


def parse_prompts(prompts: list[str]) -> tuple[list[str], dict[str, list[ExtraNetworkParams]]]:
    cleaned, first = [], None
    for prompt in prompts:
        text, found = parse_prompt(prompt)
        cleaned.append(text)
        first = found if first is None else first
    return cleaned, first or {}
