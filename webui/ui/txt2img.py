"""The txt2img tab: the shared generation layout with no input image, the "Hires. fix" and "Refiner"
sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from webui.ui.generation import GenerationTab, SectionFactory, build_generation_tab
from webui.ui.hires import HiresSection
from webui.ui.refiner import RefinerSection

if TYPE_CHECKING:
    from webui.services.container import Services


def build_tab(services: Services, sections: Sequence[SectionFactory] = ()) -> GenerationTab:
    hires = HiresSection(services)
    refiner = RefinerSection(services, "txt2img")
    tab = build_generation_tab(
        services, "txt2img", sections=[lambda name: hires, lambda name: refiner, *sections]
    )
    hires.connect(tab.controls)
    return tab
