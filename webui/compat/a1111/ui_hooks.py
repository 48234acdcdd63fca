"""A1111's component hooks while our page is built: before_ui, and for every gradio component or layout
block made meanwhile Script.before_component / after_component, the callbacks of on_before_component /
on_after_component, and a script's own on_before_component(callback, elem_id=…) registrations.

A1111 calls them from a patched gradio constructor; so do we (gradio_shim.install), but the patch only
acts while `watching(…)` is on for an App that loaded A1111 extensions: the page build of that App, in
this thread (a ContextVar, so other Apps and other threads are left alone). On a generation tab the tab's
scripts (A1111's scripts_current) get the Script hooks; the callbacks see the whole page, extension
tabs and Settings included. Extensions use this to find our components by elem_id (`txt2img_width`, …)
and wire their own buttons to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webui.compat.a1111.state import CompatState
    from webui.plugins.runner import LoadedScript, ScriptRunner


@dataclass
class OnComponent:
    """What on_before_component / on_after_component callbacks of a Script get (A1111's shape)."""

    component: Any


@dataclass(frozen=True)
class Watch:
    compat: CompatState
    runner: ScriptRunner | None  # the generation tab being built; None elsewhere on the page


_WATCH: ContextVar[Watch | None] = ContextVar("webui_a1111_ui_watch", default=None)


@contextmanager
def watching(compat: CompatState, runner: ScriptRunner | None) -> Iterator[None]:
    token = _WATCH.set(Watch(compat, runner))
    try:
        yield
    finally:
        _WATCH.reset(token)


def before(component: Any, kwargs: dict[str, Any]) -> None:
    """Before gradio builds `component` from its constructor's keyword arguments `kwargs`."""
    watch = _WATCH.get()
    if watch is None:
        return
    if watch.runner is not None:
        _elem_id_callbacks(watch, "on_before_component_elem_id", kwargs.get("elem_id"), component)
        _script_hooks(watch, "before_component", component, kwargs)
    watch.compat.run_callbacks("before_component", component, **kwargs)


def after(component: Any, kwargs: dict[str, Any]) -> None:
    watch = _WATCH.get()
    if watch is None:
        return
    watch.compat.run_callbacks("after_component", component, **kwargs)
    if watch.runner is not None:
        _elem_id_callbacks(
            watch, "on_after_component_elem_id", getattr(component, "elem_id", None), component
        )
        _script_hooks(watch, "after_component", component, kwargs)


def _scripts(watch: Watch) -> list[LoadedScript]:
    assert watch.runner is not None
    return watch.runner.all


def _script_hooks(watch: Watch, hook: str, component: Any, kwargs: dict[str, Any]) -> None:
    for loaded in _scripts(watch):
        method = getattr(loaded.script, hook, None)
        if method is not None:
            where = f"{type(loaded.script).__name__}.{hook}"
            watch.compat.plugins.call(loaded.active, where, method, component, **kwargs)


def _elem_id_callbacks(watch: Watch, attribute: str, elem_id: Any, component: Any) -> None:
    """A script's on_before_component / on_after_component(callback, elem_id=…) for this elem_id. One
    script instance serves both tabs and ui() may run more than once, so equal callbacks run once."""
    if not elem_id:
        return
    for loaded in _scripts(watch):
        seen: list[Any] = []
        for wanted, callback in loaded.script.__dict__.get(attribute, ()):
            if wanted == elem_id and callback not in seen:
                seen.append(callback)
                where = f"{type(loaded.script).__name__}.{attribute.removesuffix('_elem_id')}"
                watch.compat.plugins.call(loaded.active, where, callback, OnComponent(component))
