"""How many CPU threads torch computes with, chosen by the size of the model that runs.

Tiny models (the demo model, test models) spend their time in many small ops, where a second thread
costs more in hand-offs than it gains (measured here: the demo model ran twice as fast on one thread as on
two); large models spend it in big matrix products that scale with the cores. A user's choice wins:
the "torch_threads" setting, else OMP_NUM_THREADS (which torch itself reads at start-up).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

SMALL_MODEL_BYTES = 256 * 1024**2  # below this, one thread (the demo model is ~27 MB, SD 1.5 ~2-4 GB)


def free_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_for(model_bytes: int, setting: int = 0, environ: Mapping[str, str] = os.environ) -> int:
    """The thread count for a model of `model_bytes` weights. `setting` > 0 (the torch_threads setting)
    wins, then a valid OMP_NUM_THREADS; otherwise 1 for small models and the free cores for large ones."""
    if setting > 0:
        return setting
    try:
        omp = int(environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        omp = 0
    if omp > 0:
        return omp
    return 1 if model_bytes < SMALL_MODEL_BYTES else free_cores()


def model_bytes(modules: Mapping[str, object]) -> int:
    """The weights' size of a pipeline's components (parameters and buffers)."""
    return sum(
        t.numel() * t.element_size()
        for module in modules.values()
        if isinstance(module, torch.nn.Module)
        for t in [*module.parameters(), *module.buffers()]
    )


def threads_for_model(weight_bytes: int, setting: int = 0) -> int:
    """Set torch's intra-op threads for a model of `weight_bytes` (see threads_for); returns the count."""
    threads = threads_for(weight_bytes, setting)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
