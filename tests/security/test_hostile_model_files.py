"""Model files whose pickles would run code (issue 21, item 13): refused as unsafe by name, no code runs,
and the server keeps serving. The files are written here, as an attacker would write them."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import torch

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "seed": 1}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RunsCode:
    """Unpickling this calls `function(argument)`: what a hostile model file does."""

    def __init__(self, function: Callable[[str], object], argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.function, (self.argument,)


def payloads(marker: Path) -> dict[str, tuple[RunsCode, str]]:
    """name → (payload creating `marker` if it ever ran, the function the refusal must name)."""
    return {
        "system": (RunsCode(os.system, f"touch {marker}"), "posix.system"),
        "eval": (RunsCode(eval, f"open({str(marker)!r}, 'w').close()"), "eval"),
    }


def write_hostile(path: Path, payload: RunsCode, how: str) -> None:
    tensors = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)}
    if how == "torch.save":
        torch.save({**tensors, "payload": payload}, path)
    else:  # a bare pickle of protocol 5: torch's safe loader stops at an opcode before naming the import
        with open(path, "wb") as handle:
            pickle.dump({"state_dict": {**tensors, "payload": payload}}, handle, protocol=5)


def txt2img(url: str, prompt: str) -> requests.Response:
    return requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, "prompt": prompt}, timeout=120)


CASES = [(kind, how) for kind in ("system", "eval") for how in ("torch.save", "pickle")]


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_hostile_lora_is_refused_as_unsafe(running_app, tmp_path: Path, kind: str, how: str) -> None:
    app, url = running_app
    marker = tmp_path / "pwned"
    payload, function = payloads(marker)[kind]
    lora_dir = app.paths.lora_dir
    lora_dir.mkdir(parents=True, exist_ok=True)
    path = lora_dir / f"evil_{kind}.pt"
    write_hostile(path, payload, how)
    try:
        requests.post(f"{url}/sdapi/v1/refresh-loras", timeout=10).raise_for_status()
        response = txt2img(url, f"a cat <lora:evil_{kind}:1>")
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert detail.startswith(f"evil_{kind}.pt: refused as unsafe: the file's pickle wants to run code")
        assert function in detail and "corrupt" not in detail
        assert not marker.exists()
        assert txt2img(url, "a cat").status_code == 200
    finally:
        path.unlink()
        requests.post(f"{url}/sdapi/v1/refresh-loras", timeout=10)


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_hostile_checkpoint_is_refused_as_unsafe(running_app, tmp_path: Path, kind: str, how: str) -> None:
    app, url = running_app
    marker = tmp_path / "pwned"
    payload, function = payloads(marker)[kind]
    before = app.current_checkpoint_title()
    path = app.paths.ckpt_dir / f"evil_{kind}.ckpt"
    write_hostile(path, payload, how)
    try:
        requests.post(f"{url}/sdapi/v1/refresh-checkpoints", timeout=10).raise_for_status()
        response = requests.post(
            f"{url}/sdapi/v1/options", json={"sd_model_checkpoint": path.name}, timeout=60
        )
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert f"{path.name}: refused as unsafe" in detail and function in detail
        assert "corrupt" not in detail
        assert not marker.exists()
        assert app.current_checkpoint_title() == before
        assert txt2img(url, "a cat").status_code == 200
    finally:
        path.unlink()
        app.refresh_checkpoints()


def test_random_bytes_are_still_called_unreadable(running_app) -> None:
    # The refusal names code only when the pickle parses whole: noise stays "not a readable checkpoint".
    app, url = running_app
    path = app.paths.ckpt_dir / "noise.ckpt"
    path.write_bytes(os.urandom(8192))
    try:
        requests.post(f"{url}/sdapi/v1/refresh-checkpoints", timeout=10).raise_for_status()
        response = requests.post(
            f"{url}/sdapi/v1/options", json={"sd_model_checkpoint": path.name}, timeout=60
        )
        assert response.status_code == 400
        assert "not a readable PyTorch checkpoint" in response.json()["detail"]
    finally:
        path.unlink()
        app.refresh_checkpoints()
