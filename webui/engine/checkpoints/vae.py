"""VAE files: listing them, choosing one for a checkpoint ("SD VAE"), and swapping the weights in place.

A VAE file may be in the LDM layout with or without the `first_stage_model.` prefix (A1111's VAE files
have none; a whole checkpoint has it) or in the diffusers layout. Swapping copies the file's tensors into
the checkpoint's existing AutoencoderKL; the checkpoint's own VAE weights are kept in RAM meanwhile, so
choosing "None" (or another checkpoint's sidecar) later restores them exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from webui.core.errors import ModelLoadError, ModelNotFound
from webui.core.hashing import HashCache
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.weights_files import read_state_dict
from webui.engine.model_folders import model_files

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

log = logging.getLogger(__name__)

AUTOMATIC = "Automatic"  # the sidecar <checkpoint stem>.vae.* if there is one, else the checkpoint's own
NONE = "None"  # always the checkpoint's own VAE
VAE_SUFFIXES = (".safetensors", ".pt", ".ckpt")
SIDECAR_SUFFIXES = tuple(f".vae{suffix}" for suffix in VAE_SUFFIXES)
# Older diffusers files name the VAE's attention projections differently.
_OLD_DIFFUSERS_ATTENTION = {
    ".query.": ".to_q.",
    ".key.": ".to_k.",
    ".value.": ".to_v.",
    ".proj_attn.": ".to_out.0.",
}


@dataclass(frozen=True)
class VaeFile:
    path: Path
    name: str  # the file name: the "SD VAE" choice, the API's model_name and the infotext's "VAE"


class VaeRegistry:
    """The VAE files in `root` (searched recursively), then in `shipped` (the install's own); rescanned on
    refresh."""

    def __init__(self, root: Path | None, hashes: HashCache, shipped: Path | None = None) -> None:
        self.root = root
        self.shipped = shipped
        self.hashes = hashes
        self._files: tuple[VaeFile, ...] = ()
        self.refresh()

    def refresh(self) -> None:
        found: dict[str, VaeFile] = {}  # by name: the data dir's file wins over a shipped one
        for _, path in model_files(self.root, self.shipped):
            if path.suffix.lower() in VAE_SUFFIXES:
                found.setdefault(path.name, VaeFile(path=path, name=path.name))
        self._files = tuple(found.values())

    @property
    def files(self) -> tuple[VaeFile, ...]:
        return self._files

    def choices(self) -> list[str]:
        """What the "SD VAE" setting offers, as A1111: Automatic, None, then the files."""
        return [AUTOMATIC, NONE, *(f.name for f in self._files)]

    def check_choice(self, choice: str) -> None:
        """ModelNotFound unless `choice` is Automatic, None or a listed file."""
        if choice not in (AUTOMATIC, NONE):
            self.find(choice)

    def find(self, name: str) -> VaeFile:
        """The listed file named `name` (file name or full path); rescans once before giving up."""
        for rescan in (False, True):
            if rescan:
                self.refresh()
            for candidate in self._files:
                if name in (candidate.name, str(candidate.path)):
                    return candidate
        listed = ", ".join(f.name for f in self._files) or f"none in {self.root}"
        raise ModelNotFound(f"VAE {name!r} not found; available: {listed}")

    def resolve(self, choice: str, checkpoint: Path) -> VaeFile | None:
        """The file the setting `choice` means for `checkpoint`; None = the checkpoint's own VAE."""
        if choice == NONE:
            return None
        if choice != AUTOMATIC:
            return self.find(choice)
        stem = checkpoint.name.rsplit(".", 1)[0]
        for suffix in SIDECAR_SUFFIXES:
            sidecar = checkpoint.with_name(stem + suffix)
            if sidecar.is_file():
                return VaeFile(path=sidecar, name=sidecar.name)
        return None

    def short_hash(self, vae: VaeFile) -> str:
        """The infotext's "VAE hash": A1111's first 10 hex digits of the file's sha256."""
        return self.hashes.short_hash(vae.path)


@dataclass
class VaeState:
    """Which VAE a loaded checkpoint runs with; its own weights are kept here while another one is in."""

    file: VaeFile | None = None  # None: the checkpoint's own
    own: dict[str, torch.Tensor] = field(default_factory=dict)  # CPU copies, filled on the first swap


def _from_diffusers(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, tensor in sd.items():
        for old, new in _OLD_DIFFUSERS_ATTENTION.items():
            key = key.replace(old, new)
        if ".attentions." in key and tensor.ndim == 4:  # some old files keep the 1x1-conv shape
            tensor = tensor[:, :, 0, 0]
        renamed[key] = tensor
    return renamed


def vae_tensors(path: Path, model: AutoencoderKL) -> dict[str, torch.Tensor]:
    """The file's VAE tensors under the model's names, checked to fit it exactly (ModelLoadError if not)."""
    sd = read_state_dict(path)
    names = list(model.state_dict())
    if any(key.startswith("encoder.down_blocks.") for key in sd):
        wanted = set(names)
        tensors = {k: v for k, v in _from_diffusers(sd).items() if k in wanted}
        missing = [k for k in names if k not in tensors]
    else:
        prefix = L.VAE_PREFIX if any(key.startswith(L.VAE_PREFIX) for key in sd) else ""
        tensors, missing = L.from_ldm(sd, L.vae_layout(names, prefix))
    if missing:
        raise ModelLoadError(
            f"{path.name}: not a VAE for this model: {len(missing)} tensors missing, "
            f"e.g. {', '.join(missing[:3])}"
        )
    for key, wanted in model.state_dict().items():
        if tensors[key].shape != wanted.shape:
            raise ModelLoadError(
                f"{path.name}: does not fit this checkpoint's VAE: {key} has shape "
                f"{tuple(tensors[key].shape)}, the model needs {tuple(wanted.shape)}"
            )
    return tensors


@torch.no_grad()
def apply_vae(model: AutoencoderKL, state: VaeState, wanted: VaeFile | None) -> None:
    """Put `wanted`'s weights (None: the checkpoint's own) into `model`. On any error nothing changes."""
    if wanted == state.file:
        return
    if wanted is None:
        model.load_state_dict(state.own, strict=True)
        state.own, state.file = {}, None
        log.info("VAE: the checkpoint's own")
        return
    tensors = vae_tensors(wanted.path, model)  # checked before anything is touched
    if state.file is None:
        state.own = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    model.load_state_dict(tensors, strict=True)
    state.file = wanted
    log.info("VAE: %s", wanted.name)
