"""ControlNet units in the infotext (sd-webui-controlnet's "ControlNet N" entries) and ControlUnit checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from webui.core import controlnet_infotext, infotext
from webui.core.control_unit import (
    CONTROL_MODES,
    CONTROL_RESIZE_MODES,
    ControlUnit,
    control_mode_name,
    control_resize_mode_name,
)
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img

IMAGE = Image.new("RGB", (8, 8))
CANNY = ControlUnit(
    module="canny",
    model="control_v11p_sd15_canny [d14c016b]",
    weight=0.75,
    image=IMAGE,
    resize_mode="Resize and Fill",
    processor_res=512,
    threshold_a=100.0,
    threshold_b=200.0,
    guidance_start=0.1,
    guidance_end=0.9,
    pixel_perfect=True,
    control_mode="My prompt is more important",
)
# what sd-webui-controlnet 1.1.4xx writes (with fields this version does not have)
A1111_ENTRY = (
    "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, Resize Mode: Crop and Resize, "
    "Low Vram: False, Processor Res: 512, Threshold A: 100, Threshold B: 200, Guidance Start: 0, "
    "Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced, Hr Option: Both, Save Detected Map: True"
)


def without_image(unit: ControlUnit) -> ControlUnit:
    return unit.replace(image=None)


def test_entry_text_is_sd_webui_controlnets_format() -> None:
    assert controlnet_infotext.serialize(CANNY) == (
        "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.75, "
        "Resize Mode: Resize and Fill, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, "
        "Guidance Start: 0.1, Guidance End: 0.9, "
        "Pixel Perfect: True, Control Mode: My prompt is more important"
    )


def test_infotext_line_quotes_the_entry_and_numbers_units_by_place() -> None:
    units = (ControlUnit(enabled=False), CANNY)
    text = infotext.build(
        Txt2Img(prompt="a cat", control_units=units), extra=controlnet_infotext.entries(units)
    )
    assert ', ControlNet 1: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.75,' in text
    assert "ControlNet 0" not in text


def test_round_trip_through_the_infotext_keeps_each_unit_at_its_index() -> None:
    units = (CANNY, ControlUnit(enabled=False), CANNY.replace(module="none", model="depth", weight=1.5))
    text = infotext.build(Txt2Img(control_units=units), extra=controlnet_infotext.entries(units))
    parsed = infotext.to_params(infotext.parse(text)).control_units
    assert parsed == (without_image(units[0]), ControlUnit(enabled=False), without_image(units[2]))


def test_hidden_sliders_minus_one_are_left_out() -> None:
    text = controlnet_infotext.serialize(ControlUnit(module="none", model="m"))
    assert "Processor Res" not in text and "Threshold" not in text
    assert text.startswith(
        "Module: none, Model: m, Weight: 1.0, Resize Mode: Crop and Resize, Guidance Start"
    )


def test_sd_webui_controlnet_entry_parses_and_unknown_keys_are_skipped() -> None:
    unit = controlnet_infotext.parse_unit(A1111_ENTRY)
    assert unit == ControlUnit(
        module="canny",
        model="control_v11p_sd15_canny [d14c016b]",
        weight=1.0,
        resize_mode="Crop and Resize",
        processor_res=512,
        threshold_a=100.0,
        threshold_b=200.0,
        guidance_start=0.0,
        guidance_end=1.0,
    )


def test_a_value_with_a_comma_cannot_be_written_and_is_left_out() -> None:
    assert controlnet_infotext.entries([CANNY.replace(model="weird, name")]) == {}


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ("Module: canny, Weight: heavy", "Weight"),
        ("Module: canny, Pixel Perfect: maybe", "Pixel Perfect"),
        ("Module: canny, Control Mode: Loud", "Control Mode"),
        ("Module canny", "Module canny"),
    ],
)
def test_bad_entries_name_the_key(entry: str, names: str) -> None:
    with pytest.raises(InvalidParameter, match=names):
        infotext.to_params({"ControlNet 0": entry})


def test_absurd_unit_index_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="at most"):
        controlnet_infotext.units_from_fields({"ControlNet 9999": "Module: none"})


def test_mode_names_from_labels_integers_and_aliases() -> None:
    assert [control_mode_name(i) for i in range(3)] == list(CONTROL_MODES)
    assert [control_resize_mode_name(i) for i in range(3)] == list(CONTROL_RESIZE_MODES)
    assert control_resize_mode_name(3) == "Just Resize"  # img2img's latent upscale
    assert control_resize_mode_name("Envelope (Outer Fit)") == "Resize and Fill"
    with pytest.raises(InvalidParameter, match="control_mode"):
        control_mode_name(3)
    with pytest.raises(InvalidParameter, match="resize_mode"):
        control_resize_mode_name("Stretch")


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (ControlUnit(image=IMAGE), "choose a ControlNet model"),
        (ControlUnit(model="m"), "needs an image"),
        (ControlUnit(model="m", use_img2img_input=True), "img2img input, but there is none"),
        (ControlUnit(model="m", image=IMAGE, weight=2.5), "weight"),
        (ControlUnit(model="m", image=IMAGE, guidance_start=0.5, guidance_end=0.5), "guidance_start"),
        (ControlUnit(model="m", image=IMAGE, processor_res=10), "processor_res"),
        (ControlUnit(model="m", image=IMAGE, control_mode="Loud"), "control_mode"),
    ],
)
def test_enabled_units_are_validated_with_their_index(unit: ControlUnit, message: str) -> None:
    with pytest.raises(InvalidParameter, match=f"unit 1.*{message}"):
        Txt2Img(control_units=(ControlUnit(enabled=False), unit)).validate()


def test_disabled_units_and_the_img2img_input_pass() -> None:
    Txt2Img(control_units=(ControlUnit(enabled=False, weight=9.0),)).validate()
    Img2Img(init_images=(IMAGE,), control_units=(ControlUnit(model="m", use_img2img_input=True),)).validate()


numbers = st.floats(min_value=0, max_value=2, allow_nan=False).map(lambda x: round(x, 3))
units = st.builds(
    ControlUnit,
    module=st.sampled_from(["none", "canny", "invert (from white bg & black line)", "depth_midas"]),
    model=st.from_regex(r"[A-Za-z0-9_\-\. ]{0,20}\[[0-9a-f]{8}\]", fullmatch=True),
    weight=numbers,
    resize_mode=st.sampled_from(CONTROL_RESIZE_MODES),
    processor_res=st.integers(64, 2048) | st.just(-1),
    threshold_a=numbers,
    threshold_b=numbers | st.just(-1.0),
    pixel_perfect=st.booleans(),
    control_mode=st.sampled_from(CONTROL_MODES),
)


@given(st.lists(units, min_size=1, max_size=4))
def test_any_units_survive_the_round_trip(generated: list[ControlUnit]) -> None:
    text = infotext.build(Txt2Img(), extra=controlnet_infotext.entries(generated))
    assert infotext.to_params(infotext.parse(text)).control_units == tuple(
        u.replace(model=u.model.strip()) for u in generated
    )
