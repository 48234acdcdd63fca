"""A1111's JSON shapes of our lists (webui/api/shapes.py), as A1111's /sdapi/v1 routes answer them."""

from __future__ import annotations

from webui.api import shapes
from webui.core import samplers


def test_samplers_as_a1111_lists_them() -> None:
    assert shapes.sampler_item(samplers.find_sampler("Euler a")) == {
        "name": "Euler a",
        "aliases": ["k_euler_a", "k_euler_ancestral"],
        "options": {},
    }
    assert shapes.sampler_item(samplers.find_sampler("DPM++ 2M"))["options"] == {"scheduler": "karras"}


def test_schedule_types_as_a1111_lists_them() -> None:
    sgm = next(s for s in samplers.SCHEDULE_TYPES if s.name == "sgm_uniform")
    assert shapes.schedule_item(sgm) == {
        "name": "sgm_uniform",
        "label": "SGM Uniform",
        "aliases": ["SGMUniform"],
    }
    automatic = next(s for s in samplers.SCHEDULE_TYPES if s.name == "automatic")
    assert shapes.schedule_item(automatic)["aliases"] is None  # A1111 answers null, not []
