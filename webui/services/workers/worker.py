"""A generation worker: its own model manager over the same model folders as the head, running one batch
at a time for the head (a Ray actor wraps it: services/workers/pool.py). Threads of the actor answer
progress (with the newest live preview), interrupt and skip while a batch runs."""

from __future__ import annotations

import argparse
import itertools
import socket
import threading
from collections.abc import Iterator
from typing import Any

from PIL import Image

from webui.core.cmd_args import paths_from_args
from webui.engine.sampling import generate
from webui.engine.sampling.previews import PreviewReporter
from webui.engine.upscaling.catalog import UpscalerCatalog, upscaler_folders
from webui.services.model_factory import build_manager
from webui.services.options import ModelOptions
from webui.services.workers.messages import BatchDone, BatchProgress, BatchTask, WorkerInfo, to_png

SEEN_JOBS = 64  # interrupted job ids remembered (an interrupt may arrive before the batch it stops)


class BatchReporter:
    """The engine's view of the running batch: its step and newest live preview (PNG), and the head's
    interrupt and skip. The engine's lazy previews reach it through a PreviewReporter, which makes an
    image only on the steps the head's live-preview setting asks for."""

    def __init__(self, job_id: str, interrupted: set[str], numbers: Iterator[int]) -> None:
        self.job_id = job_id
        self._interrupted_jobs = interrupted
        self._skip = threading.Event()
        self._numbers = numbers  # the worker's preview numbers, increasing over all its batches
        self.step = 0
        self.steps = 0
        self.preview_number = 0
        self.preview: bytes | None = None

    @property
    def interrupted(self) -> bool:
        return self.job_id in self._interrupted_jobs

    @property
    def skipped(self) -> bool:
        return self._skip.is_set()

    def skip(self) -> None:
        self._skip.set()

    def report(self, step: int, total: int, preview: Any | None = None) -> None:
        if isinstance(preview, Image.Image):
            self.preview, self.preview_number = to_png(preview), next(self._numbers)
        self.step, self.steps = step, total

    def progress(self, since: int) -> BatchProgress:
        newer = self.preview_number > since
        number = self.preview_number
        return BatchProgress(self.job_id, self.step, self.steps, number, self.preview if newer else None)

    def set_batches(self, count: int) -> None:
        pass

    def next_batch(self) -> None:
        pass


class GenerationWorker:
    """`threads` > 0: that many torch threads (CPU workers; the torch_threads setting overrides it); 0: as
    the model's size says."""

    def __init__(self, args: argparse.Namespace, options: ModelOptions, threads: int = 0) -> None:
        paths = paths_from_args(args)
        # Inside a Ray actor with a GPU, the visible device is the one Ray gave it: the default one.
        self.manager = build_manager(args, paths, options, device_id=None)
        self.upscalers = UpscalerCatalog(upscaler_folders(paths.models_dir, vars(args)))
        self._options: ModelOptions | None = None
        if threads > 0:
            self.manager.set_torch_threads(threads)
        self._configure(options)
        self._running = threading.Lock()  # one batch at a time
        self._reporter: BatchReporter | None = None
        self._interrupted: set[str] = set()
        self._preview_numbers = itertools.count(1)

    def describe(self) -> WorkerInfo:
        loaded = self.manager.current
        return WorkerInfo(
            host=socket.gethostname(),
            device=str(self.manager.device.device),
            checkpoint=loaded.path.name if loaded is not None else None,
        )

    def run_batch(self, task: BatchTask) -> BatchDone:
        with self._running:
            self._configure(task.model)
            reporter = self._reporter = BatchReporter(task.job_id, self._interrupted, self._preview_numbers)
            job = PreviewReporter(reporter, task.preview_period)
            try:
                result = generate.run(task.params, self.manager, job, None, task.noise, self.upscalers)
            finally:
                self._reporter = None
            loaded = self.manager.get(task.params.sd_model_checkpoint)  # the one that ran: no load
            return BatchDone(
                batch=task.batch,
                params=result.params,
                images=tuple(to_png(image) for image in result.images),
                infotexts=result.infotexts,
                seeds=result.seeds,
                subseeds=result.subseeds,
                interrupted=result.interrupted,
                warnings=result.warnings,
                checkpoint=loaded.path.name,
                short_hash=self.manager.short_hash(loaded),
            )

    def progress(self, since: int = 0) -> BatchProgress | None:
        """The running batch's job, step and a preview newer than preview number `since`; None when idle."""
        reporter = self._reporter
        return None if reporter is None else reporter.progress(since)

    def interrupt(self, job_id: str) -> None:
        """Stop the job's running batch now, and any of its batches that arrive later."""
        if len(self._interrupted) >= SEEN_JOBS:
            self._interrupted.clear()
        self._interrupted.add(job_id)

    def skip(self, job_id: str) -> None:
        """End the job's running batch early (its image is decoded as far as it got)."""
        reporter = self._reporter
        if reporter is not None and reporter.job_id == job_id:
            reporter.skip()

    def _configure(self, options: ModelOptions) -> None:
        """The head's model options for this batch (its settings may have changed since the last)."""
        before = self._options
        if before == options:
            return
        self.manager.vae_tiling_threshold = options.vae_tiling_threshold
        self.manager.configure(options.checkpoints_limit, options.keep_in_cpu, options.checkpoint_cache)
        if before is None or before.sd_vae != options.sd_vae:
            self.manager.set_vae(options.sd_vae)
        if options.torch_threads and (before is None or before.torch_threads != options.torch_threads):
            self.manager.set_torch_threads(options.torch_threads)  # the setting, when the user chose one
        self._options = options
