"""Import gradio without its type-stub writer.

Each gradio component class, as it is defined, has gradio regenerate its `.pyi` stub in site-packages
(`gradio.component_meta.create_or_modify_pyi`: read the source, parse it, render a template, compare):
a developer aid that is about half of `import gradio`'s CPU time (measured here: 2.1 s of 4.2 s), paid
on every start before the page can be served. The stubs are not used at run time, so the writer is
replaced by a no-op as its module loads. Nothing else of gradio changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

STUB_MODULE = "gradio.component_meta"
STUB_WRITER = "create_or_modify_pyi"


def _no_stub(*args: object, **kwargs: object) -> None:
    """gradio's stub writer, skipped (see the module's docstring)."""


class _SkipStubWriter(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as the other finders do, and empties its stub writer once loaded."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != STUB_MODULE:
            return None
        sys.meta_path.remove(self)  # once: the module loads once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if spec is None or not isinstance(loader, importlib.machinery.SourceFileLoader):
            return spec
        load = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            if hasattr(module, STUB_WRITER):
                setattr(module, STUB_WRITER, _no_stub)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_gradio_stub_writer() -> None:
    """Before gradio is first imported: define its components without rewriting their stubs."""
    if STUB_MODULE in sys.modules or any(isinstance(f, _SkipStubWriter) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _SkipStubWriter())
