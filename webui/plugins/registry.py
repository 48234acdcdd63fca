"""Plugins: one App's extensions, their scripts and callbacks, and the error log of all of them.

Built by the App at start-up: discover the extension folders, run each new install.py, import the
enabled extensions' scripts (they register callbacks through webui.plugins.api), then let them add
options (on_ui_settings). Every later call into extension code goes through `call` (isolated).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import logging
import threading
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webui.core.cmd_args import REPO_ROOT, insecure_access_allowed
from webui.core.errors import InvalidParameter, UserError
from webui.core.params import GenerationParams
from webui.plugins import installer, introspect, isolation
from webui.plugins.callbacks import Callbacks
from webui.plugins.context import Active, Owner
from webui.plugins.extensions import Extension, discover, read_metadata
from webui.plugins.flow import JobRun, model_hook_owners
from webui.plugins.loader import import_script_file, module_name, script_classes
from webui.plugins.runner import LoadedScript, ScriptRunner
from webui.plugins.script import Script
from webui.services.scripting import ProcessingContext
from webui.services.settings import Settings

log = logging.getLogger(__name__)

BUILTIN_DIR = REPO_ROOT / "extensions-builtin"
KINDS = ("txt2img", "img2img")
# alwayson_scripts keys that are not scripts of ours: the built-in ControlNet reads its own.
FOREIGN_ALWAYSON = ("controlnet",)


@dataclass(frozen=True)
class ExtensionTab:
    active: Active  # the extension that made it
    blocks: Any  # gr.Blocks
    title: str
    elem_id: str


class ExtensionAccessDenied(UserError):
    """Installing or updating extensions on a server other machines can reach, without the flag."""

    status_code = 403


class Plugins:
    def __init__(
        self,
        settings: Settings,
        args: argparse.Namespace,
        data_dir: Path,
        builtin_dir: Path = BUILTIN_DIR,
        shipped_dir: Path | None = None,  # the install's extensions/, listed after the data dir's
    ) -> None:
        self.settings = settings
        self.args = args
        self.builtin_dir = builtin_dir
        self.user_dir = data_dir / "extensions"
        self.shipped_dir = shipped_dir
        self.errors = isolation.ErrorLog()
        self.callbacks = Callbacks()
        self.extensions: list[Extension] = []  # all found (and installed since), enabled or not
        self.loaded: list[Extension] = []  # those whose scripts were imported at start-up
        self.scripts: list[LoadedScript] = []
        self._marks = installer.InstallMarks(self.user_dir / ".installed.json")
        self._prefix = uuid.uuid4().hex[:8]  # this App's module names (see loader.module_name)
        self._runners: dict[str, ScriptRunner] = {}
        self._built: dict[str, dict[int, list[Any]]] = {}  # see _components
        self._build_lock = threading.Lock()
        self._last_model: Any = None
        self.compat: Any = None  # webui.compat.a1111.CompatState once an A1111 extension loads
        self.jobs: Any = None  # the App's JobQueue (A1111's shared.state reads it), set by the App
        self.upscalers: Any = None  # the App's ExtrasService (api.upscale), set by the App
        self._load()

    # Loading.

    def _load(self) -> None:
        self.extensions = discover(
            self.builtin_dir,
            self.user_dir,
            set(self.settings.get("disabled_extensions")),
            disable_all=getattr(self.args, "disable_all_extensions", False),
            disable_extra=getattr(self.args, "disable_extra_extensions", False),
            shipped_dir=self.shipped_dir,
        )
        self.loaded = self.enabled
        for extension in self.loaded:
            active = Active(self, Owner(extension.name, extension.path))
            a1111 = self.call(active, "A1111 compatibility", _a1111_layer, self, extension.path)
            if extension.install_script:
                self.call(
                    active,
                    "install.py",
                    installer.run_install_script,
                    extension.install_script,
                    self._marks,
                    extension.name,
                    a1111.PYTHONPATH_DIR if a1111 else None,
                )
            with a1111.on_sys_path(extension.path) if a1111 else contextlib.nullcontext():
                for path in extension.scripts:
                    self._load_script_file(active, path)
        log.info(
            "Extensions: %s; %d scripts",
            ", ".join(e.name for e in self.loaded) or "none",
            len(self.scripts),
        )
        self.run_callbacks("ui_settings")

    def _load_script_file(self, active: Active, path: Path) -> None:
        where = f"import scripts/{path.name}"
        module = self.call(
            active, where, import_script_file, module_name(self._prefix, active.owner.name, path), path
        )
        if module is None:
            return
        for cls in script_classes(module):
            script = self.call(active, f"{cls.__name__}()", cls)
            if script is not None:
                script.filename = path
                script.extension = active.owner.name
                self.scripts.append(LoadedScript(script, active))

    @property
    def enabled(self) -> list[Extension]:
        return [extension for extension in self.extensions if extension.enabled]

    def extension(self, name: str) -> Extension:
        for extension in self.extensions:
            if extension.name == name:
                return extension
        raise InvalidParameter(
            f"no extension named {name!r}; installed: {', '.join(e.name for e in self.extensions)}"
        )

    # Calling extension code.

    def call(
        self,
        active: Active,
        where: str,
        fn: Callable[..., Any],
        *args: Any,
        default: Any = None,
        **kwargs: Any,
    ) -> Any:
        return isolation.call(self.errors, active, where, fn, *args, default=default, **kwargs)

    def call_or_fail(self, active: Active, where: str, fn: Callable[..., Any], *args: Any) -> Any:
        return isolation.call_or_fail(self.errors, active, where, fn, *args)

    def run_callbacks(self, event: str, *args: Any) -> list[Any]:
        """Each callback of `event` in registration order (isolated); their results, None for failures."""
        return [
            self.call(Active(self, owner), f"on_{event}", callback, *args)
            for owner, callback in self.callbacks.entries(event)
        ]

    # Scripts.

    def runner(self, kind: str) -> ScriptRunner:
        if kind not in KINDS:
            raise InvalidParameter(f"scripts exist for {', '.join(KINDS)}, not {kind!r}")
        if kind not in self._runners:
            self._runners[kind] = ScriptRunner(kind, self.scripts, self.call, self.default_args)
        return self._runners[kind]

    def _components(self, kind: str) -> dict[int, list[Any]]:
        """Each script's ui() components for `kind`, built once outside the page (by id of the script)."""
        with self._build_lock:
            if kind not in self._built:
                runner = self.runner(kind)
                built = {}
                with introspect.scratch():
                    for loaded in runner.all:
                        where = f"{type(loaded.script).__name__}.ui"
                        answer = self.call(
                            loaded.active, where, loaded.script.ui, runner.is_img2img, default=None
                        )
                        built[id(loaded.script)] = list(answer or [])
                self._built[kind] = built
            return self._built[kind]

    def default_args(self, script: Script, is_img2img: bool) -> list[Any]:
        """The values of the script's ui() components as built (what the API fills in for missing args)."""
        components = self._components("img2img" if is_img2img else "txt2img").get(id(script), [])
        return [introspect.default_value(component) for component in components]

    def script_info(self, kind: str) -> list[dict[str, Any]]:
        """A1111's /sdapi/v1/script-info entries of one tab."""
        runner = self.runner(kind)
        components = self._components(kind)
        return [
            {
                "name": runner.title(loaded).lower(),
                "is_alwayson": loaded in runner.alwayson,
                "is_img2img": runner.is_img2img,
                "args": [
                    introspect.arg_info(component) for component in components.get(id(loaded.script), [])
                ],
            }
            for loaded in runner.all
        ]

    def check(self, params: GenerationParams, kind: str) -> None:
        """InvalidParameter for a script name (or always-on title) no loaded script has."""
        self.runner(kind).check(params, ignore=lambda title: title.strip().lower() in FOREIGN_ALWAYSON)

    def process(self, params: GenerationParams, kind: str, context: ProcessingContext) -> Any:
        """Run one queued generation with its scripts (see flow.JobRun); the job's Result."""
        return JobRun(self, self.runner(kind), context).execute(params)

    def model_hooks(self, kind: str) -> list[str]:
        """Who acts on the model inside a batch of a `kind` job (see flow.model_hook_owners)."""
        return model_hook_owners(self, self.runner(kind))

    # Callbacks the rest of the program triggers.

    def ui_tabs(self) -> list[ExtensionTab]:
        """Every extension tab (on_ui_tabs); a callback that raises or answers wrongly is reported instead."""
        tabs = []
        for owner, callback in self.callbacks.entries("ui_tabs"):
            active = Active(self, owner)
            answer = self.call(active, "on_ui_tabs", _checked_tabs, callback, default=[])
            tabs += [ExtensionTab(active, blocks, title, elem_id) for blocks, title, elem_id in answer]
        return tabs

    def render_tab(self, tab: ExtensionTab) -> None:
        """Put the tab's Blocks into the page being built (isolated like every extension call)."""
        self.call(tab.active, "on_ui_tabs (render)", tab.blocks.render)

    def building_ui(self, tab: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Around building the page (tab None) and each generation tab in it: A1111 extensions see
        the components made meanwhile (their before_ui and component hooks; webui.compat.a1111)."""
        return self.compat.building_ui(tab) if self.compat is not None else contextlib.nullcontext()

    def app_started(self, demo: Any, web: Any) -> None:
        self.run_callbacks("app_started", demo, web)

    def notice_model(self, loaded: Any) -> None:
        """on_model_loaded, when `loaded` is another checkpoint than the last one seen."""
        if loaded is not None and loaded is not self._last_model:
            self._last_model = loaded
            self.run_callbacks("model_loaded", loaded)

    def before_token_counter(self, prompt: str, steps: int, positive: bool) -> str:
        """The prompt the token counter counts: A1111 extensions may rewrite it (on_before_token_counter,
        e.g. wildcards expanded)."""
        if self.compat is None:
            return prompt
        rewritten: str = self.compat.before_token_counter(prompt, steps, positive)
        return rewritten

    def infotext_pasted(self, infotext: str, fields: dict[str, str]) -> dict[str, str]:
        """Let extensions adjust the fields parsed from a pasted infotext (in place); returns them."""
        self.run_callbacks("infotext_pasted", infotext, fields)
        return fields

    def page_assets(self) -> tuple[str, str]:
        """(head HTML with each loaded extension's javascript/*.js inlined, its style.css files joined)."""
        scripts, styles = [], []
        if self.compat is not None:  # A1111's page functions (onUiLoaded, gradioApp, …) their scripts call
            scripts.append(
                f'<script data-extension="A1111 page functions">\n{self.compat.page_script()}\n</script>'
            )
        for extension in self.loaded:
            for path in extension.javascript:
                source = path.read_text(encoding="utf-8", errors="replace").replace("</script", "<\\/script")
                scripts.append(
                    f'<script data-extension="{html.escape(extension.name)}">\n{source}\n</script>'
                )
            if extension.stylesheet is not None:
                css = extension.stylesheet.read_text(encoding="utf-8", errors="replace")
                styles.append(f"/* {extension.name} */\n{css}")
        return "\n".join(scripts), "\n".join(styles)

    # The Extensions tab and API.

    def set_enabled(self, enabled: Collection[str]) -> tuple[str, ...]:
        """Persist which extensions are enabled (takes effect on restart); returns the disabled names."""
        unknown = set(enabled) - {e.name for e in self.extensions}
        if unknown:
            raise InvalidParameter(f"no extension named {', '.join(sorted(unknown))}")
        disabled = tuple(e.name for e in self.extensions if e.name not in enabled)
        self.settings.update({"disabled_extensions": disabled})
        return disabled

    def _check_access(self, action: str) -> None:
        if not insecure_access_allowed(self.args):
            raise ExtensionAccessDenied(
                f"{action} extensions is disabled because this server is reachable from other machines "
                "(--listen, --share or --server-name); start it with --enable-insecure-extension-access "
                "to allow it"
            )

    def install(self, url: str, name: str = "", branch: str = "") -> Path:
        """Clone `url` into extensions/ (loaded on the next start)."""
        self._check_access("Installing")
        path = installer.install(url, self.user_dir, name, branch)
        # listed (enabled) at once; its scripts load on the next start
        self.extensions = [*self.extensions, Extension(path.name, path, False, True, read_metadata(path))]
        return path

    def update(self, name: str) -> str:
        self._check_access("Updating")
        return installer.update(self.extension(name).path)


def _a1111_layer(plugins: Plugins, folder: Path) -> Any:
    """webui.compat.a1111, installed for this App, when the extension imports A1111's modules; else None."""
    from webui.compat import a1111  # only for extensions that need it

    if not a1111.uses_a1111(folder):
        return None
    a1111.install(plugins)
    return a1111


def _checked_tabs(callback: Callable[[], Any]) -> list[tuple[Any, str, str]]:
    answer = callback() or []
    tabs = []
    for item in answer:
        if not (isinstance(item, (list, tuple)) and len(item) == 3):
            raise TypeError(f"on_ui_tabs callbacks return (gr.Blocks, title, elem_id) triples, got {item!r}")
        tabs.append((item[0], str(item[1]), str(item[2])))
    return tabs
