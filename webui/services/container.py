"""What the UI and the API are given: the services, built and wired by the App (the composition root)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Generic

from typing_extensions import TypeVar

from webui.core.cmd_args import Paths
from webui.services.controlnet import ControlNetService
from webui.services.extras import ExtrasService
from webui.services.generation import GenerationService
from webui.services.jobs import JobQueue
from webui.services.models import ModelsService
from webui.services.settings import Settings
from webui.services.styles import StyleDatabase
from webui.services.tokens import TokenCounter

# The extensions (webui.plugins.registry.Plugins): a layer above services, so only named here as a type
# parameter; the UI and API, which may import plugins, see it as Services[Plugins].
PluginsT = TypeVar("PluginsT", default=Any)


@dataclass(frozen=True)
class Services(Generic[PluginsT]):
    args: argparse.Namespace  # the command-line flags
    paths: Paths
    settings: Settings
    styles: StyleDatabase
    jobs: JobQueue
    generation: GenerationService
    models: ModelsService
    controlnet: ControlNetService
    tokens: TokenCounter
    plugins: PluginsT
    extras: ExtrasService  # Extras and the model upscalers (extras.catalog: one UpscalerCatalog per app)
