"""One queued generation with its scripts: the chosen script's run() or the normal generation, the
always-visible scripts' hooks around and inside it, and saving with the image callbacks.

The order, as A1111's: process → per batch: process_batch, cfg_denoiser (each model pass),
postprocess_image (each image) → before_image_saved / image_saved (each image) → postprocess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from webui.core.params import GenerationParams
from webui.core.requests import Result
from webui.engine.sampling.hooks import ModelHook
from webui.engine.sampling.run_hooks import FinishedBatch
from webui.plugins import denoiser
from webui.plugins.callbacks import CFGDenoiserParams, ImageSaveParams
from webui.plugins.isolation import ScriptFailed
from webui.plugins.processing import Processed, Processing, strip_prompt_comments
from webui.plugins.script import PostprocessImageArgs
from webui.services.scripting import ProcessingContext

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins
    from webui.plugins.runner import ScriptRunner


class JobRun:
    def __init__(self, plugins: Plugins, runner: ScriptRunner, context: ProcessingContext) -> None:
        self.plugins = plugins
        self.runner = runner
        self.context = context

    def execute(self, params: GenerationParams) -> Result:
        """The job's result; the extension errors recorded meanwhile become its warnings."""
        first_error = self.plugins.errors.count
        p = Processing(params, self)
        chosen = self.runner.selected(params)
        processed = None
        if chosen is not None:
            loaded, args = chosen
            where = f"{type(loaded.script).__name__}.run"
            processed = self.plugins.call_or_fail(loaded.active, where, loaded.script.run, p, *args)
            if processed is not None and not isinstance(processed, Processed):
                error = TypeError(f"run() must return api.Processed or None, not {type(processed).__name__}")
                entry = self.plugins.errors.record(loaded.active.owner.name, where, error)
                raise ScriptFailed(entry.summary())
        if processed is None:
            processed = self.process_images(p)
        processed.warnings += [error.summary() for error in self.plugins.errors.entries(after=first_error)]
        return processed.to_result(processed.params if processed.params is not None else p.params)

    def process_images(self, p: Processing) -> Processed:
        """One generation of p's params with every always-visible script's hooks; images saved."""
        compat = self.plugins.compat  # the A1111 layer's extra hooks, when an A1111 extension loaded
        if self.plugins.settings.get("enable_prompt_comments"):
            strip_prompt_comments(p)
        if compat is not None:
            compat.before_process(self.runner, p)
        self.runner.process(p)
        if compat is not None:
            compat.after_process(self.runner, p)
        hooks = PluginHooks(self, p)
        try:
            result = self.context.generate(p.params, hooks)
        finally:
            if compat is not None:
                compat.after_generate(p)
        self.plugins.notice_model(self.context.current_model())
        processed = Processed.from_result(p, result)
        processed.paths = hooks.paths
        if hooks.edited:  # an A1111 script changed a batch's images: the result is what was saved and shown
            processed.images, processed.infotexts, processed.seeds = hooks.finished()
            if len(processed.subseeds) != len(processed.images):
                processed.subseeds = []
        self.runner.postprocess(p, processed)
        return processed

    def save(
        self, p: Processing, image: Image.Image, infotext: str, seed: int, *, grid: bool = False
    ) -> str | None:
        """Save through the image callbacks; None when this job does not save (images or grids)."""
        saver = self.context.save_grid if grid else self.context.save_image
        if saver is None:
            return None
        state = ImageSaveParams(image, p, None, {"parameters": infotext})
        self.plugins.run_callbacks("before_image_saved", state)
        path = saver(state.image, state.pnginfo.get("parameters", ""), seed)
        if path is None:  # cut short by Interrupt/Skip (services.incomplete)
            return None
        state.filename = str(path)
        self.plugins.run_callbacks("image_saved", state)
        return str(path)

    def current_model(self) -> Any:
        return self.context.current_model()


class PluginHooks:
    """What generate.run calls inside a run (its RunHooks protocol), for one process_images(p)."""

    def __init__(self, run: JobRun, p: Processing) -> None:
        self._run = run
        self._p = p
        self.paths: list[str] = []  # the files saved so far, in image order
        self.batches: list[FinishedBatch] = []  # as saved and shown
        self.edited = False  # whether A1111's postprocess_batch_list changed a batch

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        """process_batch; params a script changed on p apply from this batch on."""
        p, first = self._p, batch * params.batch_size
        prompts = list(p.all_prompts[first : first + len(seeds)]) or [params.prompt] * len(seeds)
        p.iteration = batch
        if self._run.plugins.compat is not None:
            self._run.plugins.compat.before_batch(self._run.runner, p, batch, prompts)
        before = p.params
        self._run.runner.process_batch(p, batch, prompts, list(seeds))
        changes = _changed(before, p.params)
        # A1111 scripts rewrite p.all_prompts / all_negative_prompts: the engine takes one prompt a batch
        for field, listed in (("prompt", p.all_prompts), ("negative_prompt", p.all_negative_prompts)):
            if field not in changes and first < len(listed) and listed[first] != getattr(params, field):
                changes[field] = listed[first]
        return params.replace(**changes) if changes else params

    def cfg_denoiser(self, pipe: Any, params: GenerationParams, count: int) -> ModelHook | None:
        """The on_cfg_denoiser hook on the UNet while a batch of `count` denoises (none without callbacks);
        A1111 extensions' cfg_denoised / cfg_after_cfg see each pass's prediction."""
        compat = self._run.plugins.compat
        after = compat.after_pass(params, count) if compat is not None else None
        if not self._run.plugins.callbacks.entries("cfg_denoiser") and after is None:
            return None

        def each_pass(state: CFGDenoiserParams) -> None:
            self._run.plugins.run_callbacks("cfg_denoiser", state)

        return denoiser.hook(pipe, params, count, each_pass, after)

    def before_hires(self, params: GenerationParams) -> GenerationParams:
        """A1111's before_hr(p): what a script changes on p applies to the second pass."""
        compat = self._run.plugins.compat
        if compat is None:
            return params
        before = self._p.params
        compat.before_hr(self._run.runner, self._p)
        changes = _changed(before, self._p.params)
        return params.replace(**changes) if changes else params

    def after_sampling(self, params: GenerationParams, latents: torch.Tensor) -> torch.Tensor:
        """A1111's post_sample(p, ps): a script may replace the latents before they are decoded."""
        compat = self._run.plugins.compat
        return compat.post_sample(self._run.runner, self._p, latents) if compat is not None else latents

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        """postprocess_image; returns the image to keep and the params its infotext is built from."""
        pp = PostprocessImageArgs(image)
        self._run.runner.postprocess_image(self._p, pp)
        if self._run.plugins.compat is not None:  # A1111's postprocess_image_after_composite
            self._run.plugins.compat.after_composite(self._run.runner, self._p, pp)
        extras = self._p.params.extra_generation_params
        return pp.image, params.replace(extra_generation_params=extras)

    def batch_done(self, batch: FinishedBatch) -> None:
        """Each image is saved (through the image callbacks) and shown as soon as its batch is done, so an
        interrupt or a crash later loses nothing of it."""
        run, p = self._run, self._p
        if run.plugins.compat is not None:  # A1111's postprocess_batch(_list) may replace, drop or add images
            edited = run.plugins.compat.after_batch(run.runner, p, p.iteration, batch)
            self.edited, batch = self.edited or edited is not batch, edited
        self.batches.append(batch)
        for image, text, seed in zip(batch.images, batch.infotexts, batch.seeds):
            # A1111's do_not_save_samples: a script saves what it makes of the images itself
            path = None if p.do_not_save_samples else run.save(p, image, text, seed)
            if path is not None:
                self.paths.append(path)
            if run.context.show_image is not None:
                run.context.show_image(image, text, seed)

    def finished(self) -> tuple[list[Image.Image], list[str], list[int]]:
        """The images, infotexts and seeds of all batches so far."""
        return (
            [image for batch in self.batches for image in batch.images],
            [text for batch in self.batches for text in batch.infotexts],
            [seed for batch in self.batches for seed in batch.seeds],
        )


def model_hook_owners(plugins: Plugins, runner: ScriptRunner) -> list[str]:
    """Who acts on the model inside a batch: on_cfg_denoiser callbacks and, through the A1111 layer,
    cfg_denoised / cfg_after_cfg callbacks and the always-on scripts' post_sample and before_hr. These run
    only in the process holding the model, so a job on --workers cannot have them (the head runs the
    other hooks of a batch: process_batch before it is sent, postprocess_image when it is back)."""
    owners = [f"{owner.name} (on_cfg_denoiser)" for owner, _ in plugins.callbacks.entries("cfg_denoiser")]
    compat = plugins.compat
    if compat is not None:
        for event in ("cfg_denoised", "cfg_after_cfg"):
            owners += [f"{owner.name} (on_{event})" for owner, _ in compat.callbacks.get(event, [])]
        for loaded in runner.alwayson:
            owners += [
                f"{runner.title(loaded)} ({hook})"
                for hook in ("post_sample", "before_hr")
                if _defined_by_extension(loaded.script, hook)
            ]
    return list(dict.fromkeys(owners))


def _defined_by_extension(script: Any, hook: str) -> bool:
    """Whether `hook` of the script is the extension's own, not a base class's no-op."""
    owner = next((cls for cls in type(script).__mro__ if hook in vars(cls)), None)
    return owner is not None and not owner.__module__.startswith("webui.")


def _changed(before: GenerationParams, after: GenerationParams) -> dict[str, Any]:
    """The fields a script changed on p, with their new values."""
    return {
        field.name: getattr(after, field.name)
        for field in dataclasses.fields(after)
        if getattr(after, field.name) != getattr(before, field.name)
    }
