"""A1111 clients send null for fields whose A1111 default is None; each reads as A1111 reads it."""

from __future__ import annotations

from webui.api.models import Txt2ImgRequest


def params(**body: object):
    return Txt2ImgRequest(prompt="x", **body).to_params(default_clip_skip=1)


def test_null_refiner_switch_without_a_refiner_is_the_default() -> None:
    assert params(refiner_switch_at=None).refiner_switch_at == 0.8
    assert params(refiner_switch_at=None, refiner_checkpoint="None").refiner_switch_at == 0.8


def test_null_refiner_switch_with_a_refiner_switches_at_once() -> None:
    # A1111 skips its "completed < switch_at" test when switch_at is None: the refiner takes the first step
    got = params(refiner_switch_at=None, refiner_checkpoint="other.safetensors")
    assert (got.refiner_checkpoint, got.refiner_switch_at) == ("other.safetensors", 0.0)


def test_a_sent_switch_point_is_kept() -> None:
    assert params(refiner_switch_at=0.6, refiner_checkpoint="other").refiner_switch_at == 0.6
