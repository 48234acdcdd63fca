"""A checkpoint's default size, steps, CFG and CFG Rescale from its safetensors metadata."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from tools.tiny_models import save_tiny_checkpoint
from webui.engine.checkpoints.loader import load_checkpoint
from webui.engine.checkpoints.model_defaults import GenerationDefaults, read_defaults


def test_without_metadata_the_native_size_and_the_usual_steps_and_cfg() -> None:
    assert read_defaults({}, 768) == GenerationDefaults(width=768, height=768, steps=20, cfg_scale=7.0)


def test_modelspec_resolution_sets_width_and_height() -> None:
    assert read_defaults({"modelspec.resolution": "640x448"}, 512) == GenerationDefaults(
        width=640, height=448
    )


def test_webui_params_win_over_the_resolution() -> None:
    metadata = {
        "modelspec.resolution": "1024x1024",
        "webui.default_params": json.dumps(
            {"width": 64, "height": 96, "steps": 12, "cfg_scale": 5, "cfg_rescale": 0.7}
        ),
    }
    expected = GenerationDefaults(width=64, height=96, steps=12, cfg_scale=5.0, cfg_rescale=0.7)
    assert read_defaults(metadata, 1024) == expected


def test_a_subset_of_params_keeps_the_rest() -> None:
    metadata = {"modelspec.resolution": "64x64", "webui.default_params": '{"steps": 30}'}
    assert read_defaults(metadata, 512) == GenerationDefaults(width=64, height=64, steps=30, cfg_scale=7.0)


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"modelspec.resolution": "huge"}, "not '<width>x<height>'"),
        ({"modelspec.resolution": "65x64"}, "width must be a multiple of 8, got 65"),
        ({"modelspec.resolution": "64x4096"}, "height must be between 64 and 2048, got 4096"),
        ({"webui.default_params": "{width: 64"}, "not JSON"),
        ({"webui.default_params": "[64]"}, "not a JSON object"),
        ({"webui.default_params": '{"steps": 0}'}, "steps must be between 1 and 150, got 0"),
        ({"webui.default_params": '{"steps": 2.5}'}, "steps must be a whole number, got 2.5"),
        ({"webui.default_params": '{"cfg_scale": "high"}'}, "cfg_scale must be a number, got 'high'"),
        ({"webui.default_params": '{"width": true}'}, "width must be a number, got True"),
        ({"webui.default_params": '{"cfg_rescale": 1.5}'}, "cfg_rescale must be between 0 and 1, got 1.5"),
        ({"webui.default_params": '{"seed": 5}'}, "names seed; a checkpoint may set"),
    ],
)
def test_broken_entries_are_named_in_the_log_and_ignored(
    metadata: dict[str, str], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert read_defaults(metadata, 512, "odd.safetensors") == GenerationDefaults()
    assert "odd.safetensors" in caplog.text and named in caplog.text


def test_the_loader_reads_them_from_the_file(tmp_path: Path) -> None:
    metadata = {"modelspec.resolution": "64x64", "webui.default_params": '{"steps": 8, "cfg_scale": 4.5}'}
    path = save_tiny_checkpoint(tmp_path / "small.safetensors", "sd1", metadata=metadata)
    loaded = load_checkpoint(path, torch.device("cpu"), torch.float32)
    assert loaded.defaults == GenerationDefaults(width=64, height=64, steps=8, cfg_scale=4.5)
    plain = load_checkpoint(
        save_tiny_checkpoint(tmp_path / "plain.safetensors", "sdxl"), torch.device("cpu"), torch.float32
    )
    assert plain.defaults == GenerationDefaults(width=1024, height=1024)
