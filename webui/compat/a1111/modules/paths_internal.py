"""modules.paths_internal: the same folders as modules.paths."""

from webui.compat.a1111.modules.paths import VIEWS, extensions_builtin_dir, script_path

__all__ = ["VIEWS", "extensions_builtin_dir", "script_path"]


def __getattr__(name: str) -> object:
    from webui.compat.a1111.modules import _app

    return _app.view(__name__, VIEWS, name)
