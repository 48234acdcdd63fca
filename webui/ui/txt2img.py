"""The txt2img tab: the shared generation layout with no input image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from webui.ui.generation import GenerationTab, SectionFactory, build_generation_tab

if TYPE_CHECKING:
    from webui.services.container import Services


def build_tab(services: Services, sections: Sequence[SectionFactory] = ()) -> GenerationTab:
    return build_generation_tab(services, "txt2img", sections=sections)
