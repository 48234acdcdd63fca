"""Every declared generation field (webui/core/params.py) round-trips API → params → infotext → paste →
params, and its UI widget, its API schema and validation agree on its limits. A field declared only in
this test (`hires_cfg`) shows up everywhere without any other change: the schema is the one place."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, ClassVar

import gradio as gr
import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.api.models import GenerationRequest, Img2ImgFields, request_model
from webui.core import infotext, schema
from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.core.schema import param
from webui.engine.checkpoints.model_defaults import read_defaults
from webui.plugins import api as plugin_api
from webui.ui import paste
from webui.ui.generation import PLACED, build_generation_tab
from webui.ui.param_widgets import unplaced_widgets, widget


@dataclasses.dataclass(frozen=True)
class WithHiresCfg(Txt2Img):
    """A field added in this test only, declared the way every field is."""

    hires_cfg: float = param(
        0.0, label="Hires CFG", minimum=0.0, maximum=30.0, step=0.5, infotext="Hires CFG", axis="Hires CFG",
        model_default=True,
    )  # fmt: skip


class WithHiresCfgRequest(GenerationRequest):
    params_type: ClassVar[type[GenerationParams]] = WithHiresCfg


TYPES = (Txt2Img, Img2Img, WithHiresCfg)
# A1111's API sets these another way than by their own name (override_settings, img2img's mask_blur).
NOT_BY_NAME = {"clip_skip", "sd_model_checkpoint", "mask_blur"}
# A1111 does not write these into the infotext (a batch's shape and how the input was resized).
NOT_IN_INFOTEXT = {"n_iter", "batch_size", "resize_mode"}


def other_value(item: schema.Field) -> Any:
    """A valid value of `item` that is not its default (so a round trip that drops it fails)."""
    spec = item.spec
    if item.name == "sampler_name":
        return "Euler"
    if item.name == "scheduler":
        return "Karras"
    if item.name in ("hr_sampler_name", "hr_scheduler"):
        return {"hr_sampler_name": "DDIM", "hr_scheduler": "Exponential"}[item.name]
    if item.name in ("hr_resize_x", "hr_resize_y"):
        return 0  # "Hires resize" replaces "Hires upscale": tests/api/test_hires_api.py covers it
    if spec.by_index:
        return (not item.default) if item.kind is bool else len(spec.choice_labels()) - 1
    if item.kind is bool:
        return not item.default
    if item.kind in (int, float):
        step = spec.step or 1
        value = spec.maximum - (spec.multiple_of or step) if spec.maximum is not None else item.default + 1
        return item.kind(value)
    return f"{item.name} value"


def request_for(params_type: type[GenerationParams]) -> type[GenerationRequest]:
    if params_type is WithHiresCfg:
        return request_model("WithHiresCfgRequest", WithHiresCfgRequest)
    return request_model(
        f"{params_type.__name__}Request", Img2ImgFields if params_type is Img2Img else GenerationRequest
    )


def png_base64(color: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def api_body(params_type: type[GenerationParams], chosen: dict[str, Any]) -> dict[str, Any]:
    body = {name: value for name, value in chosen.items() if name not in NOT_BY_NAME}
    body["override_settings"] = {
        "CLIP_stop_at_last_layers": chosen["clip_skip"],
        "sd_model_checkpoint": chosen["sd_model_checkpoint"],
    }
    if params_type is Img2Img:
        body.update(init_images=[png_base64("red")], mask=png_base64("white"), mask_blur=chosen["mask_blur"])
    return body


@pytest.mark.parametrize("params_type", TYPES, ids=lambda t: t.__name__)
def test_every_field_round_trips_api_params_infotext_paste_params(
    params_type: type[GenerationParams],
) -> None:
    declared = schema.fields(params_type)
    chosen = {item.name: other_value(item) for item in declared}
    # API (a JSON body as a client sends it) → params
    request = request_for(params_type).model_validate(json.loads(json.dumps(api_body(params_type, chosen))))
    params = request.to_params(default_clip_skip=1)
    params.validate()
    assert {item.name: getattr(params, item.name) for item in declared} == chosen
    # params → infotext (the checkpoint's name is the loaded model's, which is the one asked for) → paste
    text = infotext.build(params, model_name=params.sd_model_checkpoint)
    pasted = paste.read(text, params_type=params_type)
    assert pasted.warnings == []
    readable = {name for names in infotext.key_fields(params_type).values() for name in names}
    assert readable == {item.name for item in declared} - NOT_IN_INFOTEXT
    # paste hands the checkpoint to switch_checkpoint; everything else comes back as it was
    expected = {name: value for name, value in chosen.items() if name in readable - {"sd_model_checkpoint"}}
    assert pasted.values == expected
    assert (
        infotext.read_values(infotext.parse(text), params_type)[0]["sd_model_checkpoint"]
        == chosen["sd_model_checkpoint"]
    )
    # → params again
    again = dataclasses.replace(params, **pasted.values)
    assert again == params


@pytest.mark.parametrize(
    ("params_type", "item"),
    [(t, item) for t in TYPES for item in schema.fields(t)],
    ids=lambda v: v.name if isinstance(v, schema.Field) else v.__name__,
)
def test_the_widget_the_api_schema_and_validation_agree_on_limits(
    params_type: type[GenerationParams], item: schema.Field
) -> None:
    spec = item.spec
    with gr.Blocks():
        component = widget(params_type, item.name)
    properties = request_for(params_type).model_json_schema()["properties"]
    if spec.by_index:
        labels = spec.choice_labels()
        assert [label for label, _ in component.choices] == list(labels)
        assert [value for _, value in component.choices] == list(range(len(labels)))
        if item.spec.api and item.kind is not bool:
            assert (properties[item.name]["minimum"], properties[item.name]["maximum"]) == (
                0,
                len(labels) - 1,
            )
        with pytest.raises(InvalidParameter, match=item.name):
            schema.check(item, len(labels) if item.kind is int else "yes")
        return
    if spec.minimum is None:
        assert item.kind in (str, bool)
        return
    assert (component.minimum, component.maximum) == (spec.minimum, spec.maximum)
    if isinstance(component, gr.Slider):
        assert component.step == spec.step
    if spec.api:
        assert (properties[item.name]["minimum"], properties[item.name]["maximum"]) == (
            spec.minimum,
            spec.maximum,
        )
        if spec.multiple_of:
            assert properties[item.name]["multipleOf"] == spec.multiple_of
    assert schema.check(item, item.kind(spec.minimum)) == spec.minimum
    assert schema.check(item, item.kind(spec.maximum)) == spec.maximum
    nudge = spec.multiple_of or spec.step or 1
    for outside in (spec.minimum - nudge, spec.maximum + nudge):
        with pytest.raises(InvalidParameter, match=f"{item.name} must be between"):
            schema.check(item, item.kind(outside))


def test_a_field_added_to_the_schema_appears_everywhere() -> None:
    # validation
    with pytest.raises(InvalidParameter, match="hires_cfg must be between 0 and 30, got 31"):
        WithHiresCfg(hires_cfg=31.0).validate()
    # API request model and /openapi.json limits
    model = request_model("WithHiresCfgRequest", WithHiresCfgRequest)
    prop = model.model_json_schema()["properties"]["hires_cfg"]
    assert (prop["minimum"], prop["maximum"], prop["default"]) == (0, 30, 0.0)
    assert model.model_validate({"hires_cfg": 4.5}).to_params(1).hires_cfg == 4.5
    # infotext and paste
    text = infotext.build(WithHiresCfg(prompt="cat", hires_cfg=4.5, seed=1))
    assert ", Hires CFG: 4.5" in text
    assert paste.read(text, params_type=WithHiresCfg).values["hires_cfg"] == 4.5
    # the UI: the tab layout does not place it, so it gets its widget
    with gr.Blocks():
        extra = unplaced_widgets(WithHiresCfg, set(PLACED), "txt2img")
        without = unplaced_widgets(Txt2Img, set(PLACED), "txt2img")
    assert set(extra) - set(without) == {"hires_cfg"} and extra["hires_cfg"].label == "Hires CFG"
    assert (extra["hires_cfg"].minimum, extra["hires_cfg"].maximum) == (0.0, 30.0)
    # X/Y/Z axes and Prompts from file
    axes = {axis.label: axis for axis in plugin_api.parameter_axes(WithHiresCfg)}
    assert axes["Hires CFG"].field == "hires_cfg" and not axes["Hires CFG"].img2img
    with pytest.raises(InvalidParameter):
        axes["Hires CFG"].check(99.0)
    assert plugin_api.parameter_types(WithHiresCfg)["hires_cfg"] is float
    # a checkpoint's metadata may set its default
    defaults = read_defaults({"webui.default_params": '{"hires_cfg": 3}'}, 64, params_type=WithHiresCfg)
    assert defaults.hires_cfg == 3.0


def test_the_api_keeps_a1111s_own_defaults_where_they_differ_from_the_ui() -> None:
    txt2img = request_for(Txt2Img)().to_params(1)
    assert (txt2img.steps, txt2img.sampler_name, txt2img.scheduler) == (50, "Euler", "Automatic")
    img2img = request_for(Img2Img)(init_images=[png_base64("red")]).to_params(1)
    assert (img2img.inpaint_full_res, img2img.inpaint_full_res_padding, img2img.inpainting_fill) == (
        True,
        0,
        0,
    )
    assert (Img2Img().inpaint_full_res, Img2Img().inpaint_full_res_padding, Img2Img().inpainting_fill) == (
        False, 32, 1,
    )  # fmt: skip


def test_a_declared_field_no_layout_places_gets_its_widget_in_the_real_tab(
    tmp_path: Path, tiny_sd1_file: Path
) -> None:
    app = make_app(make_data_dir(tmp_path / "data", tiny_sd1_file))
    try:
        with gr.Blocks():
            tab = build_generation_tab(app.services, "txt2img", params_type=WithHiresCfg)
            plain = build_generation_tab(app.services, "img2img", params_type=Txt2Img)
    finally:
        app.jobs.stop()
    slider = tab.controls["hires_cfg"]
    assert isinstance(slider, gr.Slider) and slider.label == "Hires CFG"
    assert (slider.minimum, slider.maximum, slider.step) == (0.0, 30.0, 0.5)
    assert "hires_cfg" not in plain.controls
    # every declared field with a widget is a control of the tab, placed or not
    assert {f.name for f in schema.fields(WithHiresCfg) if f.spec.ui} <= set(tab.controls)
