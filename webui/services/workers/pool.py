"""The head's generation workers: Ray actors on a local cluster the head starts (`--workers N`) or on an
existing cluster it joins (`--ray-address`). A monitor thread notices a lost worker within seconds and
starts workers for capacity that joins later (a GPU freed or added, a node joined; locally: N in all)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from webui.core.cmd_args import device_ids, uses_cpu
from webui.services.options import ModelOptions
from webui.services.workers.messages import WorkerInfo
from webui.services.workers.worker import GenerationWorker

log = logging.getLogger(__name__)

ACTOR_CONCURRENCY = 4  # a running batch, and progress / interrupt / skip / describe beside it
PING_TIMEOUT = 10.0  # seconds a ready worker may take to answer before it counts as lost
MAX_FAILED_STARTS = 3


class WorkerState(str, Enum):
    STARTING = "starting"  # the actor is being placed or is loading its libraries
    READY = "ready"
    LOST = "lost"  # its process, or its machine, is gone


@dataclass(frozen=True)
class PoolSpec:
    """How the workers are found: `address` None: a local cluster of `count` workers."""

    args: argparse.Namespace  # the head's flags: the workers read the same model folders
    count: int = 0
    address: str | None = None
    device_ids: tuple[str, ...] = ()  # local CUDA devices, one worker each
    threads: int = 1  # torch threads of a CPU worker
    use_gpus: bool = False  # each worker asks Ray for one GPU


def pool_spec(args: argparse.Namespace) -> PoolSpec:
    """The workers the flags ask for: --workers N (one per --device-id device) or --ray-address."""
    ids = device_ids(args)
    count = args.workers or len(ids)
    gpus = torch.cuda.is_available() and not uses_cpu(args, "sd")
    threads = max(1, (os.cpu_count() or 1) // max(count, 1))  # CPU workers share the cores
    return PoolSpec(args, count, args.ray_address, ids if gpus else (), threads, gpus)


@dataclass(eq=False)
class Worker:
    """The head's view of one worker actor."""

    name: str
    actor: Any
    state: WorkerState = WorkerState.STARTING
    info: WorkerInfo | None = None
    error: str = ""
    _ready: Any = field(default=None, repr=False)  # the first describe() call: done when it started

    def lost(self, reason: str) -> None:
        if self.state is not WorkerState.LOST:
            self.state, self.error = WorkerState.LOST, reason
            log.warning("Worker %s lost: %s", self.name, reason)


class WorkerPool:
    def __init__(
        self, spec: PoolSpec, model_options: Callable[[], ModelOptions], interval: float = 1.0
    ) -> None:
        self.spec = spec
        self._model_options = model_options
        self._interval = interval
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._changed = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._started_ray = False
        self._made = 0
        self._failed_starts = 0  # in a row: a worker that cannot start is not started again and again

    def start(self) -> None:
        """Start or join the cluster, then the workers and the monitor."""
        if not ray.is_initialized():
            with _visible_devices(self.spec.device_ids if self.spec.address is None else ()):
                ray.init(**self._init_options())
            self._started_ray = True
        if self.spec.address is not None:  # a cluster's workers ask for GPUs when it has any
            self.spec = dataclasses.replace(self.spec, use_gpus=ray.cluster_resources().get("GPU", 0) > 0)
        self.fill()
        self._thread = threading.Thread(target=self._monitor, name="worker-monitor", daemon=True)
        self._thread.start()

    def _init_options(self) -> dict[str, Any]:
        spec = self.spec
        quiet: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if spec.address is not None:
            return {"address": spec.address, **quiet}
        if spec.use_gpus:
            return {"num_gpus": len(spec.device_ids) or spec.count, **quiet}
        return {"num_cpus": spec.count * spec.threads, "num_gpus": 0, **quiet}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            ray.kill(worker.actor)
        if self._started_ray:
            ray.shutdown()

    # What the scheduler uses.

    def workers(self) -> list[Worker]:
        with self._lock:
            return list(self._workers)

    def ready(self) -> list[Worker]:
        with self._lock:
            return [worker for worker in self._workers if worker.state is WorkerState.READY]

    def wait_ready(self, timeout: float, count: int = 1) -> list[Worker]:
        """The ready workers once `count` of them are, or when `timeout` seconds have passed."""
        with self._changed:
            self._changed.wait_for(
                lambda: sum(w.state is WorkerState.READY for w in self._workers) >= count, timeout
            )
            return [worker for worker in self._workers if worker.state is WorkerState.READY]

    def lose(self, worker: Worker, reason: str) -> None:
        """Count the worker as lost for good, and end its actor if it still runs (a worker that stopped
        answering for a while): a late answer never counts, its batches run elsewhere."""
        with self._changed:
            worker.lost(reason)
            self._changed.notify_all()
        ray.kill(worker.actor)

    def note(self, worker: Worker, info: WorkerInfo) -> None:
        with self._lock:
            worker.info = info

    # Starting workers and watching them.

    def capacity(self) -> int:
        """How many workers the cluster offers: locally the count asked for; on a cluster one a GPU, or
        one a node when it has none."""
        if self.spec.address is None:
            return self.spec.count
        if self.spec.use_gpus:
            return int(ray.cluster_resources().get("GPU", 0))
        return sum(1 for node in ray.nodes() if node.get("Alive"))

    def fill(self) -> None:
        """Start workers for the capacity no live worker uses."""
        with self._lock:
            alive = sum(worker.state is not WorkerState.LOST for worker in self._workers)
        if self._failed_starts >= MAX_FAILED_STARTS:
            return
        for _ in range(self.capacity() - alive):
            self._add()

    def _add(self) -> None:
        spec = self.spec
        self._made += 1
        name = f"worker-{self._made}"
        resources: dict[str, Any] = (
            {"num_gpus": 1, "num_cpus": 1} if spec.use_gpus else {"num_cpus": spec.threads}
        )
        remote = ray.remote(max_concurrency=ACTOR_CONCURRENCY, max_restarts=0, **resources)(GenerationWorker)
        strategy = {} if spec.address is None else {"scheduling_strategy": "SPREAD"}
        actor = remote.options(name=None, **strategy).remote(
            spec.args, self._model_options(), 0 if spec.use_gpus else spec.threads
        )
        worker = Worker(name, actor)
        worker._ready = actor.describe.remote()
        with self._lock:
            self._workers.append(worker)
        log.info("Starting %s", name)

    def _monitor(self) -> None:
        ticks = 0
        while not self._stop.wait(self._interval):
            ticks += 1
            for worker in self.workers():
                self._check(worker)
            if ticks % 5 == 0:
                try:
                    self.fill()
                except Exception:  # the cluster is unreachable for now: try again on the next round
                    log.exception("Could not look for new worker capacity")

    def _check(self, worker: Worker) -> None:
        if worker.state is WorkerState.LOST:
            return
        if worker.state is WorkerState.STARTING:
            done, _ = ray.wait([worker._ready], timeout=0)
            if not done:
                return
            call = worker._ready
        else:
            call = worker.actor.describe.remote()
        try:
            info = ray.get(call, timeout=PING_TIMEOUT)
        except RayActorError as error:
            if worker.state is WorkerState.STARTING:
                self._failed_starts += 1
            self.lose(worker, _first_line(error))
            return
        except GetTimeoutError:
            self.lose(worker, f"no answer in {PING_TIMEOUT:.0f} s")
            return
        with self._changed:
            if worker.state is WorkerState.STARTING:
                log.info("%s ready on %s (%s)", worker.name, info.host, info.device)
            worker.state, worker.info = WorkerState.READY, info
            self._failed_starts = 0
            self._changed.notify_all()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@contextmanager
def _visible_devices(device_ids: tuple[str, ...]) -> Iterator[None]:
    """The local cluster sees only these CUDA devices (--device-id 0,1): Ray gives each worker one."""
    if not device_ids:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(device_ids)
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
