from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from webui.core.cmd_args import (
    REPO_ROOT,
    parse_args,
    parse_gradio_auth,
    paths_from_args,
    server_name,
    uses_cpu,
)


@pytest.mark.parametrize(
    ("argv", "attribute", "expected"),
    [
        (["--port", "7861"], "port", 7861),
        (["--listen"], "listen", True),
        (["--share"], "share", True),
        (["--gradio-auth", "me:secret"], "gradio_auth", "me:secret"),
        (["--api"], "api", True),
        (["--nowebui"], "nowebui", True),
        (["--ckpt", "a/b.safetensors"], "ckpt", "a/b.safetensors"),
        (["--ckpt-dir", "ck"], "ckpt_dir", "ck"),
        (["--lora-dir", "lo"], "lora_dir", "lo"),
        (["--vae-dir", "va"], "vae_dir", "va"),
        (["--embeddings-dir", "em"], "embeddings_dir", "em"),
        (["--controlnet-dir", "cn"], "controlnet_dir", "cn"),
        (["--data-dir", "dd"], "data_dir", "dd"),
        (["--use-cpu", "all"], "use_cpu", ["all"]),
        (["--use-cpu", "SD", "interrogate"], "use_cpu", ["sd", "interrogate"]),
        (["--no-half"], "no_half", True),
        (["--no-half-vae"], "no_half_vae", True),
        (["--precision", "full"], "precision", "full"),
        (["--medvram"], "medvram", True),
        (["--lowvram"], "lowvram", True),
        (["--skip-install"], "skip_install", True),
        (["--server-name", "example.local"], "server_name", "example.local"),
        (["--device-id", "1"], "device_id", "1"),
    ],
)
def test_each_flag_is_parsed(argv: list[str], attribute: str, expected: object) -> None:
    assert getattr(parse_args(argv), attribute) == expected
    assert getattr(parse_args([]), attribute) != expected


def test_defaults_follow_a1111() -> None:
    args = parse_args([])
    assert (args.port, args.precision, args.use_cpu, args.gradio_auth) == (7860, "autocast", [], None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "between 1 and 65535"),
        (["--port", "http"], "whole number"),
        (["--precision", "fp8"], "invalid choice"),
        (["--gradio-auth", "nopassword"], "username:password"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_values_stop_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_gradio_auth_pairs() -> None:
    assert parse_gradio_auth("u1:p1, u2:p:2,") == (("u1", "p1"), ("u2", "p:2"))
    for bad in ("", ",", ":nouser", "user"):
        with pytest.raises(ValueError):
            parse_gradio_auth(bad)


def test_server_name_precedence() -> None:
    assert server_name(parse_args([])) == "127.0.0.1"
    assert server_name(parse_args(["--listen"])) == "0.0.0.0"
    assert server_name(parse_args(["--listen", "--server-name", "box"])) == "box"


def test_uses_cpu() -> None:
    assert uses_cpu(parse_args(["--use-cpu", "all"]), "sd")
    assert uses_cpu(parse_args(["--use-cpu", "sd"]), "SD")
    assert not uses_cpu(parse_args(["--use-cpu", "interrogate"]), "sd")
    assert not uses_cpu(parse_args([]), "sd")


def test_default_paths_live_in_the_repository() -> None:
    paths = paths_from_args(parse_args([]))
    assert paths.data_dir == REPO_ROOT
    assert (REPO_ROOT / "webui" / "core" / "cmd_args.py").is_file()
    assert paths.ckpt_dir == REPO_ROOT / "models" / "Stable-diffusion"
    assert paths.lora_dir == REPO_ROOT / "models" / "Lora"
    assert paths.vae_dir == REPO_ROOT / "models" / "VAE"
    assert paths.embeddings_dir == REPO_ROOT / "models" / "embeddings"
    assert paths.controlnet_dir == REPO_ROOT / "models" / "ControlNet"
    assert paths.outputs_dir == REPO_ROOT / "outputs"
    assert paths.config_file == REPO_ROOT / "config.json"
    assert paths.cache_file == REPO_ROOT / "cache.json"


def test_data_dir_moves_everything_and_folder_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = paths_from_args(parse_args(["--data-dir", "data", "--lora-dir", "/elsewhere/loras"]))
    data = tmp_path.resolve() / "data"
    assert paths.data_dir == data
    assert paths.models_dir == data / "models"
    assert paths.ckpt_dir == data / "models" / "Stable-diffusion"
    assert paths.lora_dir == Path("/elsewhere/loras")
    assert paths.outputs_dir == data / "outputs"
    assert paths.config_file == data / "config.json"


def test_paths_are_frozen() -> None:
    paths = paths_from_args(parse_args([]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        paths.data_dir = Path("/")  # type: ignore[misc]
