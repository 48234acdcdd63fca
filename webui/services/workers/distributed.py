"""One generation split over the workers: its batches run where they are planned (services/workers/plan)
on the free workers the job takes (services/workers/leases; a worker goes back as soon as it has none of
the job's batches left, so the next queued job runs beside), the finished ones come back in any order
and are handed on in batch order through the run's hooks, a lost worker's unfinished batches run again
elsewhere, and the job's interrupt and skip reach every worker running one of its batches. Each
result's checkpoint hash must match the head's own file."""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from webui.core import infotext
from webui.core.errors import UserError
from webui.core.params import GenerationParams
from webui.core.requests import Request, Result
from webui.engine.sampling import noise
from webui.engine.sampling.generate import resolve_seed
from webui.engine.sampling.run_hooks import FinishedBatch, NoHooks, RunHooks
from webui.services.job import Job
from webui.services.models import ModelsService
from webui.services.options import JobOptions
from webui.services.workers import plan
from webui.services.workers.leases import Leases, NoWorkers
from webui.services.workers.messages import BatchDone, BatchTask, from_png
from webui.services.workers.pool import Worker, WorkerPool, WorkerState

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between looks at the running batches (progress, interrupt, skip)
WAIT_FOR_WORKERS = 120.0  # seconds a job waits for a first worker (they start with the server)


class CheckpointMismatch(UserError):
    """A worker's checkpoint file is not the head's: its images would not be what the infotext says."""


class DistributedGeneration:
    """The engine call of a generation job (ProcessingContext.generate) when workers run it."""

    def __init__(self, pool: WorkerPool, models: ModelsService) -> None:
        self.pool = pool
        self.models = models
        self.made_by: dict[str, int] = {}  # images each worker made (benchmarks and tests read it)
        self.leases = Leases(pool, WAIT_FOR_WORKERS)

    def may_start(self, running: Sequence[Job], job: Job) -> bool:
        """Whether the queue may start `job` beside the `running` ones (JobQueue.beside): all are plain
        generations (not override_settings jobs, which change the head's settings for their time) and a
        worker is free for it."""
        if not all(isinstance(other.params, Request) for other in (*running, job)):
            return False
        return self.leases.free_for([other.id for other in running])

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
        workers = self.take(job, resolved, resolved.n_iter)
        run = _Run(self, resolved, job, options, hooks or NoHooks(), workers)
        try:
            done = run.wait() if workers else []  # none: interrupted while it waited for one
        finally:
            self.leases.release_all(job.id)
        finished = [run.finished[batch.batch] for batch in done]  # as the head's hooks left them
        first = done[0].params if done else resolved
        result_params = first.replace(
            n_iter=params.n_iter,
            seed=resolved.seed,
            subseed=subseed if params.subseed_strength else params.subseed,
        )
        return Result(
            params=result_params,
            images=tuple(image for batch in finished for image in batch.images),
            infotexts=tuple(text for batch in finished for text in batch.infotexts),
            seeds=tuple(seed for batch in finished for seed in batch.seeds),
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

    def take(self, job: Job, params: GenerationParams, count: int) -> list[Worker]:
        """Up to `count` free workers for the job, once one is free (preferring those with its checkpoint)."""
        order = functools.partial(self._preferred, params=params)
        return self.leases.take(job.id, count, order, lambda: job.interrupted)

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
    sent: dict[int, GenerationParams] = field(default_factory=dict)  # each batch's params, as sent
    finished: dict[int, FinishedBatch] = field(default_factory=dict)  # after the head's hooks
    handed_on: int = 0  # batches 0..handed_on-1 went to the hooks
    seeds: list[int] = field(default_factory=list)  # every image's seed, as one worker gives them
    told_interrupt: bool = False
    told_skip: bool = False
    previews_seen: dict[Worker, int] = field(default_factory=dict)  # the newest preview number had

    def wait(self) -> list[BatchDone]:
        """The finished batches in order (fewer when interrupted)."""
        self.plan = plan.split_batches(self.params.n_iter, self.workers)
        self.seeds = noise.run_seeds(self.params, self.params.subseed)[0]
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
            for batch in sorted(set(self.done) - set(self.finished)):  # after a gap left by an interrupt
                self._hand_on(self.done[batch])
        finally:
            if self.calls:  # an error ends the job: its other batches stop too
                for worker in {worker for worker, _ in self.calls.values()}:
                    worker.actor.interrupt.remote(self.job.id)
        return [self.done[batch] for batch in sorted(self.done)]

    def _dispatch(self) -> None:
        busy = {worker for worker, _ in self.calls.values()}
        for worker, batches in list(self.plan.items()):
            if worker in busy:
                continue
            if not batches:  # its part is done: the next job may take it
                del self.plan[worker]
                self.owner.leases.release(self.job.id, worker)
                continue
            batch = batches.popleft()
            # process_batch runs here, on the head, as the batch is sent: its params go with the batch
            size = self.params.batch_size
            changed = self.hooks.before_batch(
                self.params, batch, self.seeds[batch * size : (batch + 1) * size]
            )
            self.sent[batch] = plan.batch_params(changed, batch)
            task = BatchTask(
                self.job.id,
                self.sent[batch],
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
            self._hand_on(self.done[self.handed_on])
            self.handed_on += 1
            if self.handed_on < self.params.n_iter:
                self.job.next_batch()
        self.told_skip = False

    def _hand_on(self, done: BatchDone) -> None:
        """The batch's images through postprocess_image (here, on the head: the worker ran none of the
        run's hooks), then to batch_done, which saves and shows them."""
        sent, kept = self.sent[done.batch], []
        for data, text, seed in zip(done.images, done.infotexts, done.seeds, strict=True):
            image, for_infotext = self.hooks.after_image(sent, from_png(data), seed)
            before = dict(sent.extra_generation_params)  # a script may add to the infotext here too
            added = {k: v for k, v in for_infotext.extra_generation_params if before.get(k) != v}
            kept.append((image, infotext.with_extra(text, added) if added else text, seed))
        images, texts, seeds = (tuple(column) for column in zip(*kept)) if kept else ((), (), ())
        self.finished[done.batch] = FinishedBatch(images, texts, seeds)
        if kept:
            self.hooks.batch_done(self.finished[done.batch])

    def _lost(self, worker: Worker, batch: int, error: BaseException) -> None:
        """The worker died with `batch` (and its planned ones) unfinished: they run on the others."""
        self.owner.pool.lose(worker, str(error).strip().splitlines()[0])
        unfinished = [batch, *self.plan.pop(worker, ())]
        self.owner.leases.release(self.job.id, worker)
        alive = [other for other in self.owner.leases.held(self.job.id) if other.state is WorkerState.READY]
        if not alive:  # the job held no other worker: it takes free ones again
            alive = self.owner.take(self.job, self.params, len(unfinished))
        if not alive and self.job.interrupted:  # it stopped while waiting for a worker
            return
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
