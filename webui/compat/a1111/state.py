"""What the A1111 layer keeps for one App: registered extra networks, callbacks of A1111 events that our
plugin registry has no name for, paste buttons and option change listeners; and the points where the
generation flow calls into A1111-only hooks (before_process, extra networks, before_process_batch)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from webui.compat.a1111 import batch_hooks, ui_hooks
from webui.plugins.context import Active, Owner, current

if TYPE_CHECKING:
    from webui.core.params import GenerationParams
    from webui.engine.sampling.run_hooks import FinishedBatch
    from webui.plugins.processing import Processing
    from webui.plugins.registry import Plugins
    from webui.plugins.runner import LoadedScript, ScriptRunner

_TAG = re.compile(r"<(\w+):([^<>]+)>")


@dataclass
class ExtraNetworkParams:
    """One `<name:a:b:key=value>` tag: positional `items` and `named` arguments (A1111's shape)."""

    items: list[str] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ExtraNetworkParams:
        parts = text.split(":")
        positional = [part for part in parts if "=" not in part]
        named = dict(part.split("=", 1) for part in parts if "=" in part)
        return cls(parts, positional, named)


class CompatState:
    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self.extra_networks: dict[str, tuple[Owner, Any]] = {}
        self.callbacks: dict[str, list[tuple[Owner, Callable[..., Any]]]] = {}
        self.paste_buttons: list[Any] = []
        self.onchange: dict[str, list[tuple[Owner, Callable[[], Any]]]] = {}
        self.modules: dict[str, ModuleType] = {}  # modules.shared & co. bound to this App
        self.a1111_only_options: dict[str, Any] = {}  # set values of views.A1111_ONLY_OPTIONS

    # Registration (from inside an extension's code).

    def add_callback(self, event: str, callback: Callable[..., Any]) -> None:
        self.callbacks.setdefault(event, []).append((current().owner, callback))

    def run_callbacks(self, event: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            self.plugins.call(Active(self.plugins, owner), f"on_{event}", callback, *args, **kwargs)
            for owner, callback in self.callbacks.get(event, [])
        ]

    def before_token_counter(self, prompt: str, steps: int, positive: bool) -> str:
        """on_before_token_counter(params): the callbacks may rewrite params.prompt before it is counted."""
        from webui.compat.a1111.modules.script_callbacks import BeforeTokenCounterParams

        params = BeforeTokenCounterParams(prompt, steps, [], positive)
        self.run_callbacks("before_token_counter", params)
        return params.prompt

    def register_network(self, network: Any) -> None:
        self.extra_networks[str(network.name)] = (current().owner, network)

    def add_onchange(self, name: str, callback: Callable[[], Any]) -> None:
        self.onchange.setdefault(name, []).append((current().owner, callback))

    def changed(self, name: str) -> None:
        for owner, callback in self.onchange.get(name, []):
            self.plugins.call(Active(self.plugins, owner), f"onchange({name})", callback)

    # Building the page (webui/ui/blocks.py through Plugins.building_ui).

    def page_script(self) -> str:
        """A1111's page functions their javascript calls (page_api.js), for the page head."""
        return (Path(__file__).parent / "page_api.js").read_text(encoding="utf-8")

    @contextmanager
    def building_ui(self, kind: str | None) -> Iterator[None]:
        """While the page (kind None: before_ui first) or one generation tab of it is built, the
        extensions see each component made (ui_hooks)."""
        if kind is None:
            self.run_callbacks("before_ui")
        with ui_hooks.watching(self, self.plugins.runner(kind) if kind else None):
            yield

    # The generation flow (webui/plugins/flow.py).

    def before_process(self, runner: ScriptRunner, p: Processing) -> None:
        """A1111 calls setup() and before_process() on the always-on scripts before process()."""
        self._each(runner, p, "setup")
        self._each(runner, p, "before_process")

    def after_process(self, runner: ScriptRunner, p: Processing) -> None:
        """Registered extra networks get their prompt tags (removed from the prompts): activate(p, params)."""
        if self.extra_networks:
            found: dict[str, list[ExtraNetworkParams]] = {}
            p.all_prompts = [
                self._take_tags(text, {} if i else found) for i, text in enumerate(p.all_prompts)
            ]
            p.prompt = self._take_tags(p.prompt, {})
            for name, params in found.items():
                owner, network = self.extra_networks[name]
                self.plugins.call(
                    Active(self.plugins, owner), f"{name}.activate", network.activate, p, params
                )
        # A1111 passes the activated networks' params as a keyword
        self._each(runner, p, "after_extra_networks_activate", extra_network_data={})

    def after_generate(self, p: Processing) -> None:
        for owner, network in self.extra_networks.values():
            self.plugins.call(
                Active(self.plugins, owner), f"{network.name}.deactivate", network.deactivate, p
            )

    def before_batch(self, runner: ScriptRunner, p: Processing, batch: int, prompts: list[str]) -> None:
        self._each(runner, p, "before_process_batch", batch_number=batch, prompts=prompts, seeds=[])

    def after_pass(self, params: GenerationParams, count: int) -> Callable[[Any, int], Any] | None:
        """cfg_denoised and cfg_after_cfg after each model pass (cfg_hooks); None without callbacks."""
        from webui.compat.a1111 import cfg_hooks  # torch: only once a generation runs

        return cfg_hooks.after_pass(self, params, count)

    def before_hr(self, runner: ScriptRunner, p: Processing) -> None:
        """before_hr(p): before hires fix's second pass (a script may change p's hires settings)."""
        self._each(runner, p, "before_hr")

    def post_sample(self, runner: ScriptRunner, p: Processing, latents: Any) -> Any:
        """post_sample(p, ps): the batch's latents once sampling is over, before decoding; a script may
        replace ps.samples. Skipped when no always-on script has the hook."""
        from webui.compat.a1111.modules.scripts import PostSampleArgs  # gradio: once scripts run

        if not any(_overrides(loaded.script, "post_sample") for loaded in runner.alwayson):
            return latents
        ps = PostSampleArgs(latents)
        self._each(runner, p, "post_sample", ps)
        return ps.samples

    def after_composite(self, runner: ScriptRunner, p: Processing, pp: Any) -> None:
        """postprocess_image_after_composite(p, pp): each image once an inpainted region is pasted back
        into its input (our engine pastes before postprocess_image already; txt2img: right after it)."""
        self._each(runner, p, "postprocess_image_after_composite", pp)

    def after_batch(
        self, runner: ScriptRunner, p: Processing, number: int, batch: FinishedBatch
    ) -> FinishedBatch:
        """postprocess_batch and postprocess_batch_list once batch `number` is made (batch_hooks); the
        batch as the scripts left it. Skipped (no tensors made) when no always-on script has them."""
        hooks = ("postprocess_batch", "postprocess_batch_list")
        if not any(_overrides(loaded.script, hook) for loaded in runner.alwayson for hook in hooks):
            return batch
        return batch_hooks.run(functools.partial(self._each, runner, p), p, number, batch)

    def _take_tags(self, text: str, found: dict[str, list[ExtraNetworkParams]]) -> str:
        """`text` without the tags of registered networks, each tag's params added to `found` (the caller
        passes the first prompt's only: A1111 activates the networks of the first prompt)."""

        def take(match: re.Match[str]) -> str:
            if match.group(1) not in self.extra_networks:
                return match.group(0)
            found.setdefault(match.group(1), []).append(ExtraNetworkParams.parse(match.group(2)))
            return ""

        return _TAG.sub(take, text)

    def _each(self, runner: ScriptRunner, p: Processing, hook: str, *leading: Any, **kwargs: Any) -> None:
        """`hook(p, *leading, *script_args, **kwargs)` on each always-on script that has it."""
        for loaded, args in runner.alwayson_args(p.params):
            method = getattr(loaded.script, hook, None)
            if method is not None:
                where = f"{_label(loaded)}.{hook}"
                self.plugins.call(loaded.active, where, method, p, *leading, *args, **kwargs)


def _label(loaded: LoadedScript) -> str:
    return type(loaded.script).__name__


def _overrides(script: Any, hook: str) -> bool:
    """Whether the script's class defines `hook` itself (the A1111 Script base's are no-ops)."""
    from webui.compat.a1111.modules.scripts import Script  # gradio: only once scripts are running

    method = getattr(type(script), hook, None)
    return method is not None and method is not getattr(Script, hook, None)
