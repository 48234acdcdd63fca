"""The App: the composition root. It builds the settings, the model manager, the job queue, the
extensions and the services from the command-line flags and wires them together; the services do the
work, the UI and the API call the services (webui.server serves them)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from webui.core.cmd_args import Paths, device_ids, paths_from_args, server_name, uses_workers
from webui.core.params import GenerationParams
from webui.core.requests import Request, Result, SwitchCheckpoint, SwitchVae
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.upscaling.catalog import UpscalerCatalog, upscaler_folders
from webui.engine.upscaling.faces import FaceRestorers, face_folders
from webui.plugins.registry import Plugins
from webui.server import (
    create_server,
    serve_in_thread,
    share_when_started,
    warn_if_exposed,
    when_listening,
)
from webui.services.container import Services
from webui.services.controlnet import ControlNetService, Preprocess
from webui.services.dispatch import JobRunner
from webui.services.extras import ExtrasRequest, ExtrasService
from webui.services.face_restoration import FaceRestorationService
from webui.services.generation import GenerationService, OverriddenRequest
from webui.services.job import AdmissionLimits, Job
from webui.services.jobs import JobQueue
from webui.services.model_factory import build_manager
from webui.services.models import ModelsService
from webui.services.option_guard import OptionGuard
from webui.services.options import ModelOptions
from webui.services.queue_store import FILE_NAME as QUEUE_FILE
from webui.services.queue_store import QueueStore, QueueStoreRefused, StoreJournal
from webui.services.settings import Settings
from webui.services.styles import StyleDatabase
from webui.services.tokens import TokenCounter

__all__ = ["App", "create_server", "serve", "serve_in_thread"]

log = logging.getLogger(__name__)
P = TypeVar("P", bound=GenerationParams)


class App:
    """Everything a running UI/API needs, built from the command-line flags (tests build as many as needed).

    It has the attributes of `Services`, so it can stand where the UI expects them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths: Paths = paths_from_args(args)
        self.paths.create_folders()
        self.settings = Settings(self.paths.config_file)
        self.styles = StyleDatabase(self.paths.styles_file)
        self.plugins = Plugins(  # extensions; may add options
            self.settings, args, self.paths.data_dir, shipped_dir=self.paths.shipped_extensions_dir
        )
        self.manager = self._build_manager()
        self.registry: CheckpointRegistry = self.manager.registry
        runner = JobRunner()
        store = QueueStore(self.paths.data_dir / QUEUE_FILE)  # refuses a corrupt or newer file
        self.jobs = JobQueue(runner, limits=self._admission_limits, journal=StoreJournal(store))
        self.plugins.jobs = self.jobs  # A1111 extensions' shared.state reads the running job
        self.models = ModelsService(
            self.manager,
            self.settings,
            self.jobs,
            on_loaded=self.plugins.notice_model,
            guard=OptionGuard(freeze_all=args.freeze_settings, freeze_paths=args.hide_ui_dir_config),
        )
        self.models.configure(ModelOptions.from_settings(self.settings))
        self.generation = GenerationService(
            self.settings, self.styles, self.models, self.jobs, self.plugins, self.paths.data_dir
        )
        self.controlnet = ControlNetService(self.manager.controlnets, self.jobs)
        self.tokens = TokenCounter(self.models, rewrite=self.plugins.before_token_counter)
        device = self.manager.device
        self.extras = ExtrasService(
            UpscalerCatalog(upscaler_folders(self.paths.models_dir, vars(args))),
            FaceRestorers(face_folders(self.paths.models_dir, vars(args))),
            self.settings,
            self.jobs,
            self.paths.data_dir,
            device.device,
            half=device.dtype.itemsize == 2,  # fp16 wherever the checkpoints run in it
        )
        self.generation.upscalers = self.extras.catalog  # hires fix's model upscalers
        self.generation.faces = FaceRestorationService(self.extras.faces, self.settings, device.device)
        runner.register(Request, self.generation.run)
        runner.register(OverriddenRequest, self.generation.run_overridden)
        runner.register(SwitchCheckpoint, self.models.run_switch_checkpoint)
        runner.register(SwitchVae, self.models.run_switch_vae)
        runner.register(Preprocess, self.controlnet.run)
        runner.register(ExtrasRequest, self.extras.run)
        self.plugins.upscalers = self.extras  # scripts upscale through it (SD upscale)
        if uses_workers(args):
            self._start_workers()
        self.services: Services[Plugins] = Services(
            args=args,
            paths=self.paths,
            settings=self.settings,
            styles=self.styles,
            jobs=self.jobs,
            generation=self.generation,
            models=self.models,
            controlnet=self.controlnet,
            tokens=self.tokens,
            plugins=self.plugins,
            extras=self.extras,
        )
        self.jobs.start()

    def _admission_limits(self) -> AdmissionLimits:
        return AdmissionLimits(
            self.settings.get("queue_max_jobs"), self.settings.get("queue_max_jobs_per_client")
        )

    def _build_manager(self) -> ModelManager:
        options = ModelOptions.from_settings(self.settings)
        return build_manager(self.args, self.paths, options, next(iter(device_ids(self.args)), None))

    def _start_workers(self) -> None:
        """--workers / --ray-address: generation runs on Ray workers (ray is imported only then)."""
        try:
            from webui.services.workers.distributed import DistributedGeneration
            from webui.services.workers.pool import WorkerPool, pool_spec
        except ImportError as error:
            raise SystemExit(
                f"webui: --workers and --ray-address need Ray ({error}); "
                "install it with: pip install -r requirements-ray.txt"
            ) from None
        pool = WorkerPool(pool_spec(self.args), lambda: ModelOptions.from_settings(self.settings))
        pool.start()
        self.generation.workers = DistributedGeneration(pool, self.models)
        self.jobs.beside = self.generation.workers.may_start  # idle workers take the next job

    # Shortcuts onto the services, for scripts, benchmarks and tests.

    def submit(
        self,
        params: GenerationParams,
        save_images: bool = True,
        override_settings: Mapping[str, Any] | None = None,
        restore_settings: bool = True,
    ) -> Job:
        return self.generation.submit(params, save_images, override_settings, restore_settings)

    def generate(self, params: GenerationParams, save_images: bool = True) -> Result:
        return self.generation.generate(params, save_images)

    def apply_styles(self, params: P, names: Sequence[str]) -> P:
        return self.generation.apply_styles(params, names)

    def select_checkpoint(self, title: str) -> str:
        return self.models.select_checkpoint(title)

    def select_vae(self, choice: str) -> str:
        return self.models.select_vae(choice)

    def update_options(self, changes: dict[str, object]) -> None:
        self.models.update_options(changes)

    def current_checkpoint_title(self) -> str:
        return self.models.current_title()

    def load_initial_checkpoint(self) -> str:
        return self.models.load_initial(self.args.ckpt)

    def refresh_checkpoints(self) -> list[str]:
        return self.models.refresh_checkpoints()


def load_then_restore(app: App) -> None:
    """Queue the start-up checkpoint's load, then the last run's queue behind it (a restored job must
    not delay the model): jobs sent meanwhile wait for the load and then run."""
    app.models.load_in_background()
    app.jobs.restore()


def serve(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        app = App(args)
    except QueueStoreRefused as error:  # never start on (or over) a queue file that cannot be trusted
        sys.exit(f"webui: {error}")
    # The page opens with the start-up checkpoint's defaults, read from its header; the checkpoint
    # itself loads on the job worker once the server listens (the page shows its progress and failure).
    app.models.prepare_background_load(args.ckpt)
    host = server_name(args)
    server = create_server(app, host, args.port)
    when_listening(server, lambda: load_then_restore(app), "startup-load")
    scheme = "https" if args.tls_certfile else "http"
    print(
        f"Running on local URL:  {scheme}://{'127.0.0.1' if host == '0.0.0.0' else host}:{args.port}",
        flush=True,
    )
    warn_if_exposed(args)
    if args.share:
        share_when_started(server, host)
    try:
        server.run()
    finally:  # the running job had --shutdown-grace seconds, then was interrupted: wait a little more
        app.jobs.stop(timeout=args.shutdown_grace + 5)
