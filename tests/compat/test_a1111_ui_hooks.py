"""The A1111 hooks that watch our page being built (webui/compat/a1111/ui_hooks.py): before_ui, the
on_before_component / on_after_component callbacks, Script.after_component and a script's
on_after_component(…, elem_id=…), as the fixture "Ratio buttons" (an aspect-ratio-helper style
extension) uses them to wire its buttons to our width and height sliders."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def page(compat_app):
    from webui.ui.blocks import build_ui

    return build_ui(compat_app.services)


def ratio_script(app):
    return next(loaded.script for loaded in app.plugins.scripts if loaded.script.title() == "Ratio buttons")


def by_elem_id(page, elem_id):
    return next(block for block in page.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def click_handler(page, button):
    """The function and the inputs/outputs of the button's click event."""
    for fn in page.fns.values():
        if any(target[0] == button._id and target[1] == "click" for target in fn.targets):
            return fn
    raise AssertionError(f"nothing listens to clicks on {button.elem_id}")


def test_before_ui_runs_first_and_the_callbacks_see_the_whole_page(compat_app, page):
    events = sys.modules[type(ratio_script(compat_app)).__module__].PAGE_EVENTS
    assert events[0] == ("before_ui", None)
    assert [event for event in events if event[0] == "before_ui"] == [("before_ui", None)]
    before = [elem_id for kind, elem_id in events if kind == "before"]
    after = [elem_id for kind, elem_id in events if kind == "after"]
    for elem_id in ("txt2img_width", "img2img_height", "notes_tab_text", "txt2img_ratio_buttons"):
        assert elem_id in before and elem_id in after
    assert events.index(("before", "txt2img_width")) < events.index(("after", "txt2img_width"))


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_ratio_buttons_are_wired_to_the_tab_size_sliders(compat_app, page, tab):
    script = ratio_script(compat_app)
    width, height = by_elem_id(page, f"{tab}_width"), by_elem_id(page, f"{tab}_height")
    assert script.sizes[f"{tab}_width"] is width and script.sizes[f"{tab}_height"] is height
    handler = click_handler(page, by_elem_id(page, f"{tab}_ratio_2_1"))
    assert [block._id for block in handler.inputs] == [width._id, height._id]
    assert [block._id for block in handler.outputs] == [width._id, height._id]
    assert handler.fn(512, 320) == (640, 320)


def test_on_after_component_by_elem_id_finds_the_cfg_slider(compat_app, page):
    cfg = by_elem_id(page, "txt2img_cfg_scale")
    handler = click_handler(page, by_elem_id(page, "txt2img_ratio_reset_cfg"))
    assert [block._id for block in handler.outputs] == [cfg._id]
    assert handler.fn() == 7


def test_components_made_outside_the_page_build_are_not_reported(compat_app, page):
    import gradio as gr

    events = sys.modules[type(ratio_script(compat_app)).__module__].PAGE_EVENTS
    count = len(events)
    with gr.Blocks():
        gr.Slider(elem_id="txt2img_width")
    assert len(events) == count
