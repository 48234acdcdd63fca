"""What the job queue carries and hands back: a generation request, checkpoint and VAE switches, and a
generation's result. Plain data, so a queue can store or ship it."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from webui.core.params import GenerationParams, Img2Img


@dataclass(frozen=True)
class Result:
    """What one finished job hands back: images in order, each with its infotext and seed."""

    params: GenerationParams  # with the seed resolved (never -1)
    images: tuple[Image.Image, ...]
    infotexts: tuple[str, ...]
    seeds: tuple[int, ...]
    subseeds: tuple[int, ...] = ()  # each image's variation seed (A1111's all_subseeds)
    paths: tuple[str, ...] = field(default=())  # saved files, empty when not saved
    index_of_first_image: int = 0  # images before it are grids (A1111's batch grid, shown first)
    interrupted: bool = False
    warnings: tuple[str, ...] = ()  # things the user asked for that were skipped (e.g. an unfit LoRA)
    # The checkpoint and VAE that made the images (None: not known, e.g. a script's own result).
    sd_model_name: str | None = None
    sd_model_hash: str | None = None
    sd_vae_name: str | None = None  # None also when the checkpoint's own VAE ran
    sd_vae_hash: str | None = None


@dataclass(frozen=True)
class Request:
    """A queued job: what to generate plus what to do with it. Plain data, so a queue could ship it."""

    params: GenerationParams
    save_images: bool = True

    @property
    def kind(self) -> str:
        """The outputs folder kind and the progress label: "txt2img" or "img2img"."""
        return "img2img" if isinstance(self.params, Img2Img) else "txt2img"


@dataclass(frozen=True)
class SwitchCheckpoint:
    """A queued checkpoint change: it waits for the running generation instead of pulling its model away."""

    title: str


@dataclass(frozen=True)
class SwitchVae:
    """A queued "SD VAE" change (Automatic, None or a file name), queued like a checkpoint change."""

    choice: str
