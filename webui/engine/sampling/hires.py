"""Hires fix: txt2img's second pass, an img2img of the first pass's result at a larger size (A1111's
`sample_hr_pass`).

The latent upscalers interpolate the first pass's latents (torch, with each mode's settings); the others
decode them, upscale the pixels (Pillow's filters, or a model upscaler from engine.upscaling) and encode
the result. Then the second pass denoises from `denoising_strength` with the first pass's seeds, through
the same batch machinery as the first (engine.sampling.generate): LoRA, ControlNet (the maps resized),
AND, prompt editing, CFG Rescale and the extensions' hooks apply to both passes. As in A1111 the second
pass always runs exactly its steps (hr_second_pass_steps, or the first pass's): the schedule is made
longer so that `denoising_strength` of it is left, whatever `img2img_fix_steps` says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from webui.core import hires, samplers
from webui.core.errors import InvalidParameter, ModelNotFound
from webui.core.params import LATENT_UPSCALE_MODES, SAME_CHECKPOINT, Txt2Img, unless_same
from webui.engine.checkpoints import memory
from webui.engine.sampling import img2img, noise

if TYPE_CHECKING:
    from webui.engine.checkpoints.loader import LoadedCheckpoint
    from webui.engine.checkpoints.manager import ModelManager
    from webui.engine.sampling.generate import RunContext
    from webui.engine.sampling.run_hooks import StepReporter
    from webui.engine.upscaling.catalog import UpscalerCatalog

# A1111's latent modes: torch interpolation mode and antialias
LATENT_MODES = dict(
    zip(
        LATENT_UPSCALE_MODES,
        (("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True), ("nearest", False),
         ("nearest-exact", False)),
    )
)  # fmt: skip
NONE = "None"  # resized with Lanczos to the target size, as A1111's "None" upscaler is
_FILTERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}

RunBatch = Callable[..., tuple[list[Image.Image], tuple[str, ...]]]


def enabled(params: Any) -> bool:
    return isinstance(params, Txt2Img) and params.enable_hr


def upscaler_names(catalog: UpscalerCatalog | None) -> list[str]:
    """Every hr_upscaler value that works: the latent modes, the plain resizers, the model upscalers."""
    models = [model.name for model in catalog.scan()] if catalog is not None else []
    return [*LATENT_UPSCALE_MODES, NONE, *_FILTERS, *models]


def check(
    params: Txt2Img, manager: ModelManager, loaded: LoadedCheckpoint, catalog: UpscalerCatalog | None
) -> None:
    """Refuse, before anything runs, what the second pass cannot do."""
    if loaded.architecture.inpainting:
        raise InvalidParameter("Hires fix with an inpainting checkpoint is not supported yet")
    name = params.hr_upscaler
    if name is not None and name not in (*LATENT_MODES, NONE, *_FILTERS):
        if name not in upscaler_names(catalog):
            valid = ", ".join(upscaler_names(catalog))
            raise InvalidParameter(f"hr_upscaler: unknown upscaler {name!r}; valid: {valid}")
    checkpoint = unless_same(params.hr_checkpoint_name, SAME_CHECKPOINT)
    if checkpoint is not None:
        try:
            manager.registry.find(checkpoint)
        except ModelNotFound:
            known = ", ".join(entry.name for entry in manager.registry.entries) or "none"
            raise InvalidParameter(f"Hires checkpoint {checkpoint!r} not found. Available: {known}") from None


def load_checkpoint(
    params: Any, manager: ModelManager, main: LoadedCheckpoint
) -> tuple[LoadedCheckpoint | None, str | None]:
    """The second pass's own checkpoint (None: the first pass's) and its title as A1111 writes "Hires
    checkpoint", "name [hash]" (None: no key). Loaded now, before the run starts, so that a bad file fails
    before any image; call ModelManager.use(main) afterwards to make the first pass's current again."""
    name = unless_same(params.hr_checkpoint_name, SAME_CHECKPOINT) if enabled(params) else None
    if name is None:
        return None, None
    entry = manager.registry.find(name)
    loaded = manager.get(entry.name) if entry.path != main.path else main
    if loaded.architecture.inpainting or loaded.architecture.refiner:
        raise InvalidParameter(
            f"Hires checkpoint {name!r} cannot run a second pass (inpainting or refiner model)"
        )
    title = f"{entry.model_name} [{manager.short_hash(loaded)}]"
    return (None if loaded is main else loaded), title


def with_checkpoint_title(params: Any, title: str | None) -> Any:
    """`params` with the hires checkpoint written as A1111 writes it: "name [hash]"."""
    if not enabled(params) or title is None:
        return params
    return params.replace(hr_checkpoint_name=title)


class TwoPassProgress:
    """The job as both passes report to it: a pass's step counts within the steps of both passes (A1111's
    job total is first steps + hires steps), so progress runs once from 0 to 1 over an image batch."""

    def __init__(self, job: StepReporter, first: int, second: int, second_pass: bool = False) -> None:
        self._job = job
        self.first, self.second = first, second
        self.offset, self.steps = (first, second) if second_pass else (0, first)

    def report(self, step: int, total: int, preview: Any | None = None) -> None:
        done = self.offset + min(step * self.steps // max(total, 1), self.steps)
        self._job.report(done, self.first + self.second, preview)

    def for_second_pass(self) -> TwoPassProgress:
        return TwoPassProgress(self._job, self.first, self.second, second_pass=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)  # interrupted, skipped, set_batches, next_batch


def progress(job: StepReporter, params: Any) -> StepReporter:
    """The job a run reports to: with hires fix on, both passes count."""
    if not enabled(params):
        return job
    return TwoPassProgress(job, params.steps, hires.second_pass_steps(params))  # type: ignore[return-value]


def schedule(steps: int, strength: float, train_steps: int) -> tuple[int, float]:
    """(schedule length, strength) that run exactly `steps` steps with `strength` of the noise schedule
    left (A1111: steps / min(strength, 0.999) in all); at most the model's training steps, which
    diffusers' schedulers cannot exceed."""
    total = min(int(steps / min(strength, 0.999)), train_steps)
    return total, min(1.0, (steps + 0.5) / total)  # int(total × strength) == steps


@dataclasses.dataclass
class HiresTask:
    """The second pass as a generate.Task: the img2img pipeline from the upscaled latents."""

    params: Txt2Img
    pipe: Any
    latents: torch.Tensor
    strength: float
    schedule_steps: int
    steps_run: int
    warnings: tuple[str, ...] = ()
    infotext_fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    def inputs(
        self, noise: torch.Tensor, generators: list[torch.Generator], seeds: list[int]
    ) -> dict[str, Any]:
        return {
            "image": self.latents.to(noise),
            "strength": self.strength,
            "num_inference_steps": self.schedule_steps,
            "generator": generators,
        }

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        return images


def second_pass(
    run: RunContext, params: Txt2Img, latents: torch.Tensor, run_batch: RunBatch, *batch: Any
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """The batch's final images from the first pass's `latents` (and the embeddings the hires prompts
    used); `run_batch` runs the second pass like the first, with the first pass's `batch` arguments (its
    seeds). Stopped (interrupt or skip) after the first pass, the first pass's images are the result."""
    first = run.loaded
    threshold = run.manager.vae_tiling_threshold
    if run.job.interrupted or run.job.skipped:
        return memory.decode_latents(first.pipe, latents, threshold), ()
    loaded = run.hires_checkpoint or first  # hr_checkpoint_name: A1111 reloads before the second pass
    pipe = loaded.pipeline(img2img.PIPELINES[loaded.architecture.family == "sdxl", False])
    factor = pipe.vae_scale_factor
    size = hires.target_size(params, factor)
    latent_size = (size.height // factor, size.width // factor)
    upscaler = params.hr_upscaler or LATENT_UPSCALE_MODES[0]
    with torch.inference_mode():  # a pixel upscaler's input: decoded by the first pass's VAE
        decoded = None if upscaler in LATENT_MODES else memory.decode_latents(first.pipe, latents, threshold)
    run.manager.use(loaded)  # the second pass's checkpoint on the device (a no-op for the first pass's)
    with torch.inference_mode():
        if decoded is None:
            mode, antialias = LATENT_MODES[upscaler]
            upscaled = torch.nn.functional.interpolate(
                latents, size=latent_size, mode=mode, antialias=antialias
            )
            pixels = None
        else:
            target = (size.width, size.height)
            pixels = [
                upscale_image(image, upscaler, target, run.upscalers, run.manager.device.device)
                for image in decoded
            ]
            upscaled = img2img.encode_images(pipe, pixels, latent_size[::-1])
    upscaled = _crop(upscaled, size.crop_x, size.crop_y)
    height, width = (side * factor for side in upscaled.shape[-2:])
    steps = hires.second_pass_steps(params)
    if params.denoising_strength == 0:  # nothing to denoise: the upscale itself
        run.job.report(steps, steps)
        if pixels is not None and (size.crop_x, size.crop_y) == (0, 0):
            return pixels, ()
        return memory.decode_latents(loaded.pipe, upscaled, threshold), ()
    choice = samplers.resolve(params.hires_sampler_name, params.hires_scheduler)
    total, strength = schedule(steps, params.denoising_strength, pipe.scheduler.config.num_train_timesteps)
    hires_params = params.replace(
        enable_hr=False,
        width=width,
        height=height,
        steps=steps,  # the prompt-editing schedule runs over the steps that run, as in A1111
        prompt=params.hr_prompt or params.prompt,
        negative_prompt=params.hr_negative_prompt or params.negative_prompt,
        sampler_name=choice.sampler_name,
        scheduler=choice.scheduler,
    )
    task = HiresTask(hires_params, pipe, upscaled, strength, total, steps)
    job = run.job.for_second_pass() if isinstance(run.job, TwoPassProgress) else run.job
    # ControlNet models fit the first pass's family only (a hires checkpoint of another family goes without)
    same_family = loaded.architecture.family == first.architecture.family
    control = run.control if same_family else None
    if control is not None:  # the control maps at the new size
        control = dataclasses.replace(control, maps=tuple(m.resize((width, height)) for m in control.maps))
    embeddings = run.embeddings if loaded is first else run.manager.embeddings.for_pipe(loaded.pipe)
    eta = noise.sampler_eta(choice.sampler_name, params.eta, run.noise_options)  # the hires sampler's kind
    context = dataclasses.replace(
        run, loaded=loaded, task=task, choice=choice, job=job, control=control, embeddings=embeddings, eta=eta
    )
    return run_batch(context, hires_params, *batch)


def _crop(latents: torch.Tensor, crop_x: int, crop_y: int) -> torch.Tensor:
    """Cut the overflow of a resize to both sides, split between the sides (the extra one at the end)."""
    height, width = latents.shape[-2:]
    return latents[..., crop_y // 2 : height - (crop_y + 1) // 2, crop_x // 2 : width - (crop_x + 1) // 2]


def upscale_image(
    image: Image.Image,
    name: str,
    size: tuple[int, int],
    catalog: UpscalerCatalog | None = None,
    device: torch.device | None = None,
) -> Image.Image:
    """`image` at exactly `size` with the named pixel upscaler, as A1111 resizes for hires fix: the
    upscaler by the scale that covers `size`, then Lanczos to the exact size ("None": Lanczos alone)."""
    scale = max(size[0] / image.width, size[1] / image.height)
    if name in _FILTERS and scale > 1:
        scaled = (int(image.width * scale), int(image.height * scale))
        image = image.resize(scaled, resample=_FILTERS[name])
    elif name not in _FILTERS and name != NONE and scale > 1:
        if catalog is None:
            raise InvalidParameter(f"hr_upscaler: model upscaler {name!r} needs the upscaler catalog")
        image = catalog.upscale(name, image, scale, device=device)
    if image.size != size:
        image = image.resize(size, resample=Image.Resampling.LANCZOS)
    return image
