"""The models service: checkpoints, VAEs, LoRAs, embeddings and ControlNets — listing, refreshing and
switching. Switches go through the job queue, so a model never changes under a running generation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from webui.core.errors import ModelLoadError, ModelNotFound
from webui.core.params import Txt2Img
from webui.core.requests import SwitchCheckpoint, SwitchVae
from webui.engine.checkpoints.loader import LoadedCheckpoint, probe_defaults
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointEntry, CheckpointRegistry
from webui.engine.checkpoints.weights_files import read_metadata
from webui.engine.networks.embeddings import Embedding, EmbeddingLibrary
from webui.engine.networks.lora import LoraEntry, LoraLibrary
from webui.services.job import Job, JobStatus
from webui.services.jobs import JobQueue
from webui.services.option_guard import OptionGuard
from webui.services.option_table import option
from webui.services.options import ModelOptions
from webui.services.settings import Settings

# The model entries the UI shows (LoRA cards) come from the engine; named here so the UI imports no engine.
__all__ = ["LoadStatus", "LoraEntry", "LoraLibrary", "ModelUsed", "ModelsService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelUsed:
    """The checkpoint (and VAE) a generation ran with, as the infotext and the API's `info` name them."""

    name: str
    hash: str
    title: str
    vae_name: str | None = None  # None: the checkpoint's own VAE
    vae_hash: str | None = None


@dataclass(frozen=True)
class LoadStatus:
    """The start-up checkpoint load, as the page's status line shows it."""

    state: str  # "loading", "failed" or "ready"
    message: str  # what to show; empty when ready


@dataclass
class StartupLoad:
    wanted: str  # the checkpoint's path ("": the first one found)
    defaults: Any  # its GenerationDefaults read from the file's header; None when they could not be
    job: Job | None = None  # the queued load, once the server listens


def _log_startup_load(job: Job) -> None:
    if job.status is JobStatus.DONE:
        log.info("Model loaded: %s", job.result)
    else:  # the queue logged why; the page and the API say it too
        log.error("The start-up checkpoint did not load; the web UI serves without a model")


class ModelsService:
    def __init__(
        self,
        manager: ModelManager,
        settings: Settings,
        jobs: JobQueue,
        on_loaded: Callable[[LoadedCheckpoint], None] = lambda loaded: None,
        guard: OptionGuard | None = None,
    ) -> None:
        self.guard = guard or OptionGuard()  # what --freeze-settings / --hide-ui-dir-config lock
        self.manager = manager
        self.settings = settings
        self.jobs = jobs
        self.on_loaded = on_loaded  # the extensions' on_model_loaded
        self._options: ModelOptions | None = None  # what the manager was last configured with
        self._startup: StartupLoad | None = None  # the checkpoint loaded in the background at start-up

    # Checkpoints.

    @property
    def registry(self) -> CheckpointRegistry:
        return self.manager.registry

    @property
    def current(self) -> LoadedCheckpoint | None:
        return self.manager.current

    def checkpoints(self) -> tuple[CheckpointEntry, ...]:
        return self.registry.entries

    def checkpoint_titles(self) -> list[str]:
        return self.registry.titles()

    def title(self, entry: CheckpointEntry) -> str:
        return self.registry.title(entry)

    def find_checkpoint(self, wanted: str) -> CheckpointEntry:
        """The checkpoint named by title, name or hash; ModelNotFound otherwise."""
        return self.registry.find(wanted)

    def current_entry(self) -> CheckpointEntry | None:
        return self.manager.current_entry()

    def current_title(self) -> str:
        entry = self.manager.current_entry()
        return self.registry.title(entry) if entry else self.settings.get("sd_model_checkpoint")

    def refresh_checkpoints(self) -> list[str]:
        self.registry.refresh()
        return self.registry.titles()

    def select_checkpoint(self, title: str) -> str:
        """Load the checkpoint and remember it; returns its title. The old one stays if this fails."""
        title = self.jobs.submit(SwitchCheckpoint(title), kind="checkpoint").wait()
        return str(title)

    def load_initial(self, ckpt_flag: str | None) -> str:
        """Load the checkpoint to start with (`initial_checkpoint`) and wait for it; returns its title."""
        return self.select_checkpoint(self.initial_checkpoint(ckpt_flag))

    def initial_checkpoint(self, ckpt_flag: str | None) -> str:
        """--ckpt, else the one saved in config.json, else the first found (A1111's order); "" when the
        folder is empty (loading it then says so)."""
        wanted = ckpt_flag and str(Path(ckpt_flag).expanduser().resolve())
        wanted = wanted or self.settings.get("sd_model_checkpoint")
        if wanted:
            try:
                return str(self.registry.find(wanted).path)
            except ModelNotFound as error:
                log.warning("%s; loading the first checkpoint found instead", error)
        return str(self.registry.entries[0].path) if self.registry.entries else ""

    def prepare_background_load(self, ckpt_flag: str | None) -> StartupLoad:
        """Choose the checkpoint to start with and read its defaults from the file's header (the page is
        built with them); `load_in_background` then queues its load."""
        wanted = self.initial_checkpoint(ckpt_flag)
        defaults = None
        if wanted:
            try:
                defaults = probe_defaults(wanted)
            except (ModelLoadError, OSError) as error:  # the load itself will report it
                log.debug("could not read the defaults of %s: %s", wanted, error)
        self._startup = StartupLoad(wanted, defaults)
        return self._startup

    def load_in_background(self) -> Job:
        """Queue the load of the prepared checkpoint without waiting: jobs queued after it (a Generate
        clicked early) wait for it and then run. `load_status` follows it."""
        startup = self._startup or self.prepare_background_load(None)
        job = startup.job = self.jobs.submit(SwitchCheckpoint(startup.wanted), kind="checkpoint")
        job.add_listener(lambda: _log_startup_load(job))
        return job

    def load_status(self) -> LoadStatus:
        """The start-up load as the page's status line shows it: loading (with the seconds so far), failed
        (why; until another checkpoint loads), or ready."""
        startup = self._startup
        job = startup.job if startup is not None else None
        if startup is None or job is None or self.manager.current is not None:
            return LoadStatus("ready", "")
        name = Path(startup.wanted).name if startup.wanted else "the first checkpoint"
        if job.status is JobStatus.FAILED:
            return LoadStatus(
                "failed", f"Could not load the model {name}: {job.error}. Choose a checkpoint above."
            )
        if job.done:
            return LoadStatus("ready", "")
        since = job.started if job.started is not None else job.created
        return LoadStatus("loading", f"Loading model {name}… {time.time() - since:.0f} s")

    def model_defaults(self) -> Txt2Img:
        """Txt2Img's defaults with the loaded checkpoint's own size, steps, CFG and CFG Rescale (while the
        start-up checkpoint still loads: the ones its header gives)."""
        loaded = self.manager.current
        if loaded is not None:
            return Txt2Img(**asdict(loaded.defaults))
        startup = self._startup
        if startup is not None and startup.defaults is not None:
            return Txt2Img(**asdict(startup.defaults))
        return Txt2Img()

    def used(self) -> ModelUsed | None:
        """The checkpoint and VAE in use now (read by a job as it finishes, for its result)."""
        loaded = self.manager.current
        if loaded is None:
            return None
        entry = self.manager.entry_for(loaded)
        vae = self.manager.vae_in_use(loaded)
        return ModelUsed(
            name=entry.model_name,
            hash=self.manager.short_hash(loaded),
            title=self.registry.title(entry),
            vae_name=vae.name if vae else None,
            vae_hash=self.manager.vaes.short_hash(vae) if vae else None,
        )

    # VAEs.

    def vae_choices(self) -> list[str]:
        return self.manager.vaes.choices()

    def vae_files(self) -> list[tuple[str, Path]]:
        return [(vae.name, vae.path) for vae in self.manager.vaes.files]

    def refresh_vaes(self) -> list[str]:
        self.manager.vaes.refresh()
        return self.manager.vaes.choices()

    def check_vae(self, choice: str) -> None:
        self.manager.vaes.check_choice(choice)

    def select_vae(self, choice: str) -> str:
        """Use the "SD VAE" `choice` and remember it; the old VAE stays if this fails. Queued."""
        chosen = self.jobs.submit(SwitchVae(choice), kind="vae").wait()
        return str(chosen)

    # LoRAs, embeddings, ControlNets.

    @property
    def loras(self) -> LoraLibrary | None:
        return self.manager.loras

    def refresh_loras(self) -> None:
        if self.manager.loras is not None:
            self.manager.loras.refresh()

    def embeddings(self) -> tuple[dict[str, Embedding], set[str]]:
        """Every embedding found (rescanned), and the names the loaded checkpoint can use."""
        library: EmbeddingLibrary = self.manager.embeddings
        found = library.refresh()
        loaded = self.manager.current
        usable = set(library.for_pipe(loaded.pipe)) if loaded is not None else set()
        return found, usable

    def embedding_vector_counts(self) -> dict[str, int]:
        """Textual-inversion name → its vector count, for the loaded checkpoint (empty without one)."""
        loaded = self.manager.current
        if loaded is None:
            return {}
        inversions = self.manager.embeddings.for_pipe(loaded.pipe)
        return {name: int(vectors[0].shape[0]) for name, vectors in inversions.items()}

    @property
    def controlnets(self) -> Any:
        return self.manager.controlnets

    @staticmethod
    def file_metadata(path: Path) -> dict[str, str]:
        """The safetensors header metadata of a model file (LoRA cards show it)."""
        return read_metadata(path)

    # Options.

    def update_options(self, changes: Mapping[str, object]) -> None:
        """Apply options as A1111's POST /options does: all validated first, then saved and put to use."""
        changes = dict(changes)
        self.guard.check(self.settings, changes)
        checkpoint = changes.pop("sd_model_checkpoint", None)
        vae = changes.pop("sd_vae", None)
        if checkpoint:
            self.registry.find(str(checkpoint))  # an unknown name fails before anything changes
        if vae is not None:
            self.check_vae(option("sd_vae").validate(vae))
        self.settings.update(changes)
        if checkpoint:
            self.select_checkpoint(str(checkpoint))
        if vae is not None:
            self.select_vae(str(vae))
        self.configure(ModelOptions.from_settings(self.settings))

    def check_options(self, options: Mapping[str, Any]) -> None:
        """InvalidParameter / ModelNotFound now for model options that could not be applied later."""
        if options.get("sd_model_checkpoint"):
            self.registry.find(str(options["sd_model_checkpoint"]))
        if "sd_vae" in options:
            self.check_vae(str(options["sd_vae"]))

    def configure(self, options: ModelOptions) -> None:
        """Give the model manager these options (at the start of each job, and after a job's overrides)."""
        self.manager.vae_tiling_threshold = options.vae_tiling_threshold
        before = self._options
        if before is None or (before.checkpoints_limit, before.keep_in_cpu, before.checkpoint_cache) != (
            options.checkpoints_limit,
            options.keep_in_cpu,
            options.checkpoint_cache,
        ):
            self.manager.configure(options.checkpoints_limit, options.keep_in_cpu, options.checkpoint_cache)
        if before is None or before.torch_threads != options.torch_threads:
            self.manager.set_torch_threads(options.torch_threads)
        if before is None or before.sd_vae != options.sd_vae:
            try:
                self.manager.set_vae(options.sd_vae)
            except ModelNotFound as error:
                if before is not None:
                    raise
                log.warning("%s; using Automatic", error)  # as A1111: a VAE that is gone at start-up
        self._options = options

    # Run on the job worker.

    def run_switch_checkpoint(self, request: SwitchCheckpoint, job: Job) -> str:
        loaded = self.manager.get(request.title)
        self.on_loaded(loaded)
        new_title = self.registry.title(self.manager.entry_for(loaded))
        self.settings.update({"sd_model_checkpoint": new_title})
        return new_title

    def run_switch_vae(self, request: SwitchVae, job: Job) -> str:
        self.manager.set_vae(request.choice)
        self.settings.update({"sd_vae": request.choice})
        self._options = ModelOptions.from_settings(self.settings)
        return request.choice

    def activate(self, entry: CheckpointEntry) -> None:
        """Make `entry` the current checkpoint again (after a job that overrode it)."""
        self.manager.get(str(entry.path))
