"""The App: one object holding the live state (settings, models, job queue), and the server around it."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from webui import __version__
from webui.api.routes import register_api
from webui.core.cmd_args import Paths, paths_from_args, server_name, uses_cpu
from webui.core.errors import ModelNotFound, UserError
from webui.core.hashing import HashCache
from webui.core.params import Img2Img, Request, Result, SwitchCheckpoint, SwitchVae, Txt2Img
from webui.engine import generate
from webui.engine.devices import choose_device
from webui.engine.embeddings import EmbeddingLibrary
from webui.engine.lora import LoraLibrary
from webui.engine.manager import ModelManager
from webui.engine.memory import MemoryFlags, log_startup
from webui.engine.registry import CheckpointRegistry
from webui.engine.vae import VaeRegistry
from webui.services.jobs import Job, JobQueue
from webui.services.outputs import dated_dir, save_image
from webui.services.settings import Settings, option

log = logging.getLogger(__name__)


class App:
    """Everything a running UI/API needs, built from the command-line flags. Tests build as many as they like."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths: Paths = paths_from_args(args)
        self.settings = Settings(self.paths.config_file)
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
            memory=memory,
            vae_tiling_threshold=self.settings.get("vae_tiling_threshold"),
        )
        try:
            self.manager.set_vae(self.settings.get("sd_vae"))
        except ModelNotFound as error:  # as A1111: a VAE that is gone falls back to Automatic
            log.warning("%s; using Automatic", error)
        self.jobs = JobQueue(self._run_job)
        self.jobs.start()

    def submit(self, params: Txt2Img | Img2Img, save_images: bool = True) -> Job:
        """Queue a txt2img or img2img/inpaint generation (the params' type says which)."""
        params.validate()  # bad input fails now, before it takes a place in the queue
        request = Request(params=params, save_images=save_images)
        return self.jobs.submit(request, kind=request.kind)

    def generate(self, params: Txt2Img | Img2Img, save_images: bool = True) -> Result:
        return self.submit(params, save_images).wait()

    def select_checkpoint(self, title: str) -> str:
        """Load the checkpoint and remember it; returns its title. The old one stays if this fails.

        It goes through the job queue, so it never swaps the model under a running generation."""
        return self.jobs.submit(SwitchCheckpoint(title), kind="checkpoint").wait()

    def _switch_checkpoint(self, title: str) -> str:
        loaded = self.manager.get(title)
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

    def _run_job(self, request: Request | SwitchCheckpoint | SwitchVae, job: Job) -> Result | str:
        if isinstance(request, SwitchCheckpoint):
            return self._switch_checkpoint(request.title)
        if isinstance(request, SwitchVae):
            return self._switch_vae(request.choice)
        result = generate.run(request.params, self.manager, job)
        if not (request.save_images and self.settings.get("samples_save")):
            return result
        directory = dated_dir(self._output_dir(request.kind))
        options = {
            "fmt": self.settings.get("samples_format"),
            "save_txt": self.settings.get("save_txt"),
            "quality": self.settings.get("jpeg_quality"),
            "lossless": self.settings.get("webp_lossless"),
        }
        paths = [
            str(save_image(image, text, directory, seed=seed, **options))
            for image, text, seed in zip(result.images, result.infotexts, result.seeds)
        ]
        return dataclasses.replace(result, paths=tuple(paths))

    def _output_dir(self, kind: str) -> Path:
        path = Path(self.settings.output_dir(kind)).expanduser()
        return path if path.is_absolute() else self.paths.data_dir / path


def create_server(app: App, host: str, port: int) -> uvicorn.Server:
    """The ASGI app: API routes first, then the gradio UI mounted at /."""
    web = FastAPI(title="webui", version=__version__)
    if app.args.api or app.args.nowebui:
        register_api(web, app)
    if not app.args.nowebui:
        import gradio as gr

        from webui.ui.blocks import build_ui

        web = gr.mount_gradio_app(web, build_ui(app), path="/")
    config = uvicorn.Config(web, host=host, port=port, log_level="warning")
    return uvicorn.Server(config)


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
    print(f"Running on local URL:  http://{'127.0.0.1' if host == '0.0.0.0' else host}:{args.port}", flush=True)
    try:
        server.run()
    finally:
        app.jobs.stop()


def serve_in_thread(app: App, host: str = "127.0.0.1", port: int = 0) -> tuple[uvicorn.Server, threading.Thread]:
    """For tests and embedding: start the server on a thread and wait until it accepts connections."""
    server = create_server(app, host, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server thread exited during start-up")
        threading.Event().wait(0.05)
    return server, thread
