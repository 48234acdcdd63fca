"""The scripts section of the generation tabs, built in gradio without a browser: which controls it
renders, how their values become params, and a script whose ui() raises."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from tests.plugins.conftest import write_extension
from webui.core.cmd_args import parse_args
from webui.core.params import Txt2Img
from webui.plugins.registry import Plugins
from webui.services.settings import Settings
from webui.ui.generation import GenerationTab
from webui.ui.paste import paste_handler
from webui.ui.scripts_ui import ScriptsSection

SCRIPTS = """
from webui.plugins import api
import gradio as gr


def renamed_key(infotext, fields):
    if "Old text" in fields:
        fields["Always text"] = fields.pop("Old text")


api.on_infotext_pasted(renamed_key)


class Always(api.Script):
    def title(self):
        return "Always"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def ui(self, is_img2img):
        box = gr.Textbox(value="a", label="A text")
        self.infotext_fields = [(box, "Always text")]
        return [gr.Checkbox(value=True, label="A on"), box]


class PickMe(api.Script):
    def title(self):
        return "Pick me"

    def ui(self, is_img2img):
        return [gr.Slider(1, 5, value=2, label="How many")]


class Other(api.Script):
    def title(self):
        return "Other"

    def ui(self, is_img2img):
        return [gr.Textbox(label="One"), gr.Textbox(label="Two")]


class OnlyImg2img(api.Script):
    def title(self):
        return "Only img2img"

    def show(self, is_img2img):
        return is_img2img


class BadUi(api.Script):
    def title(self):
        return "Bad UI"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def ui(self, is_img2img):
        gr.Textbox(label="half built")
        raise ValueError("ui failed")
"""


def build(tmp_path: Path, tab: str) -> tuple[ScriptsSection, list, Plugins]:
    write_extension(tmp_path, "ui-ext", {"scripts/s.py": SCRIPTS})
    plugins = Plugins(
        Settings(tmp_path / "config.json"),
        parse_args(["--data-dir", str(tmp_path)]),
        tmp_path,
        tmp_path / "none",
    )
    section = ScriptsSection(plugins, tab)
    with gr.Blocks():
        inputs = section.build()
    return section, inputs, plugins


def test_section_renders_dropdown_and_script_controls(tmp_path):
    section, inputs, plugins = build(tmp_path, "txt2img")
    dropdown, *rest = inputs
    assert dropdown.label == "Script" and dropdown.elem_id == "txt2img_script_list"
    assert [choice[1] for choice in dropdown.choices] == ["None", "Pick me", "Other"]  # not "Only img2img"
    assert [c.label for c in rest] == ["How many", "One", "Two", "A on", "A text"]
    assert [key for _, key in section.paste_fields] == ["Always text"]
    (error,) = plugins.errors.entries()
    assert (error.extension, error.where, error.error) == ("ui-ext", "BadUi.ui", "ValueError: ui failed")


def test_apply_puts_the_chosen_script_and_every_alwayson_value_into_params(tmp_path):
    section, _, _ = build(tmp_path, "img2img")
    base = Txt2Img(prompt="x")
    # inputs: dropdown, Pick me (1), Other (2), Only img2img (0), Always (2), Bad UI (0)
    params = section.apply(base, ["Other", 3, "one", "two", False, "b"])
    assert (params.script_name, params.script_args) == ("Other", ("one", "two"))
    assert params.alwayson_scripts == (("Always", (False, "b")), ("Bad UI", ()))
    assert params.prompt == "x"
    none = section.apply(base, ["None", 3, "one", "two", True, "a"])
    assert (none.script_name, none.script_args) == (None, ())


def test_pasting_an_infotext_fills_script_fields_after_extensions_saw_it(tmp_path):
    section, inputs, plugins = build(tmp_path, "txt2img")
    with gr.Blocks():
        prompt = gr.Textbox()
        tab = GenerationTab(
            "txt2img", {"prompt": prompt}, gr.Row(), gr.Row(), gr.Gallery(), gr.Textbox(), gr.State([])
        )
    tab.sections.append(section)
    handler, outputs = paste_handler(SimpleNamespace(plugins=plugins), tab, None)
    (always_text,) = [component for component, key in section.paste_fields]
    assert outputs == [prompt, always_text]
    # the extension's on_infotext_pasted renames an old key before the fields are used
    assert handler("dog\nSteps: 3, Seed: 9, Old text: from an old version") == ["dog", "from an old version"]
    assert handler("cat\nSteps: 3, Seed: 9, Size: 64x64") == ["cat", gr.update()]
