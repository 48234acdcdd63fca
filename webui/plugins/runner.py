"""The scripts of one tab (txt2img or img2img): which are selectable and which always visible, their
arguments from the params, and the isolated calls of their hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams
from webui.plugins.context import Active
from webui.plugins.script import AlwaysVisible, PostprocessImageArgs, Script

if TYPE_CHECKING:
    from webui.plugins.processing import Processed, Processing

# How the registry calls into extension code (isolation.call bound to its error log).
Caller = Callable[..., Any]
# ui() values of a script built outside the page (API defaults), computed lazily by the registry.
DefaultsFn = Callable[[Script, bool], list[Any]]

NONE_TITLE = "None"  # the "Script" dropdown's first choice


@dataclass(frozen=True)
class LoadedScript:
    script: Script
    active: Active  # the registry and extension to activate when calling it


class ScriptRunner:
    def __init__(
        self, kind: str, scripts: Sequence[LoadedScript], call: Caller, defaults: DefaultsFn
    ) -> None:
        self.kind = kind
        self.is_img2img = kind == "img2img"
        self._call = call
        self._defaults = defaults
        self.selectable: list[LoadedScript] = []
        self.alwayson: list[LoadedScript] = []
        for loaded in scripts:
            shown = call(
                loaded.active, f"{_label(loaded)}.show", loaded.script.show, self.is_img2img, default=False
            )
            if shown is AlwaysVisible:
                self.alwayson.append(loaded)
            elif shown:
                self.selectable.append(loaded)

    @property
    def all(self) -> list[LoadedScript]:
        return [*self.selectable, *self.alwayson]

    def titles(self) -> list[str]:
        return [self.title(loaded) for loaded in self.selectable]

    def title(self, loaded: LoadedScript) -> str:
        return str(
            self._call(loaded.active, f"{_label(loaded)}.title", loaded.script.title, default=_label(loaded))
        )

    def find(self, name: str, candidates: Sequence[LoadedScript] | None = None) -> LoadedScript | None:
        """The script titled `name` (case-insensitive) among the selectable ones (or `candidates`)."""
        wanted = name.strip().lower()
        for loaded in self.selectable if candidates is None else candidates:
            if self.title(loaded).lower() == wanted:
                return loaded
        return None

    def check(self, params: GenerationParams, ignore: Callable[[str], bool] = lambda _: False) -> None:
        """InvalidParameter naming an unknown script and listing the known ones (alwayson titles that
        `ignore` accepts belong to someone else, e.g. the built-in ControlNet)."""
        if params.script_name and self.find(params.script_name) is None:
            known = ", ".join(self.titles()) or "none installed"
            raise InvalidParameter(
                f"script {params.script_name!r} not found for {self.kind}; scripts: {known}"
            )
        for title, _ in params.alwayson_scripts:
            if not ignore(title) and self.find(title, self.alwayson) is None:
                known = ", ".join(self.title(loaded) for loaded in self.alwayson) or "none installed"
                raise InvalidParameter(
                    f"always-on script {title!r} not found for {self.kind}; always-on scripts: {known}"
                )

    def args(self, loaded: LoadedScript, given: Sequence[Any] | None) -> tuple[Any, ...]:
        """The values for `loaded`'s hooks: those given, the rest from its ui() defaults."""
        given = tuple(given or ())
        defaults = self._defaults(loaded.script, self.is_img2img)
        return given + tuple(defaults[len(given) :])

    def selected(self, params: GenerationParams) -> tuple[LoadedScript, tuple[Any, ...]] | None:
        if not params.script_name:
            return None
        loaded = self.find(params.script_name)
        if loaded is None:
            self.check(params)
        assert loaded is not None
        return loaded, self.args(loaded, params.script_args)

    def alwayson_args(self, params: GenerationParams) -> list[tuple[LoadedScript, tuple[Any, ...]]]:
        given = {title.strip().lower(): args for title, args in params.alwayson_scripts}
        return [
            (loaded, self.args(loaded, given.get(self.title(loaded).lower()))) for loaded in self.alwayson
        ]

    # Hooks run for the always-visible scripts only (as A1111): a selectable script acts through run().

    def _each(self, p: Processing, hook: str, *extra: Any, **kwargs: Any) -> None:
        for loaded, args in self.alwayson_args(p.params):
            method = getattr(loaded.script, hook)
            self._call(loaded.active, f"{_label(loaded)}.{hook}", method, p, *extra, *args, **kwargs)

    def process(self, p: Processing) -> None:
        self._each(p, "process")

    def process_batch(self, p: Processing, batch_number: int, prompts: list[str], seeds: list[int]) -> None:
        self._each(p, "process_batch", batch_number=batch_number, prompts=prompts, seeds=seeds)

    def postprocess_image(self, p: Processing, pp: PostprocessImageArgs) -> None:
        self._each(p, "postprocess_image", pp)

    def postprocess(self, p: Processing, processed: Processed) -> None:
        self._each(p, "postprocess", processed)


def _label(loaded: LoadedScript) -> str:
    return type(loaded.script).__name__
