"""The App: one object holding the live state (settings, models, job queue), and the server around it."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from webui import __version__
from webui.api.access import add_access_control, exposure_warning, open_share_link
from webui.api.routes import register_api
from webui.core.cmd_args import (
    Paths,
    api_credentials,
    gradio_credentials,
    paths_from_args,
    server_name,
    uses_cpu,
)
from webui.core.errors import ModelNotFound, UserError
from webui.core.hashing import HashCache
from webui.core.params import GenerationParams, Request, Result, SwitchCheckpoint, SwitchVae
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.memory import MemoryFlags, log_startup
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.checkpoints.vae import VaeRegistry
from webui.engine.controlnet.annotators import annotator_dirs
from webui.engine.controlnet.units import ControlNetLibrary
from webui.engine.devices import choose_device
from webui.engine.networks.embeddings import EmbeddingLibrary
from webui.engine.networks.lora import LoraLibrary
from webui.engine.sampling import generate
from webui.engine.sampling.previews import PreviewReporter
from webui.plugins.flow import ProcessingContext
from webui.plugins.registry import Plugins
from webui.services.jobs import Job, JobQueue
from webui.services.outputs import dated_dir, save_image
from webui.services.settings import Settings, option
from webui.services.styles import StyleDatabase

log = logging.getLogger(__name__)
P = TypeVar("P", bound=GenerationParams)


@dataclasses.dataclass(frozen=True)
class OverriddenRequest:
    """A generation queued with A1111's override_settings: the options hold for its job alone, or stay
    set afterwards when `restore` is False (override_settings_restore_afterwards)."""

    request: Request
    options: tuple[tuple[str, Any], ...]
    restore: bool = True


class App:
    """Everything a running UI/API needs, built from the command-line flags; tests build as many as needed."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths: Paths = paths_from_args(args)
        self.settings = Settings(self.paths.config_file)
        self.styles = StyleDatabase(self.paths.styles_file)
        self.plugins = Plugins(self.settings, args, self.paths.data_dir)  # extensions; may add options
        extra = (Path(args.ckpt).expanduser().resolve(),) if args.ckpt else ()
        hashes = HashCache(self.paths.cache_file)
        self.registry = CheckpointRegistry(self.paths.ckpt_dir, hashes, extra)
        device = choose_device(uses_cpu(args, "sd"), args.no_half or args.precision == "full", args.device_id)
        log.info("Running on %s", device.describe())
        memory = MemoryFlags.from_args(args)
        log_startup(memory, device)
        self.manager = ModelManager(
            self.registry,
            device,
            device_slots=self.settings.get("sd_checkpoints_limit"),
            keep_in_cpu=self.settings.get("sd_checkpoints_keep_in_cpu"),
            vaes=VaeRegistry(self.paths.vae_dir, hashes),
            embeddings=EmbeddingLibrary(self.paths.embeddings_dir, hashes),
            loras=LoraLibrary(self.paths.lora_dir, hashes),
            controlnets=ControlNetLibrary(self.paths.controlnet_dir, annotator_dirs(self.paths)),
            memory=memory,
            vae_tiling_threshold=self.settings.get("vae_tiling_threshold"),
        )
        try:
            self.manager.set_vae(self.settings.get("sd_vae"))
        except ModelNotFound as error:  # as A1111: a VAE that is gone falls back to Automatic
            log.warning("%s; using Automatic", error)
        self.jobs = JobQueue(self._run_job)
        self.jobs.start()

    def submit(
        self,
        params: GenerationParams,
        save_images: bool = True,
        override_settings: Mapping[str, Any] | None = None,
        restore_settings: bool = True,
    ) -> Job:
        """Queue a txt2img or img2img/inpaint generation (the params' type says which).

        `override_settings` (options by name) hold while this job runs, then go back unless
        `restore_settings` is False (A1111's override_settings_restore_afterwards)."""
        params.validate()  # bad input fails now, before it takes a place in the queue
        request = Request(params=params, save_images=save_images)
        self.plugins.check(params, request.kind)  # an unknown script name, too
        if not override_settings:
            return self.jobs.submit(request, kind=request.kind)
        self._check_options(override_settings)
        queued = OverriddenRequest(request, tuple(override_settings.items()), restore_settings)
        return self.jobs.submit(queued, kind=request.kind)

    def apply_styles(self, params: P, names: Sequence[str]) -> P:
        """`params` with the named prompt styles applied to both prompts. As in A1111 this happens before
        generation, so the infotext holds the styled prompt."""
        if not names:
            return params
        prompt, negative = self.styles.apply(params.prompt, params.negative_prompt, names)
        return dataclasses.replace(params, prompt=prompt, negative_prompt=negative)

    def generate(self, params: GenerationParams, save_images: bool = True) -> Result:
        return self.submit(params, save_images).wait()

    def select_checkpoint(self, title: str) -> str:
        """Load the checkpoint and remember it; returns its title. The old one stays if this fails.

        It goes through the job queue, so it never swaps the model under a running generation."""
        return self.jobs.submit(SwitchCheckpoint(title), kind="checkpoint").wait()

    def _switch_checkpoint(self, title: str) -> str:
        loaded = self.manager.get(title)
        self.plugins.notice_model(loaded)
        new_title = self.registry.title(self.manager.entry_for(loaded))
        self.settings.update({"sd_model_checkpoint": new_title})
        return new_title

    def select_vae(self, choice: str) -> str:
        """Use the "SD VAE" `choice` (Automatic, None or a file name) and remember it; the old VAE stays if
        this fails. Queued like a checkpoint change."""
        return self.jobs.submit(SwitchVae(choice), kind="vae").wait()

    def _switch_vae(self, choice: str) -> str:
        self.manager.set_vae(choice)
        self.settings.update({"sd_vae": choice})
        return choice

    def update_options(self, changes: dict[str, object]) -> None:
        """Apply options as A1111's POST /options does: all validated first, then saved and put to use."""
        changes = dict(changes)
        checkpoint = changes.pop("sd_model_checkpoint", None)
        vae = changes.pop("sd_vae", None)
        if checkpoint:
            self.registry.find(str(checkpoint))  # an unknown name fails before anything changes
        if vae is not None:
            self.manager.vaes.check_choice(option("sd_vae").validate(vae))
        changed = self.settings.update(changes)
        if "vae_tiling_threshold" in changed:
            self.manager.vae_tiling_threshold = self.settings.get("vae_tiling_threshold")
        if {"sd_checkpoints_limit", "sd_checkpoints_keep_in_cpu"} & set(changed):
            self.manager.configure(
                self.settings.get("sd_checkpoints_limit"), self.settings.get("sd_checkpoints_keep_in_cpu")
            )
        if checkpoint:
            self.select_checkpoint(str(checkpoint))
        if vae is not None:
            self.select_vae(str(vae))

    def current_checkpoint_title(self) -> str:
        entry = self.manager.current_entry()
        return self.registry.title(entry) if entry else self.settings.get("sd_model_checkpoint")

    def load_initial_checkpoint(self) -> str:
        """--ckpt, else the one saved in config.json, else the first found (A1111's order)."""
        wanted = self.args.ckpt and str(Path(self.args.ckpt).expanduser().resolve())
        wanted = wanted or self.settings.get("sd_model_checkpoint")
        if wanted:
            try:
                return self.select_checkpoint(wanted)
            except ModelNotFound as error:
                log.warning("%s; loading the first checkpoint found instead", error)
        first = self.registry.entries[0].name if self.registry.entries else ""
        return self.select_checkpoint(first)

    def refresh_checkpoints(self) -> list[str]:
        self.registry.refresh()
        return self.registry.titles()

    def _check_options(self, options: Mapping[str, Any]) -> None:
        """InvalidParameter / ModelNotFound now for options that could not be applied later."""
        for name, value in options.items():
            self.settings.option(name).validate(value)
        if options.get("sd_model_checkpoint"):
            self.registry.find(str(options["sd_model_checkpoint"]))
        if "sd_vae" in options:
            self.manager.vaes.check_choice(str(options["sd_vae"]))

    @contextmanager
    def _overridden(self, options: Mapping[str, Any], restore: bool) -> Iterator[None]:
        """Runs on the worker, around one job: set the options, then put them (and the model) back."""
        settings = {name: value for name, value in options.items() if name != "sd_model_checkpoint"}
        checkpoint = options.get("sd_model_checkpoint")  # the job's params already name it
        if not restore:
            self.settings.update(settings)
            self._sync_manager()
            yield
            if checkpoint:
                self._switch_checkpoint(str(checkpoint))  # loaded by the job: this only records it
            return
        before = self.manager.current_entry()
        try:
            with self.settings.overridden(settings):
                self._sync_manager()
                yield
        finally:
            self._sync_manager()
            if checkpoint and before is not None and self.manager.current_entry() != before:
                self.manager.get(str(before.path))

    def _sync_manager(self) -> None:
        """Give the model manager the options it reads, after they were overridden or put back."""
        self.manager.vae_tiling_threshold = self.settings.get("vae_tiling_threshold")
        self.manager.set_vae(self.settings.get("sd_vae"))

    def _preview_period(self) -> int:
        """Steps between live previews (A1111's setting; -1: at the end of each batch, 0: none)."""
        return (
            self.settings.get("show_progress_every_n_steps")
            if self.settings.get("live_previews_enable")
            else 0
        )

    def _run_job(
        self, request: Request | OverriddenRequest | SwitchCheckpoint | SwitchVae, job: Job
    ) -> Result | str:
        if isinstance(request, SwitchCheckpoint):
            return self._switch_checkpoint(request.title)
        if isinstance(request, SwitchVae):
            return self._switch_vae(request.choice)
        if isinstance(request, OverriddenRequest):
            with self._overridden(dict(request.options), request.restore):
                return self._run_job(request.request, job)
        reporter = PreviewReporter(job, self._preview_period())
        saving = request.save_images and self.settings.get("samples_save")
        grids = request.save_images and self.settings.get("grid_save")
        # The scripts (webui.plugins) run around and inside generate.run and call the image callbacks
        # around each save.
        context = ProcessingContext(
            generate=lambda params, hooks: generate.run(params, self.manager, reporter, hooks),
            save_image=functools.partial(self._save, request.kind) if saving else None,
            save_grid=functools.partial(self._save, f"{request.kind}-grids") if grids else None,
            current_model=lambda: self.manager.current,
        )
        return self.plugins.process(request.params, request.kind, context)

    def _save(self, kind: str, image: Any, infotext: str, seed: int) -> Path:
        """One image (or grid: kind "txt2img-grids", …) under its dated output folder, as the options say."""
        return save_image(
            image,
            infotext,
            dated_dir(self._output_dir(kind)),
            seed=seed,
            fmt=self.settings.get("samples_format"),
            save_txt=self.settings.get("save_txt"),
            quality=self.settings.get("jpeg_quality"),
            lossless=self.settings.get("webp_lossless"),
            pattern=self.settings.get("samples_filename_pattern"),
        )

    def _output_dir(self, kind: str) -> Path:
        path = Path(self.settings.output_dir(kind)).expanduser()
        return path if path.is_absolute() else self.paths.data_dir / path


def create_server(app: App, host: str, port: int) -> uvicorn.Server:
    """The ASGI app: API routes first, then the gradio UI mounted at /; --api-auth and CORS around both,
    --gradio-auth on the UI, TLS when both --tls-* files are given."""
    web = FastAPI(title="webui", version=__version__)
    add_access_control(web, app.args, api_credentials(app.args))
    if app.args.api or app.args.nowebui:
        register_api(web, app)
    if app.args.nowebui:
        app.plugins.app_started(None, web)
    else:
        import gradio as gr

        from webui.ui.blocks import build_ui

        # gradio serves its own static files, its upload/cache folder and these output folders, never
        # the models, settings or styles (blocked even if an output folder is set to contain them).
        outputs = [app.paths.outputs_dir, *(app._output_dir(kind) for kind in ("txt2img", "img2img"))]
        private = [
            app.paths.models_dir,
            app.paths.ckpt_dir,
            app.paths.lora_dir,
            app.paths.vae_dir,
            app.paths.embeddings_dir,
            app.paths.controlnet_dir,
            app.paths.config_file,
            app.paths.cache_file,
            app.paths.styles_file,
        ]
        demo = build_ui(app)
        # before the mount: routes extensions add here must come before gradio's catch-all "/"
        app.plugins.app_started(demo, web)
        head, css = app.plugins.page_assets()  # the loaded extensions' javascript/*.js and style.css
        web = gr.mount_gradio_app(
            web,
            demo,
            path="/",
            auth=list(gradio_credentials(app.args)) or None,
            allowed_paths=[str(path.resolve()) for path in outputs],
            blocked_paths=[str(path.resolve()) for path in private],
            head=head or None,
            css=css or None,
        )
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level="warning",
        ssl_keyfile=app.args.tls_keyfile,
        ssl_certfile=app.args.tls_certfile,
    )
    return uvicorn.Server(config)


def share_when_started(server: uvicorn.Server, host: str) -> threading.Thread:
    """--share: once `server` listens, open a gradio share link to it on a background thread. Offline
    this fails with a logged reason and the local server goes on serving."""

    def run() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.1)
        if server.should_exit:
            return
        url = open_share_link(host, server.servers[0].sockets[0].getsockname()[1])
        if url:
            print(f"Running on public URL: {url}", flush=True)

    thread = threading.Thread(target=run, name="share-link", daemon=True)
    thread.start()
    return thread


def warn_if_exposed(args: argparse.Namespace) -> None:
    """Say loudly when other machines can reach the server without a password."""
    warning = exposure_warning(args, bool(gradio_credentials(args)), bool(api_credentials(args)))
    if warning:
        log.warning(warning)
        print(warning, flush=True)


def serve(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = App(args)
    try:
        log.info("Model loaded: %s", app.load_initial_checkpoint())
    except UserError as error:  # the UI still starts and shows the problem; the user can pick another model
        log.error("Could not load a checkpoint: %s", error)
    host = server_name(args)
    server = create_server(app, host, args.port)
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
    finally:
        app.jobs.stop()


def serve_in_thread(
    app: App, host: str = "127.0.0.1", port: int = 0
) -> tuple[uvicorn.Server, threading.Thread]:
    """For tests and embedding: start the server on a thread and wait until it accepts connections."""
    server = create_server(app, host, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server thread exited during start-up")
        threading.Event().wait(0.05)
    return server, thread
