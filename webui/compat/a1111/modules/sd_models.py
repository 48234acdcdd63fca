"""modules.sd_models: the little of A1111's model loader that extensions read without reaching into the
model (the current checkpoint). Loading checkpoints goes through our Settings/API, not through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from webui.compat.a1111.modules import _app
from webui.compat.a1111.views import SdModelView

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins


class _ModelData:
    def __init__(self, plugins: Plugins) -> None:
        self._plugins = plugins

    def get_sd_model(self) -> Any:
        loaded = self._plugins._last_model
        return SdModelView(loaded) if loaded is not None else None


def _checkpoint_info(plugins: Plugins) -> Any:
    model = _ModelData(plugins).get_sd_model()
    return model.sd_checkpoint_info if model is not None else None


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "model_data": _ModelData,
    "checkpoints_list": lambda plugins: {info.title: info} if (info := _checkpoint_info(plugins)) else {},
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)
