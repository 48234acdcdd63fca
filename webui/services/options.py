"""The options one job runs with: typed and frozen, read from the settings once when the job starts (with
its override_settings applied), so the engine and the saver never read a setting that changes under them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webui.engine.sampling.noise import NoiseOptions
from webui.services.settings import Settings

OUTPUT_KINDS = ("txt2img", "img2img", "txt2img-grids", "img2img-grids")


@dataclass(frozen=True)
class ModelOptions:
    """What the model manager is configured with for a job."""

    sd_vae: str  # "Automatic", "None" or a VAE file name
    vae_tiling_threshold: int
    checkpoints_limit: int  # checkpoints kept on the device (sd_checkpoints_limit)
    keep_in_cpu: bool  # the others kept in RAM (sd_checkpoints_keep_in_cpu)
    checkpoint_cache: int = 0  # more checkpoints kept in RAM (sd_checkpoint_cache)
    torch_threads: int = 0  # CPU threads; 0 = chosen by the model's size (torch_threads)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelOptions:
        return cls(
            sd_vae=settings.get("sd_vae"),
            vae_tiling_threshold=settings.get("vae_tiling_threshold"),
            checkpoints_limit=settings.get("sd_checkpoints_limit"),
            keep_in_cpu=settings.get("sd_checkpoints_keep_in_cpu"),
            checkpoint_cache=settings.get("sd_checkpoint_cache"),
            torch_threads=settings.get("torch_threads"),
        )


@dataclass(frozen=True)
class SaveOptions:
    """How images are written (A1111's "Saving images/grids" options)."""

    fmt: str
    save_txt: bool
    quality: int
    lossless: bool
    pattern: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SaveOptions:
        return cls(
            fmt=settings.get("samples_format"),
            save_txt=settings.get("save_txt"),
            quality=settings.get("jpeg_quality"),
            lossless=settings.get("webp_lossless"),
            pattern=settings.get("samples_filename_pattern"),
        )


@dataclass(frozen=True)
class JobOptions:
    """Everything a generation job reads from the settings."""

    model: ModelOptions
    save: SaveOptions
    noise: NoiseOptions
    save_samples: bool  # samples_save
    save_grids: bool  # grid_save
    preview_period: int  # steps between live previews; -1: at the end of each batch, 0: none
    output_dirs: tuple[tuple[str, Path], ...]  # kind → folder, relative ones already under the data dir

    @classmethod
    def from_settings(cls, settings: Settings, data_dir: Path) -> JobOptions:
        return cls(
            model=ModelOptions.from_settings(settings),
            save=SaveOptions.from_settings(settings),
            noise=noise_options(settings),
            save_samples=settings.get("samples_save"),
            save_grids=settings.get("grid_save"),
            preview_period=settings.get("show_progress_every_n_steps")
            if settings.get("live_previews_enable")
            else 0,
            output_dirs=tuple((kind, output_dir(settings, kind, data_dir)) for kind in OUTPUT_KINDS),
        )

    def output_dir(self, kind: str) -> Path:
        return dict(self.output_dirs)[kind]


def output_dir(settings: Settings, kind: str, data_dir: Path) -> Path:
    """The folder for `kind` images; a relative setting is under the data folder."""
    path = Path(settings.output_dir(kind)).expanduser()
    return path if path.is_absolute() else data_dir / path


def noise_options(settings: Settings) -> NoiseOptions:
    return NoiseOptions(
        randn_source=settings.get("randn_source"),
        eta_noise_seed_delta=settings.get("eta_noise_seed_delta"),
        eta_ddim=settings.get("eta_ddim"),
        eta_ancestral=settings.get("eta_ancestral"),
    )
