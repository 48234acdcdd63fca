"""VAE files (webui.engine.checkpoints.vae) through the ModelManager on the tiny SD1 checkpoint: the "SD VAE"
choices, the three file layouts, exact restoring of the checkpoint's own VAE, refusals, and the infotext.

The other VAE is the tiny SD1 VAE built with another seed: same shapes, other weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

from tools.tiny_models import TinyCheckpoint, tiny_pipeline
from webui.core import infotext
from webui.core.errors import ModelLoadError, ModelNotFound
from webui.core.hashing import HashCache, sha256_file
from webui.core.params import Txt2Img
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.vae import VaeRegistry
from webui.engine.sampling import generate
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LATENT = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def other_vae() -> AutoencoderKL:
    return tiny_pipeline("sd1", seed=1).vae


def ldm_vae(vae: AutoencoderKL, prefix: str) -> dict[str, torch.Tensor]:
    tensors = vae.state_dict()
    return L.to_ldm(tensors, L.vae_layout(tensors, prefix))


def write_vae(path: Path, vae: AutoencoderKL, layout: str) -> Path:
    """`layout`: "a1111" (LDM names without prefix), "checkpoint" (with first_stage_model.), "diffusers",
    "ckpt" (A1111-style pickle with a state_dict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "diffusers":
        save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, path)
    elif layout == "ckpt":
        torch.save({"state_dict": ldm_vae(vae, ""), "global_step": 840000}, path)
    else:
        save_file(ldm_vae(vae, L.VAE_PREFIX if layout == "checkpoint" else ""), path)
    return path


def vae_manager(
    make_manager: Callable[..., ModelManager], folder: Path, checkpoint: TinyCheckpoint
) -> ModelManager:
    hashes = HashCache(folder / "cache.json")
    return make_manager(folder, checkpoint, hashes=hashes, vaes=VaeRegistry(folder / "VAE", hashes))


@torch.no_grad()
def decode(vae: AutoencoderKL) -> torch.Tensor:
    return vae.decode(LATENT).sample


def test_vae_file_in_each_layout_replaces_the_decoder_and_none_restores_it_exactly(
    tmp_path: Path,
    tiny_sd1: TinyCheckpoint,
    other_vae: AutoencoderKL,
    make_manager: Callable[..., ModelManager],
) -> None:
    manager = vae_manager(make_manager, tmp_path, tiny_sd1)
    safetensors = ".safetensors"
    layouts = {"a1111": safetensors, "checkpoint": safetensors, "diffusers": safetensors, "ckpt": ".pt"}
    for layout, suffix in layouts.items():
        write_vae(tmp_path / "VAE" / f"{layout}{suffix}", other_vae, layout)
    manager.vaes.refresh()
    loaded = manager.get()
    own_weights = {k: v.clone() for k, v in loaded.pipe.vae.state_dict().items()}
    own_image, wanted = decode(loaded.pipe.vae), decode(other_vae)
    assert not torch.allclose(own_image, wanted, atol=1e-3)

    for layout, suffix in layouts.items():
        manager.set_vae(f"{layout}{suffix}")
        assert manager.vae_in_use(loaded).name == f"{layout}{suffix}"
        assert torch.equal(decode(loaded.pipe.vae), wanted), layout
        manager.set_vae("None")
        assert manager.vae_in_use(loaded) is None
        assert torch.equal(decode(loaded.pipe.vae), own_image), layout

    restored = loaded.pipe.vae.state_dict()
    assert all(torch.equal(restored[k], v) for k, v in own_weights.items())


def test_choices_name_the_files(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, other_vae, make_manager: Callable[..., ModelManager]
) -> None:
    manager = vae_manager(make_manager, tmp_path, tiny_sd1)
    path = write_vae(tmp_path / "VAE" / "sub" / "vae-ft-mse.safetensors", other_vae, "a1111")
    manager.vaes.refresh()
    assert manager.vaes.choices() == ["Automatic", "None", "vae-ft-mse.safetensors"]
    assert [(f.name, f.path) for f in manager.vaes.files] == [("vae-ft-mse.safetensors", path.resolve())]


def test_wrong_shape_vae_is_refused_by_name_and_the_old_one_stays(
    tmp_path: Path,
    tiny_sd1: TinyCheckpoint,
    other_vae: AutoencoderKL,
    make_manager: Callable[..., ModelManager],
) -> None:
    manager = vae_manager(make_manager, tmp_path, tiny_sd1)
    good = write_vae(tmp_path / "VAE" / "good.safetensors", other_vae, "a1111")
    wide = ldm_vae(other_vae, "")
    wide["decoder.conv_out.weight"] = torch.zeros(3, 16, 3, 3)
    save_file(wide, tmp_path / "VAE" / "wide.safetensors")
    encoder_only = {k: v for k, v in ldm_vae(other_vae, "").items() if k.startswith("encoder.")}
    save_file(encoder_only, tmp_path / "VAE" / "half.safetensors")
    manager.vaes.refresh()
    loaded = manager.get()
    manager.set_vae(good.name)
    before = decode(loaded.pipe.vae)

    with pytest.raises(ModelLoadError, match=r"wide\.safetensors.*decoder\.conv_out\.weight.*shape"):
        manager.set_vae("wide.safetensors")
    with pytest.raises(ModelLoadError, match=r"half\.safetensors.*missing"):
        manager.set_vae("half.safetensors")
    with pytest.raises(ModelNotFound, match="nowhere.safetensors"):
        manager.set_vae("nowhere.safetensors")
    assert manager.vae_in_use(loaded).name == "good.safetensors"
    assert torch.equal(decode(loaded.pipe.vae), before)
    # the remembered choice is still the good one: a later get() keeps it
    assert manager.vae_in_use(manager.get()).name == "good.safetensors"


def test_automatic_takes_the_sidecar_beside_the_checkpoint(
    tmp_path: Path,
    tiny_sd1: TinyCheckpoint,
    other_vae: AutoencoderKL,
    make_manager: Callable[..., ModelManager],
) -> None:
    manager = vae_manager(make_manager, tmp_path, tiny_sd1)
    loaded = manager.get(tiny_sd1.path.name)
    own_image = decode(loaded.pipe.vae)
    assert manager.vae_in_use(loaded) is None  # no sidecar yet: the checkpoint's own

    sidecar = tmp_path / "models" / f"{tiny_sd1.path.stem}.vae.safetensors"
    write_vae(sidecar, other_vae, "a1111")
    loaded = manager.get(tiny_sd1.path.name)  # Automatic is the default
    assert manager.vae_in_use(loaded).path == sidecar
    assert torch.equal(decode(loaded.pipe.vae), decode(other_vae))

    manager.set_vae("None")
    assert manager.vae_in_use(loaded) is None
    assert torch.equal(decode(loaded.pipe.vae), own_image)


def test_infotext_names_the_vae_and_its_hash(
    tmp_path: Path,
    tiny_sd1: TinyCheckpoint,
    other_vae: AutoencoderKL,
    make_manager: Callable[..., ModelManager],
) -> None:
    manager = vae_manager(make_manager, tmp_path, tiny_sd1)
    path = write_vae(tmp_path / "VAE" / "my-vae.safetensors", other_vae, "a1111")
    params = Txt2Img(prompt="a cube", steps=1, cfg_scale=1.0, seed=3, width=64, height=64)

    plain = infotext.parse(generate.run(params, manager, Job(None, "txt2img", time.monotonic)).infotexts[0])
    assert "VAE" not in plain and "VAE hash" not in plain  # the checkpoint's own VAE is not named

    manager.set_vae("my-vae.safetensors")
    fields = infotext.parse(generate.run(params, manager, Job(None, "txt2img", time.monotonic)).infotexts[0])
    assert fields["VAE"] == "my-vae.safetensors"
    assert fields["VAE hash"] == sha256_file(path)[:10]
