"""Which batches of a job run on which worker, and the seeds each batch keeps: a batch run alone on any
worker makes the images it would have made as batch `b` of the whole job on one worker."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TypeVar

from webui.core.params import GenerationParams

W = TypeVar("W")


def split_batches(count: int, workers: Sequence[W]) -> dict[W, deque[int]]:
    """Batches 0..count-1 in contiguous runs, as even as they go, the first workers taking the extra
    ones (8 over 2: 0-3 and 4-7); workers beyond `count` get none."""
    if not workers:
        raise ValueError("no worker to split the batches over")
    share, extra = divmod(count, len(workers))
    plan: dict[W, deque[int]] = {}
    start = 0
    for index, worker in enumerate(workers):
        size = share + (index < extra)
        if size:
            plan[worker] = deque(range(start, start + size))
        start += size
    return plan


def batch_params(params: GenerationParams, batch: int) -> GenerationParams:
    """Batch `batch` of `params` (seed and subseed already resolved) as a job of its own: one batch, its
    first image's seed (seed+i, or the seed itself with a variation strength) and subseed+i."""
    first = batch * params.batch_size
    varied = params.subseed_strength != 0
    return params.replace(
        n_iter=1, seed=params.seed + (0 if varied else first), subseed=params.subseed + first
    )


def give_back(plan: dict[W, deque[int]], batches: Sequence[int], alive: Sequence[W]) -> None:
    """A lost worker's unfinished `batches` go to the alive workers with the least left to do."""
    for batch in sorted(batches):
        worker = min(alive, key=lambda candidate: len(plan.setdefault(candidate, deque())))
        plan[worker].append(batch)
