"""Request bodies of the A1111-compatible API, with A1111's field names and defaults."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img

# A1111 options that map onto generation parameters when sent in `override_settings`.
OVERRIDABLE = {"sd_model_checkpoint": "sd_model_checkpoint", "CLIP_stop_at_last_layers": "clip_skip"}


class Txt2ImgRequest(BaseModel):
    # A1111 clients send many fields; the ones we do not know are accepted and ignored when they hold
    # their neutral value, and refused (see `unsupported`) when they ask for a feature we lack.
    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = Field(default_factory=list)
    seed: int = -1
    sampler_name: str | None = None
    sampler_index: str = "Euler"  # A1111's legacy field, used when sampler_name is absent
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    override_settings: dict[str, Any] = Field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False

    def to_params(self, default_clip_skip: int) -> Txt2Img:
        self._refuse_unsupported()
        overrides = {OVERRIDABLE[key]: value for key, value in self.override_settings.items() if key in OVERRIDABLE}
        unknown = sorted(set(self.override_settings) - set(OVERRIDABLE))
        if unknown:
            raise InvalidParameter(
                f"override_settings: unsupported option(s) {', '.join(unknown)}; supported: {', '.join(OVERRIDABLE)}"
            )
        return Txt2Img(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            sampler_name=self.sampler_name or self.sampler_index,
            scheduler=self.scheduler or "Automatic",
            seed=self.seed,
            width=self.width,
            height=self.height,
            batch_size=self.batch_size,
            n_iter=self.n_iter,
            clip_skip=int(overrides.get("clip_skip", default_clip_skip)),
            sd_model_checkpoint=overrides.get("sd_model_checkpoint") or None,
        )

    def _refuse_unsupported(self) -> None:
        """Features A1111 has and we do not yet: say so instead of silently generating something else."""
        extra = self.model_extra or {}
        wanted = [
            name
            for name in ("enable_hr", "restore_faces", "tiling", "script_name", "alwayson_scripts", "subseed_strength")
            if extra.get(name)
        ]
        if self.styles:
            wanted.append("styles")
        if wanted:
            raise InvalidParameter(f"Not supported yet: {', '.join(wanted)}")
