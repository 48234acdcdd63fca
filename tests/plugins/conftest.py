"""Fixtures for the plugin tests: extensions written into a temporary --data-dir, and Apps over them."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import make_app, make_data_dir
from webui.core.cmd_args import REPO_ROOT

EXAMPLE = REPO_ROOT / "extensions" / "example-watermark"

# Records every hook and callback with what it received, in EVENTS (a list in its own module).
RECORDER = """
from pathlib import Path
from webui.plugins import api

EVENTS = []
CHANGE = {}  # set by tests: "x_scale" multiplies the latents each model pass sees


class Recorder(api.Script):
    def title(self):
        return "Recorder"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr
        return [gr.Textbox(value="default-tag", label="Tag")]

    def process(self, p, tag):
        EVENTS.append(("process", type(p).__name__, p.prompt, tag))
        p.extra_generation_params["Recorder"] = tag

    def process_batch(self, p, tag, *, batch_number, prompts, seeds):
        EVENTS.append(("process_batch", batch_number, tuple(prompts), tuple(seeds)))

    def postprocess_image(self, p, pp, tag):
        EVENTS.append(("postprocess_image", pp.image.size))

    def postprocess(self, p, processed, tag):
        EVENTS.append(("postprocess", len(processed.images), tuple(processed.seeds), len(processed.paths)))


def on_cfg(params):
    EVENTS.append(("cfg_denoiser", params.sampling_step, params.total_sampling_steps, tuple(params.x.shape),
                   tuple(params.text_cond.shape), params.text_uncond is not None, float(params.sigma[0])))
    if "x_scale" in CHANGE:
        params.x = params.x * CHANGE["x_scale"]


def on_before(params):
    EVENTS.append(("before_image_saved", params.filename, params.pnginfo["parameters"]))


def on_saved(params):
    EVENTS.append(("image_saved", Path(params.filename).name, params.p.prompt))


def on_model(loaded):
    EVENTS.append(("model_loaded", type(loaded).__name__))


api.on_cfg_denoiser(on_cfg)
api.on_before_image_saved(on_before)
api.on_image_saved(on_saved)
api.on_model_loaded(on_model)
"""

# Fails everywhere it can: one file on import, and a script and callbacks that raise.
BROKEN_IMPORT = "raise ImportError('broken on purpose')\n"
BROKEN_HOOKS = """
from webui.plugins import api


class Broken(api.Script):
    def title(self):
        return "Broken"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def ui(self, is_img2img):
        raise RuntimeError("ui boom")

    def process(self, p, *args):
        raise RuntimeError("process boom")

    def postprocess_image(self, p, pp, *args):
        raise RuntimeError("postprocess_image boom")


class BrokenRun(api.Script):
    def title(self):
        return "Broken run"

    def run(self, p, *args):
        raise ZeroDivisionError("run boom")


def tabs():
    raise RuntimeError("tab boom")


def saved(params):
    raise RuntimeError("saved boom")


api.on_ui_tabs(tabs)
api.on_image_saved(saved)
api.on_cfg_denoiser(lambda params: 1 / 0)
"""


def write_extension(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / "extensions" / name
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    return folder


def add_example(root: Path) -> Path:
    return Path(shutil.copytree(EXAMPLE, root / "extensions" / EXAMPLE.name))


def extension_module(app: Any, title: str) -> ModuleType:
    """The module of the loaded script titled `title` (to read what a test extension recorded)."""
    for loaded in app.plugins.scripts:
        if loaded.script.title() == title:
            return sys.modules[type(loaded.script).__module__]
    raise LookupError(title)


@pytest.fixture(scope="module")
def plugin_app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    """An App over the tiny checkpoint with the example, a recording and a broken extension installed."""
    root = make_data_dir(tmp_path_factory.mktemp("plugins-data"), tiny_sd1_file)
    add_example(root)
    write_extension(root, "recorder", {"scripts/recorder.py": RECORDER})
    write_extension(root, "broken", {"scripts/a_import.py": BROKEN_IMPORT, "scripts/hooks.py": BROKEN_HOOKS})
    app = make_app(root)
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()
