"""The table of user options, under A1111's option names: each option's type, default, limits or choices,
label and Settings section. The Settings tab and /sdapi/v1/options are generated from it, and
services/settings.py validates every stored value against it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from pathlib import PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Any

from webui.core.errors import InvalidParameter
from webui.services.outputs import IMAGE_FORMATS


@dataclass(frozen=True)
class Option:
    """One option; its type is the type of its default (bool, int, float, str, or tuple: a list of str)."""

    name: str
    default: Any
    label: str
    section: str
    _: KW_ONLY
    choices: tuple[Any, ...] | None = None  # fixed choices; options with run-time choices leave this None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def validate(self, value: Any) -> Any:
        """`value` converted to this option's type; InvalidParameter naming the option otherwise."""
        kind = self.type
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            # JSON and UI sliders may hand over 3.0 for 3.
            ok = not isinstance(value, bool) and (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            )
        elif kind is float:
            ok = not isinstance(value, bool) and isinstance(value, (int, float))
        elif kind is tuple:  # JSON has lists; kept as a tuple so values stay immutable
            ok = isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
        else:
            ok = isinstance(value, kind)
        if not ok:
            expected = "a list of strings" if kind is tuple else kind.__name__
            raise InvalidParameter(f"option {self.name} must be {expected}, got {value!r}")
        value = kind(value)
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(map(str, self.choices))
            raise InvalidParameter(f"option {self.name} must be one of {valid}; got {value!r}")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise InvalidParameter(
                f"option {self.name} must be between {self.minimum} and {self.maximum}, got {value}"
            )
        return value


@dataclass(frozen=True)
class PathOption(Option):
    """A folder under the data dir: relative, without "..", "~" or a drive, so no setting can make the
    server write (or, through gradio, serve) files elsewhere."""

    def validate(self, value: Any) -> Any:
        value = super().validate(value)
        parts = PureWindowsPath(value).parts  # splits on "/" and "\\" alike
        if (
            "\0" in value
            or value.startswith("~")
            or PurePosixPath(value).is_absolute()
            or PureWindowsPath(value).anchor
            or ".." in parts
        ):
            raise InvalidParameter(
                f"option {self.name} must be a folder inside the data dir, written relative to it "
                f"(like outputs/my-images), got {value!r}"
            )
        return value


_SAVING = "Saving images/grids"
_PATHS = "Paths for saving"
_SD = "Stable Diffusion"
_SAMPLER = "Sampler parameters"
_PREVIEWS = "Live previews"
_INFOTEXT = "Infotext"
_UI = "User interface"

OPTIONS: tuple[Option, ...] = (
    Option("samples_save", True, "Always save all generated images", _SAVING),
    Option(
        "save_incomplete_images",
        False,
        'Save incomplete images (interrupted or skipped; marked "Incomplete" in their infotext)',
        _SAVING,
    ),
    Option("samples_format", "png", "File format for images", _SAVING, choices=IMAGE_FORMATS),
    Option(
        "samples_filename_pattern",
        "",
        "Images filename pattern, e.g. [seed]-[prompt_words]; tokens: [seed] [steps] [cfg] [width] [height] "
        "[sampler] [scheduler] [model_name] [model_hash] [clip_skip] [denoising] [prompt] [prompt_words] "
        "[date] [datetime]; empty: [seed]",
        _SAVING,
    ),
    Option("save_txt", False, "Create a text file with infotext next to every image", _SAVING),
    Option(
        "save_selected_only", True, "When using 'Save' button, only save a single selected image", _SAVING
    ),
    Option("grid_save", True, "Always save all generated image grids", _SAVING),
    Option("grid_format", "png", "File format for grids", _SAVING, choices=IMAGE_FORMATS),
    Option("grid_only_if_multiple", True, "Do not save grids consisting of one picture", _SAVING),
    Option(
        "grid_prevent_empty_spots", False, "Prevent empty spots in grid (when set to autodetect)", _SAVING
    ),
    Option(
        "n_rows",
        -1,
        "Grid row count; use -1 for autodetect and 0 for it to be same as batch size",
        _SAVING,
        minimum=-1,
        maximum=16,
    ),
    Option("return_grid", True, "Show grid in gallery", _UI),
    Option("jpeg_quality", 80, "Quality for saved jpeg and webp images", _SAVING, minimum=1, maximum=100),
    Option("webp_lossless", False, "Use lossless compression for webp images", _SAVING),
    PathOption(
        "outdir_samples", "", "Output directory for images; if empty, defaults to the two below", _PATHS
    ),
    PathOption(
        "outdir_txt2img_samples", "outputs/txt2img-images", "Output directory for txt2img images", _PATHS
    ),
    PathOption(
        "outdir_img2img_samples", "outputs/img2img-images", "Output directory for img2img images", _PATHS
    ),
    PathOption("outdir_grids", "", "Output directory for grids; if empty, defaults to the two below", _PATHS),
    PathOption("outdir_txt2img_grids", "outputs/txt2img-grids", "Output directory for txt2img grids", _PATHS),
    PathOption("outdir_img2img_grids", "outputs/img2img-grids", "Output directory for img2img grids", _PATHS),
    PathOption("outdir_save", "outputs/save", "Directory for saving images using the Save button", _PATHS),
    PathOption(
        "outdir_extras_samples",
        "outputs/extras-images",
        "Output directory for images from extras tab",
        _PATHS,
    ),
    Option("sd_model_checkpoint", "", "Stable Diffusion checkpoint", _SD),
    Option(
        "sd_checkpoints_limit",
        1,
        "Maximum number of checkpoints loaded at the same time",
        _SD,
        minimum=1,
        maximum=10,
    ),
    Option("sd_checkpoints_keep_in_cpu", True, "Only keep one model on device", _SD),
    Option("sd_checkpoint_cache", 0, "Checkpoints to cache in RAM", _SD, minimum=0, maximum=10),
    Option(
        "torch_threads",
        0,
        "CPU threads for torch (0 = by the model's size: 1 for tiny models, the free cores for large ones)",
        _SD,
        minimum=0,
        maximum=256,
    ),
    Option("sd_vae", "Automatic", "SD VAE", _SD),
    Option("CLIP_stop_at_last_layers", 1, "Clip skip", _SD, minimum=1, maximum=12),
    Option(
        "enable_prompt_comments",
        True,
        "Enable comments: # hides the rest of a prompt line from the generation (and its infotext)",
        _SD,
    ),
    Option(
        "vae_tiling_threshold",
        1536,
        "Decode with tiled VAE when the image is larger than this many pixels on a side (0 = never)",
        _SD,
        minimum=0,
        maximum=16384,
    ),
    Option(
        "ESRGAN_tile",
        192,
        "Tile size for ESRGAN upscalers (0 = no tiling)",
        "Upscaling",
        minimum=0,
        maximum=512,
    ),
    Option(
        "ESRGAN_tile_overlap",
        8,
        "Tile overlap for ESRGAN upscalers (low values = visible seam)",
        "Upscaling",
        minimum=0,
        maximum=48,
    ),
    # Face restoration (services/face_restoration.py); A1111's names. Its default model is CodeFormer, whose
    # code is non-commercial and optional here, so ours is GFPGAN.
    Option("face_restoration", False, "Restore faces", "Face restoration"),
    Option(
        "face_restoration_model",
        "GFPGAN",
        "Face restoration model",
        "Face restoration",
        choices=("None", "CodeFormer", "GFPGAN"),
    ),
    Option(
        "code_former_weight",
        0.5,
        "CodeFormer weight (0 = maximum effect; 1 = minimum effect)",
        "Face restoration",
        minimum=0.0,
        maximum=1.0,
    ),
    # Noise (engine.rng, engine.sampling.noise); A1111's names, labels and infotext keys (RNG, Eta DDIM,
    # Eta, ENSD), written when not the default
    Option(
        "randn_source",
        "GPU",
        "Random number generator source (GPU: CUDA's numbers, computed as NV without CUDA; CPU: the same "
        "picture on every device; NV: NVIDIA cards' numbers on any device)",
        _SD,
        choices=("GPU", "CPU", "NV"),
    ),
    Option("eta_ddim", 0.0, "Eta for DDIM", _SAMPLER, minimum=0.0, maximum=1.0),
    Option(
        "eta_ancestral",
        1.0,
        "Eta for k-diffusion samplers (ancestral and SDE samplers)",
        _SAMPLER,
        minimum=0.0,
        maximum=1.0,
    ),
    Option("eta_noise_seed_delta", 0, "Eta noise seed delta (ENSD)", _SAMPLER),
    Option("live_previews_enable", True, "Show live previews of the created image", _PREVIEWS),
    Option(
        "show_progress_every_n_steps",
        10,
        "Live preview display period: every N sampling steps (-1: only at the end of each batch)",
        _PREVIEWS,
        minimum=-1,
        maximum=32,
    ),
    Option(
        "disable_weights_auto_swap",
        True,
        "When reading generation parameters from text into UI (from PNG info or pasted text), do not change "
        "the selected model/checkpoint",
        _INFOTEXT,
    ),
    # Names of other options; unknown ones (say, from an A1111 config.json) are skipped when shown.
    Option(
        "browser_notifications",
        False,
        "Show a desktop notification when a generation finishes while the page is in the background",
        _UI,
    ),
    Option(
        "quicksettings_list",
        ("sd_model_checkpoint", "sd_vae"),
        "Quicksettings list: settings shown at the top of the page (takes effect on restart)",
        _UI,
    ),
    Option(
        "control_net_unit_count",
        3,
        "Multi-ControlNet: ControlNet unit number (takes effect on restart)",
        "ControlNet",
        minimum=1,
        maximum=10,
    ),
    # Folder names under extensions/ and extensions-builtin/; set from the Extensions tab.
    Option("disabled_extensions", (), "Disabled extensions (takes effect on restart)", "Extensions"),
    # Admission control (webui.services.jobs): beyond these a request gets HTTP 429; 0 means no limit.
    Option("queue_max_jobs", 256, "Most jobs waiting or running at once (0: no limit)", "Queue", minimum=0),
    Option(
        "queue_max_jobs_per_client",
        64,
        "Most jobs one client (API user or address) may have waiting or running (0: no limit)",
        "Queue",
        minimum=0,
    ),
)

OPTIONS_BY_NAME: Mapping[str, Option] = MappingProxyType({option.name: option for option in OPTIONS})
OUTDIR_KEYS = MappingProxyType(
    {
        "txt2img": "outdir_txt2img_samples",
        "img2img": "outdir_img2img_samples",
        "txt2img-grids": "outdir_txt2img_grids",
        "img2img-grids": "outdir_img2img_grids",
        "extras": "outdir_extras_samples",
    }
)


def option(name: str) -> Option:
    try:
        return OPTIONS_BY_NAME[name]
    except KeyError:
        raise InvalidParameter(f"unknown option {name!r}") from None
