"""Gradio 3/4 idioms A1111 extensions use, mapped onto gradio 6 (installed with the A1111 layer).

- `gr.Box()` (gone since gradio 4): a gr.Group.
- `component.style(...)` (gone since gradio 4): ignored, the component returned (A1111 used it for
  looks only: full_width, grid, height …).
- `event(..., _js="…")` and `.then(..., _js="…")` (renamed `js` in gradio 4): passed on as `js`.

Each only adds a name gradio 6 no longer has or accepts an argument our code never passes, so the rest
of the program is unaffected. The constructors of components and layout blocks also tell ui_hooks
(A1111's before_component / after_component), which does nothing unless an App is building its page
for A1111 extensions. Idioms beyond these (removed constructor arguments such as
`gr.Image(source=…, tool=…)`) fail in the extension's ui(), which is isolated and reported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from gradio.blocks import Block, BlockContext
from gradio.components import Component
from gradio.events import Dependency

from webui.compat.a1111 import ui_hooks

_MARK = "_webui_a1111_shim"


def install() -> None:
    if getattr(gr, _MARK, False):
        return
    if not hasattr(gr, "Box"):
        gr.Box = _box  # type: ignore[attr-defined]
    if not hasattr(Block, "style"):
        Block.style = _style  # type: ignore[attr-defined]
    for cls in _subclasses(Block):
        for event in getattr(cls, "EVENTS", ()):
            name = event if isinstance(event, str) else getattr(event, "event_name", None)
            listener = cls.__dict__.get(name) if name else None
            if callable(listener) and not getattr(listener, _MARK, False):
                setattr(cls, name, _accepting_js(listener))
    Dependency.__init__ = _chaining_js(Dependency.__init__)  # type: ignore[method-assign]
    for cls in (Component, BlockContext):
        cls.__init__ = _watched(cls.__init__)  # type: ignore[method-assign]
    setattr(gr, _MARK, True)


def _box(*args: Any, **kwargs: Any) -> BlockContext:
    """gradio 3's gr.Box: a gr.Group (a panel around its children)."""
    return gr.Group(*args, **kwargs)


def _style(self: Block, *args: Any, **kwargs: Any) -> Block:
    return self


def _accepting_js(listener: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(listener)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "_js" in kwargs:
            kwargs["js"] = kwargs.pop("_js")
        return listener(*args, **kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper


def _chaining_js(init: Callable[..., None]) -> Callable[..., None]:
    """An event's .then / .success / .failure accept `_js` too."""

    @functools.wraps(init)
    def wrapper(self: Dependency, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for name in ("then", "success", "failure"):
            setattr(self, name, _accepting_js(getattr(self, name)))

    return wrapper


def _watched(init: Callable[..., None]) -> Callable[..., None]:
    """A constructor that shows the block to ui_hooks before and after it is built (as A1111's does)."""

    @functools.wraps(init)
    def wrapper(self: Block, *args: Any, **kwargs: Any) -> None:
        ui_hooks.before(self, kwargs)
        init(self, *args, **kwargs)
        ui_hooks.after(self, kwargs)

    return wrapper


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
