"""ControlNet in a generation: the enabled units resolved (ControlPlan) and the UNet hook that guides.

The ControlNets run from a hook on the UNet, inside whichever pipeline the task uses, instead of
diffusers' StableDiffusion[XL]ControlNet{,Img2Img,Inpaint}Pipeline: the img2img and inpaint tasks hand
their pipelines latents (engine.sampling.img2img), which diffusers' ControlNet inpaint pipelines cannot
take (they mask `image` as pixels and have no masked_image_latents), and a 9-channel inpainting UNet
needs its first 4 input channels split off for the ControlNet. The hook does what those pipelines do (the
same result to the bit: tests/engine/controlnet/test_controlnet.py) for every kind of run alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import ControlNetModel
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from webui.core import controlnet_infotext
from webui.core.control_unit import CONTROL_MODES, ControlUnit
from webui.core.errors import InvalidParameter
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.controlnet import image_fit, preprocessors
from webui.engine.controlnet.library import ControlNetLibrary
from webui.engine.sampling.hooks import ModelHook, Stage

SOFT_INJECTION_BASE = 0.825  # sd-webui-controlnet: residual i of n is scaled by 0.825 ** (n - 1 - i)


@dataclass(frozen=True)
class ControlPlan:
    """The enabled units of one generation, resolved: their models, their control maps (at the output
    size) and the units as the infotext shows them (model titles, the resolutions and thresholds used).

    It runs inside whatever pipeline the task uses (txt2img, img2img, inpaint, inpainting checkpoints):
    a hook on the UNet computes the ControlNets' residuals for every UNet call and hands them to the UNet
    as diffusers' ControlNet pipelines do (down_block_additional_residuals, mid_block_additional_residual)."""

    units: tuple[ControlUnit, ...]  # all units, the enabled ones resolved (the infotext numbers them all)
    models: tuple[ControlNetModel, ...]  # one per enabled unit, in order
    maps: tuple[Image.Image, ...]

    @property
    def enabled(self) -> tuple[ControlUnit, ...]:
        return tuple(unit for unit in self.units if unit.enabled)

    def infotext_entries(self) -> dict[str, str]:
        return controlnet_infotext.entries(self.units)

    def hook(self, pipe: Any, count: int) -> ModelHook:
        """The UNet hook of one run of `pipe` over `count` images: the UNet gets the ControlNets' residuals.
        Its stage (Stage.CONTROLNET) is outside composable diffusion's, so it sees diffusers' own batch."""
        return ModelHook(Stage.CONTROLNET, before=_Guide(self, pipe, count))


class _Guide:
    """The UNet pre-hook of one run: diffusers' ControlNet step, unit by unit, with sd-webui-controlnet's
    control modes.

    - guidance start/end: a unit acts on UNet call i of n when i/n >= start and (i+1)/n <= end, the rule
      of diffusers' ControlNet pipelines (one UNet call per entry of the pipeline's timesteps);
    - "My prompt is more important": the residuals scaled down from the deepest to the shallowest
      (soft injection);
    - "ControlNet is more important": that, and no control on the unconditional half of the CFG batch
      (cfg injection), so CFG pushes towards the control. diffusers' guess_mode is the same idea with
      other scales, for all ControlNets at once; this works per unit.
    A unit with weight 0, or outside its guidance range, is not run: the UNet gets nothing from it."""

    def __init__(self, plan: ControlPlan, pipe: Any, count: int) -> None:
        self.plan = plan
        self.pipe = pipe
        self.count = count
        self.calls = 0
        processor = VaeImageProcessor(do_convert_rgb=True, do_normalize=False)
        self.conds = [processor.preprocess(image) for image in plan.maps]  # (1, 3, H, W) in [0, 1]

    def __call__(self, unet: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        step, self.calls = self.calls, self.calls + 1
        steps = max(self.pipe.num_timesteps, 1)
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        total: list[torch.Tensor] | None = None
        for unit, model, cond in zip(self.plan.enabled, self.plan.models, self.conds):
            if (
                unit.weight == 0
                or step / steps < unit.guidance_start
                or (step + 1) / steps > unit.guidance_end
            ):
                continue
            residuals = self._residuals(unit, model, cond, sample, timestep, kwargs)
            total = residuals if total is None else [a + b for a, b in zip(total, residuals)]
        if total is None:
            return None
        kwargs = {
            **kwargs,
            "down_block_additional_residuals": tuple(total[:-1]),
            "mid_block_additional_residual": total[-1],
        }
        return args, kwargs

    def _residuals(
        self,
        unit: ControlUnit,
        model: ControlNetModel,
        cond: torch.Tensor,
        sample: torch.Tensor,
        timestep: Any,
        kwargs: dict[str, Any],
    ) -> list[torch.Tensor]:
        batch = sample.shape[0]
        down, mid = model(
            sample[:, : model.config.in_channels],  # an inpainting UNet's input adds mask and masked image
            timestep,
            encoder_hidden_states=kwargs["encoder_hidden_states"],
            controlnet_cond=cond.to(sample.device, model.dtype).repeat(batch, 1, 1, 1),
            conditioning_scale=float(unit.weight),
            timestep_cond=kwargs.get("timestep_cond"),
            added_cond_kwargs=kwargs.get("added_cond_kwargs"),
            cross_attention_kwargs=kwargs.get("cross_attention_kwargs"),
            return_dict=False,
        )
        residuals = [*down, mid]
        if unit.control_mode != CONTROL_MODES[0]:
            last = len(residuals) - 1
            residuals = [r * SOFT_INJECTION_BASE ** (last - i) for i, r in enumerate(residuals)]
        if unit.control_mode == CONTROL_MODES[2] and batch == 2 * self.count:
            keep = torch.ones(batch, 1, 1, 1, device=mid.device, dtype=mid.dtype)
            keep[: self.count] = 0  # diffusers puts the unconditional half first
            residuals = [r * keep for r in residuals]
        return residuals


def prepare(
    units: Sequence[ControlUnit],
    library: ControlNetLibrary,
    target: LoadedCheckpoint,
    device: torch.device,
    dtype: torch.dtype,
    size: tuple[int, int],
    init_image: Image.Image | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> ControlPlan | None:
    """Load the enabled units' models and make their control maps at `size` (width, height); None when
    no unit is enabled. `init_image`: the img2img input, for units that use it. `region`: the box of
    `init_image` an "Only masked" inpaint repaints; the control images are cut to it the same way."""
    if not any(unit.enabled for unit in units):
        return None
    resolved: list[ControlUnit] = []
    models: list[ControlNetModel] = []
    maps: list[Image.Image] = []
    for index, unit in enumerate(units):
        if not unit.enabled:
            resolved.append(unit)
            continue
        entry = library.find(unit.model)
        image = unit.image if unit.image is not None else init_image
        if image is None:
            raise InvalidParameter(f"ControlNet unit {index} has no image and there is no img2img input")
        if region is not None and init_image is not None:
            image = _cropped(image, init_image.size, region, unit.resize_mode)
        control_map, used = preprocessors.control_map(unit, image, size, library.annotators)
        models.append(library.load(entry, target, device, dtype))
        maps.append(control_map)
        resolved.append(used.replace(model=entry.title()))
    return ControlPlan(units=tuple(resolved), models=tuple(models), maps=tuple(maps))


def _cropped(
    image: Image.Image, input_size: tuple[int, int], region: tuple[int, int, int, int], mode: str
) -> Image.Image:
    """The control image over the img2img input's area (fitted by the unit's resize mode), cut to `region`."""
    if image.size != input_size:
        image = Image.fromarray(image_fit.fit(image_fit.to_array(image), input_size, mode))
    return image.crop(region)
