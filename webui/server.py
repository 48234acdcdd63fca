"""The web server around an App: the API routes, the gradio UI mounted at /, access control, TLS, the
share link; for tests and embedding, a server on a background thread."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from fastapi_offline import FastAPIOffline
from PIL import Image

from webui import __version__
from webui.api.access import add_access_control, exposure_warning, gradio_file_paths, open_share_link
from webui.api.routes import register_api
from webui.core import image_limits
from webui.core.cmd_args import api_credentials, gradio_credentials
from webui.services.jobs import JobQueue
from webui.ui.gradio_import import skip_gradio_stub_writer

if TYPE_CHECKING:
    from webui.app import App

log = logging.getLogger(__name__)
# What uvicorn adds to the grace period for answering the requests still open when it stops.
CLOSE_MARGIN_S = 2.0


class GracefulServer(uvicorn.Server):
    """uvicorn's server that, on SIGTERM/SIGINT, also stops the job queue: no new jobs, the running one
    finishes or is interrupted after --shutdown-grace seconds, queued ones stay queued (their requests
    are answered 503), so the process exits in bounded time instead of draining the whole queue."""

    def __init__(self, config: uvicorn.Config, jobs: JobQueue, grace: float) -> None:
        super().__init__(config)
        self.jobs = jobs
        self.grace = grace

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.jobs.closed:
            log.warning("Shutting down: the running job has %g s to finish; queued jobs are kept", self.grace)
            self.jobs.shut_down(self.grace)
        super().handle_exit(sig, frame)


def create_server(app: App, host: str, port: int) -> GracefulServer:
    """The ASGI app: API routes first, then the gradio UI mounted at /; --api-auth (on every route but the
    UI's), the login throttle and CORS around both, --gradio-auth on the UI, TLS when both --tls-* files
    are given."""
    args, paths, services = app.args, app.paths, app.services
    # Pillow warns above this many pixels and refuses twice as many (decompression bombs; the UI's uploads
    # too); the API's decode_image refuses above it with the size named
    Image.MAX_IMAGE_PIXELS = image_limits.MAX_PIXELS
    web = FastAPIOffline(title="webui", version=__version__)  # /docs and /redoc without a CDN
    ui_login = not args.nowebui and bool(gradio_credentials(args))
    add_access_control(web, args, api_credentials(args), ui_login)
    if args.api or args.nowebui:
        register_api(web, services)
    if args.nowebui:
        app.plugins.app_started(None, web)
    else:
        skip_gradio_stub_writer()  # half of gradio's import time, before the page can be served
        import gradio as gr

        from webui.ui.blocks import build_ui
        from webui.ui.page_assets import page_assets

        # gradio serves its own static files, its upload/cache folder and the app's outputs folder, never
        # a folder a setting names (settings can be changed remotely), nor the models, settings or styles.
        private = [
            paths.models_dir,
            paths.ckpt_dir,
            paths.lora_dir,
            paths.vae_dir,
            paths.embeddings_dir,
            paths.controlnet_dir,
            *([paths.shipped_models_dir] if paths.shipped_models_dir else []),  # the install's demo models
            paths.config_file,
            paths.cache_file,
            paths.styles_file,
        ]
        allowed, blocked = gradio_file_paths([paths.outputs_dir], private)
        demo = build_ui(services)
        # before the mount: routes extensions add here must come before gradio's catch-all "/"
        app.plugins.app_started(demo, web)
        head, css = app.plugins.page_assets()  # the loaded extensions' javascript/*.js and style.css
        own_head, own_css = page_assets()  # the page's own script and style, before the extensions'
        head, css = f"{own_head}\n{head}", f"{own_css}\n{css}"
        web = gr.mount_gradio_app(
            web,
            demo,
            path="/",
            auth=list(gradio_credentials(args)) or None,
            allowed_paths=allowed,
            blocked_paths=blocked,
            head=head or None,
            css=css or None,
        )
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level="warning",
        ssl_keyfile=args.tls_keyfile,
        ssl_certfile=args.tls_certfile,
        timeout_graceful_shutdown=args.shutdown_grace + CLOSE_MARGIN_S,
    )
    return GracefulServer(config, services.jobs, args.shutdown_grace)


def when_listening(server: uvicorn.Server, action: Callable[[], None], name: str) -> threading.Thread:
    """Run `action` on a background thread once `server` listens (never if it stops first)."""

    def run() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if not server.should_exit:
            action()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def share_when_started(server: uvicorn.Server, host: str) -> threading.Thread:
    """--share: once `server` listens, open a gradio share link to it on a background thread. Offline
    this fails with a logged reason and the local server goes on serving."""

    def share() -> None:
        url = open_share_link(host, server.servers[0].sockets[0].getsockname()[1])
        if url:
            print(f"Running on public URL: {url}", flush=True)

    return when_listening(server, share, "share-link")


def warn_if_exposed(args: argparse.Namespace) -> None:
    """Say loudly when other machines can reach the server without a password."""
    warning = exposure_warning(args, bool(gradio_credentials(args)), bool(api_credentials(args)))
    if warning:
        log.warning(warning)
        print(warning, flush=True)


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
