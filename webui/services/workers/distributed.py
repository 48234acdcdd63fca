"""One generation split over the workers: its batches run where they are planned (services/workers/plan),
the finished ones come back in any order and are handed on in batch order, a lost worker's unfinished
batches run again elsewhere, and the job's interrupt and skip reach every worker running one of its
batches. Each result's checkpoint hash must match the head's own file."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from webui.core.errors import UserError
from webui.core.params import GenerationParams
from webui.core.requests import Result
from webui.engine.sampling.generate import resolve_seed
from webui.engine.sampling.run_hooks import FinishedBatch, NoHooks, RunHooks
from webui.services.job import Job
from webui.services.models import ModelsService
from webui.services.options import JobOptions
from webui.services.workers import plan
from webui.services.workers.messages import BatchDone, BatchTask, from_png
from webui.services.workers.pool import Worker, WorkerPool

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between looks at the running batches (progress, interrupt, skip)
WAIT_FOR_WORKERS = 120.0  # seconds a job waits for a first worker (they start with the server)


class NoWorkers(UserError):
    status_code = 503


class CheckpointMismatch(UserError):
    """A worker's checkpoint file is not the head's: its images would not be what the infotext says."""


class DistributedGeneration:
    """The engine call of a generation job (ProcessingContext.generate) when workers run it."""

    def __init__(self, pool: WorkerPool, models: ModelsService) -> None:
        self.pool = pool
        self.models = models
        self.made_by: dict[str, int] = {}  # images each worker made (benchmarks and tests read it)

    def bind(self, job: Job, options: JobOptions) -> Callable[[GenerationParams, RunHooks | None], Result]:
        return lambda params, hooks: self.run(params, hooks, job, options)

    def run(self, params: GenerationParams, hooks: RunHooks | None, job: Job, options: JobOptions) -> Result:
        params.validate()
        subseed = resolve_seed(params.subseed)
        resolved = params.replace(
            seed=resolve_seed(params.seed),
            subseed=subseed,
            sd_model_checkpoint=params.sd_model_checkpoint or self.models.current_title() or None,
        )
        workers = self.pool.ready() or self.pool.wait_ready(WAIT_FOR_WORKERS)
        if not workers:
            lost = sum(1 for worker in self.pool.workers() if worker.error)
            raise NoWorkers(f"No generation worker is running ({lost} lost); start one or restart the server")
        run = _Run(self, resolved, job, options, hooks or NoHooks(), self._preferred(workers, resolved))
        done = run.wait()
        first = done[0].params if done else resolved
        result_params = first.replace(
            n_iter=params.n_iter,
            seed=resolved.seed,
            subseed=subseed if params.subseed_strength else params.subseed,
        )
        return Result(
            params=result_params,
            images=tuple(from_png(data) for batch in done for data in batch.images),
            infotexts=tuple(text for batch in done for text in batch.infotexts),
            seeds=tuple(seed for batch in done for seed in batch.seeds),
            subseeds=tuple(seed for batch in done for seed in batch.subseeds),
            interrupted=job.interrupted or any(batch.interrupted for batch in done),
            warnings=tuple(dict.fromkeys(warning for batch in done for warning in batch.warnings)),
        )

    def status(self) -> list[dict[str, Any]]:
        """Each worker: name, state (starting, ready, lost), host, device, checkpoint, why it was lost."""
        return [
            {
                "name": worker.name,
                "state": worker.state.value,
                "host": worker.info.host if worker.info else None,
                "device": worker.info.device if worker.info else None,
                "checkpoint": worker.info.checkpoint if worker.info else None,
                "images": self.made_by.get(worker.name, 0),
                "error": worker.error or None,
            }
            for worker in self.pool.workers()
        ]

    def _preferred(self, workers: list[Worker], params: GenerationParams) -> list[Worker]:
        """Workers that have the job's checkpoint loaded first: with fewer batches than workers, they
        get them and no other worker loads it."""
        wanted = self._file_name(params.sd_model_checkpoint)
        return sorted(workers, key=lambda worker: worker.info is None or worker.info.checkpoint != wanted)

    def _file_name(self, checkpoint: str | None) -> str | None:
        if not checkpoint:
            return None
        return self.models.find_checkpoint(checkpoint).path.name

    def check_hash(self, worker: Worker, done: BatchDone) -> None:
        entry = self.models.find_checkpoint(done.checkpoint)
        mine = self.models.registry.short_hash(entry)
        if done.short_hash != mine:
            raise CheckpointMismatch(
                f"{worker.name} has a different file for checkpoint {done.checkpoint} (hash "
                f"{done.short_hash}, the server's is {mine}): every worker must read the same model files"
            )


@dataclass
class _Run:
    """One engine call on the workers, from planning to the last batch."""

    owner: DistributedGeneration
    params: GenerationParams
    job: Job
    options: JobOptions
    hooks: RunHooks
    workers: list[Worker]
    plan: dict[Worker, deque[int]] = field(default_factory=dict)
    calls: dict[Any, tuple[Worker, int]] = field(default_factory=dict)  # object ref → (worker, batch)
    done: dict[int, BatchDone] = field(default_factory=dict)
    handed_on: int = 0  # batches 0..handed_on-1 went to the hooks
    told_interrupt: bool = False
    told_skip: bool = False
    previews_seen: dict[Worker, int] = field(default_factory=dict)  # the newest preview number had

    def wait(self) -> list[BatchDone]:
        """The finished batches in order (fewer when interrupted)."""
        self.plan = plan.split_batches(self.params.n_iter, self.workers)
        self.job.set_batches(self.params.n_iter)
        try:
            while True:
                if not self.job.interrupted:
                    self._dispatch()
                if not self.calls:
                    break
                ready, _ = ray.wait(list(self.calls), num_returns=1, timeout=POLL)
                for ref in ready:
                    self._collect(ref)
                self._relay()
        finally:
            if self.calls:  # an error ends the job: its other batches stop too
                for worker in {worker for worker, _ in self.calls.values()}:
                    worker.actor.interrupt.remote(self.job.id)
        return [self.done[batch] for batch in sorted(self.done)]

    def _dispatch(self) -> None:
        busy = {worker for worker, _ in self.calls.values()}
        for worker, batches in self.plan.items():
            if worker in busy or not batches:
                continue
            batch = batches.popleft()
            task = BatchTask(
                self.job.id,
                plan.batch_params(self.params, batch),
                batch,
                self.options.model,
                self.options.noise,
                self.options.preview_period,
            )
            self.calls[worker.actor.run_batch.remote(task)] = (worker, batch)

    def _collect(self, ref: Any) -> None:
        worker, batch = self.calls.pop(ref)
        try:
            done: BatchDone = ray.get(ref)
        except RayActorError as error:
            self._lost(worker, batch, error)
            return
        except RayTaskError as error:  # the worker's own error: a user error is told as the user's
            if isinstance(error.cause, UserError):
                raise error.cause from None
            raise
        self.owner.check_hash(worker, done)
        self.owner.made_by[worker.name] = self.owner.made_by.get(worker.name, 0) + len(done.images)
        self.done[batch] = done
        while self.handed_on in self.done:  # in batch order, as one worker would have
            finished = self.done[self.handed_on]
            images = tuple(from_png(data) for data in finished.images)
            if images:
                self.hooks.batch_done(FinishedBatch(images, finished.infotexts, finished.seeds))
            self.handed_on += 1
            if self.handed_on < self.params.n_iter:
                self.job.next_batch()
        self.told_skip = False

    def _lost(self, worker: Worker, batch: int, error: BaseException) -> None:
        """The worker died with `batch` (and its planned ones) unfinished: they run on the others."""
        self.owner.pool.lose(worker, str(error).strip().splitlines()[0])
        unfinished = [batch, *self.plan.pop(worker, ())]
        alive = [other for other in self.owner.pool.ready() if other is not worker]
        if not alive:
            alive = self.owner.pool.wait_ready(WAIT_FOR_WORKERS)
        if not alive:
            raise NoWorkers(f"{worker.name} was lost and no other worker is running")
        log.info("%s lost: batches %s of %s run again on the others", worker.name, unfinished, self.job)
        plan.give_back(self.plan, unfinished, alive)

    def _relay(self) -> None:
        """The job's interrupt and skip to its running batches; their step and newest live preview to
        the job (as the in-process PreviewReporter would give it)."""
        running = {worker for worker, _ in self.calls.values()}
        if self.job.interrupted and not self.told_interrupt:
            self.told_interrupt = True
            for worker in running:
                worker.actor.interrupt.remote(self.job.id)
        if self.job.skipped and not self.told_skip:
            self.told_skip = True
            for worker in running:
                worker.actor.skip.remote(self.job.id)
        polled = list(running)
        try:
            answers = ray.get(
                [worker.actor.progress.remote(self.previews_seen.get(worker, 0)) for worker in polled],
                timeout=POLL,
            )
        except (RayActorError, GetTimeoutError):  # a lost worker shows in its own batch's result
            return
        mine = [
            (w, a) for w, a in zip(polled, answers, strict=True) if a is not None and a.job_id == self.job.id
        ]
        if not mine:
            return
        preview = None
        for worker, answer in mine:
            if answer.preview is not None:
                self.previews_seen[worker] = answer.preview_number
                preview = from_png(answer.preview)  # a few hundred bytes: the latent's size
        self.job.report(*max((answer.step, answer.steps) for _, answer in mine), preview)
