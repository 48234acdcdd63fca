"""The generation service: queue a txt2img/img2img job, run it on the job worker (the scripts around the
engine, the job's own options, the images saved with their infotext) and answer with its Result."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from PIL import Image

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams
from webui.core.requests import Request, Result
from webui.engine.sampling.previews import PreviewReporter
from webui.services.batch_grid import GridOptions, add_batch_grid
from webui.services.incomplete import IncompleteImages
from webui.services.job import Job
from webui.services.jobs import JobQueue
from webui.services.models import ModelsService
from webui.services.options import JobOptions, ModelOptions, SaveOptions
from webui.services.outputs import dated_dir, save_image
from webui.services.resume import combined, resume
from webui.services.scripting import ProcessingContext, ScriptHost
from webui.services.settings import Settings
from webui.services.styles import StyleDatabase

if TYPE_CHECKING:
    from webui.engine.sampling.run_hooks import RunHooks
    from webui.engine.upscaling.catalog import UpscalerCatalog
    from webui.services.face_restoration import FaceRestorationService

P = TypeVar("P", bound=GenerationParams)


class Workers(Protocol):
    """Generation workers in other processes (services/workers/distributed.py): the engine call of `job`."""

    def bind(self, job: Job, options: JobOptions) -> Callable[[GenerationParams, Any], Result]: ...

    def status(self) -> list[dict[str, Any]]:
        """Each worker: name, state (starting, ready, lost), host, device, checkpoint, why it was lost."""
        ...


@dataclasses.dataclass(frozen=True)
class OverriddenRequest:
    """A generation queued with A1111's override_settings: the options hold for its job alone, or stay
    set afterwards when `restore` is False (override_settings_restore_afterwards)."""

    request: Request
    options: tuple[tuple[str, Any], ...]
    restore: bool = True


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        styles: StyleDatabase,
        models: ModelsService,
        jobs: JobQueue,
        scripts: ScriptHost,
        data_dir: Path,
    ) -> None:
        self.settings = settings
        self.styles = styles
        self.models = models
        self.jobs = jobs
        self.scripts = scripts
        self.data_dir = data_dir
        self.upscalers: UpscalerCatalog | None = None  # the model upscalers hires fix may use (App sets it)
        self.faces: FaceRestorationService | None = None  # restore_faces (App sets it)
        self.workers: Workers | None = None  # --workers / --ray-address: they run the engine (App sets it)

    def submit(
        self,
        params: GenerationParams,
        save_images: bool = True,
        override_settings: Mapping[str, Any] | None = None,
        restore_settings: bool = True,
        owner: str | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Queue a txt2img or img2img/inpaint generation (the params' type says which); `owner` (a
        client) counts towards the queue's per-client limit.

        `override_settings` (options by name) hold while this job runs, then go back unless
        `restore_settings` is False (A1111's override_settings_restore_afterwards)."""
        params.validate()  # bad input fails now, before it takes a place in the queue
        checkpoint = (override_settings or {}).get("sd_model_checkpoint")
        if checkpoint and not params.sd_model_checkpoint:  # the engine loads what the params name
            params = dataclasses.replace(params, sd_model_checkpoint=str(checkpoint))
        request = Request(params=params, save_images=save_images)
        self.scripts.check(params, request.kind)  # an unknown script name, too
        if self.workers is not None and (owners := self.scripts.model_hooks(request.kind)):
            raise InvalidParameter(
                "These extensions act on the model inside a batch, which --workers/--ray-address workers do "
                f"not run: {', '.join(owners)}. Disable them (Extensions tab) or start the server without "
                "workers"
            )
        if self.faces is not None:
            self.faces.check(params, override_settings)  # restore_faces without its model or detector file
        if not override_settings:
            return self.jobs.submit(request, kind=request.kind, owner=owner, job_id=job_id)
        for name, value in override_settings.items():
            self.settings.option(name).validate(value)
        self.models.check_options(override_settings)
        queued = OverriddenRequest(request, tuple(override_settings.items()), restore_settings)
        return self.jobs.submit(queued, kind=request.kind, owner=owner, job_id=job_id)

    def generate(self, params: GenerationParams, save_images: bool = True) -> Result:
        result: Result = self.submit(params, save_images).wait()
        return result

    def apply_styles(self, params: P, names: Sequence[str]) -> P:
        """`params` with the named prompt styles applied to both prompts. As in A1111 this happens before
        generation, so the infotext holds the styled prompt."""
        if not names:
            return params
        prompt, negative = self.styles.apply(params.prompt, params.negative_prompt, names)
        return dataclasses.replace(params, prompt=prompt, negative_prompt=negative)

    def options(self) -> JobOptions:
        """The options a job starting now runs with."""
        return JobOptions.from_settings(self.settings, self.data_dir)

    def save_options(self) -> SaveOptions:
        return SaveOptions.from_settings(self.settings)

    def output_dir(self, kind: str) -> Path:
        return self.options().output_dir(kind)

    # Run on the job worker.

    def run_overridden(self, request: OverriddenRequest, job: Job) -> Result:
        with self._overridden(dict(request.options), request.restore):
            return self.run(request.request, job)

    def run(self, request: Request, job: Job) -> Result:
        from webui.engine.sampling import generate  # with diffusers: on the first job, not with the page

        options = self.options()
        self.models.configure(options.model)
        reporter = PreviewReporter(job, options.preview_period)
        saving = request.save_images and options.save_samples
        grids = request.save_images and options.save_grids
        # Images cut short by Interrupt/Skip are saved only with "Save incomplete images", and then marked.
        incomplete = IncompleteImages(job)
        save_incomplete = bool(self.settings.get("save_incomplete_images"))
        save = incomplete.saver(
            functools.partial(self._save_recorded, job, options, request.kind), save_incomplete
        )

        def per_image(hooks: RunHooks) -> RunHooks:
            """The scripts' hooks with faces restored first and unfinished images marked (on the head
            also for the workers' images, as each batch comes back)."""
            return incomplete.hooks(self.faces.hooks(hooks) if self.faces else hooks)

        # The scripts run around and inside generate.run and call the image callbacks around each save.
        on_workers = self.workers.bind(job, options) if self.workers is not None else None
        context = ProcessingContext(
            generate=lambda params, hooks: (
                on_workers(params, per_image(hooks))
                if on_workers is not None
                else generate.run(
                    params,
                    self.models.manager,
                    reporter,
                    per_image(hooks),
                    options.noise,
                    upscalers=self.upscalers,
                )
            ),
            save_image=save if saving else None,
            save_grid=functools.partial(self._save, options, f"{request.kind}-grids") if grids else None,
            current_model=lambda: self.models.current,
            show_image=job.show,
        )
        result = self._process(request, job, context)
        if request.params.script_name is None:  # a script's run() makes its own grids (X/Y/Z plot)
            result = self._batch_grid(request, options, result)
        used = self.models.used()  # before any override is put back: the model that made the images
        if used is None:
            return result
        return dataclasses.replace(
            result,
            sd_model_name=used.name,
            sd_model_hash=used.hash,
            sd_vae_name=used.vae_name,
            sd_vae_hash=used.vae_hash,
        )

    def _process(self, request: Request, job: Job, context: ProcessingContext) -> Result:
        """The scripts and the engine on the request; a job running again after a restart makes only the
        batches it had not saved (a script's run() decides its own images, so such a job runs whole)."""
        resumed = None
        if job.saved_before_restart and request.params.script_name is None:
            resumed = resume(request.params, job.saved_before_restart)
        if resumed is None:
            result: Result = self.scripts.process(request.params, request.kind, context)
            return result
        job.count_files_from(len(resumed.kept.images))
        rest = None
        if resumed.params.n_iter > 0:
            rest = self.scripts.process(resumed.params, request.kind, context)
        return combined(resumed.kept, rest)

    @contextmanager
    def _overridden(self, options: Mapping[str, Any], restore: bool) -> Iterator[None]:
        """Around one job: set the options, then put them (and the model) back unless not `restore`."""
        settings = {name: value for name, value in options.items() if name != "sd_model_checkpoint"}
        checkpoint = options.get("sd_model_checkpoint")  # the job's params already name it
        if not restore:
            self.settings.update(settings)
            yield
            if checkpoint:  # loaded by the job: this only records it
                self.settings.update({"sd_model_checkpoint": self.models.current_title()})
            return
        before = self.models.current_entry()
        try:
            with self.settings.overridden(settings):
                yield
        finally:
            self.models.configure(ModelOptions.from_settings(self.settings))
            if checkpoint and before is not None and self.models.current_entry() != before:
                self.models.activate(before)

    def _save(self, options: JobOptions, kind: str, image: Image.Image, infotext: str, seed: int) -> Path:
        """One image (or grid: kind "txt2img-grids", …) under its dated output folder, as the options say."""
        return save_to(image, infotext, dated_dir(options.output_dir(kind)), seed, options.save)

    def _save_recorded(
        self, job: Job, options: JobOptions, kind: str, image: Image.Image, infotext: str, seed: int
    ) -> Path:
        """`_save`, then the file noted on the job (the durable queue keeps the job's files)."""
        path = self._save(options, kind, image, infotext, seed)
        job.record_file(str(path), infotext)
        return path

    def _batch_grid(self, request: Request, options: JobOptions, result: Result) -> Result:
        """A1111's grid of a batch, first among the images; saved in the grid format with grid_save."""
        grid = GridOptions.from_settings(self.settings)
        grid_job = dataclasses.replace(options, save=dataclasses.replace(options.save, fmt=grid.fmt))
        kind = f"{request.kind}-grids"
        save = functools.partial(self._save, grid_job, kind) if options.save_grids else None
        return add_batch_grid(result, grid, request.save_images, save)


def save_to(
    image: Image.Image, infotext: str, directory: Path, seed: int, options: SaveOptions, pattern: str = ""
) -> Path:
    """`image` with its infotext in `directory`, written as the options say (`pattern` replaces theirs)."""
    return save_image(
        image,
        infotext,
        directory,
        seed=seed,
        fmt=options.fmt,
        save_txt=options.save_txt,
        quality=options.quality,
        lossless=options.lossless,
        pattern=pattern or options.pattern,
    )
