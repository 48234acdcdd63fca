"""img2img's Batch tab: the folder fields checked and the batch run by the generation service
(webui.services.batch) on a thread, while the tab's progress display follows each file's job."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from webui.core.cmd_args import insecure_access_allowed
from webui.core.params import Img2Img
from webui.core.requests import Result
from webui.services import batch
from webui.services.batch import BatchFolders
from webui.services.job import Job
from webui.ui.progress import POLL_SECONDS, Snapshot, watch

if TYPE_CHECKING:
    from webui.services.container import Services


def batch_folders(services: Services, input_dir: str, output_dir: str, mask_dir: str) -> BatchFolders:
    """The Batch tab's folders, checked. When the UI is reachable from other machines only folders
    inside the data folder are allowed (unless --enable-insecure-extension-access)."""
    any_folder = insecure_access_allowed(services.args)
    return batch.batch_folders(services.paths.data_dir, any_folder, input_dir, output_dir, mask_dir)


class _FileJobs:
    """Hands each file's job, with its "File 2/5: name.png" label, from the batch's thread to the page's."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[str, Job]] = queue.Queue()
        self._label = ""

    def on_file(self, index: int, count: int, name: str) -> None:
        self._label = f"File {index + 1}/{count}: {name}"

    def wait(self, job: Job) -> Result:
        self.jobs.put((self._label, job))
        result: Result = job.wait()
        return result


class BatchRun:
    """One queued job per input file (webui.services.batch.run_batch) on a thread of its own; iterating
    gives each file's progress snapshots while they run (a progress.Run). Interrupt stops the batch."""

    def __init__(
        self,
        services: Services,
        params: Img2Img,
        folders: BatchFolders,
        scale: float | None,
        owner: str | None = None,
    ):
        self._files = _FileJobs()
        self._show_previews = bool(services.settings.get("live_previews_enable"))
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="img2img-batch")
        files = self._files
        self._future = pool.submit(
            batch.run_batch, services.generation, params, folders, scale, files.on_file, files.wait, owner
        )
        pool.shutdown(wait=False)  # the thread ends with the batch; a page that went away leaves it running

    def __iter__(self) -> Iterator[Snapshot]:
        while not (self._future.done() and self._files.jobs.empty()):
            try:
                label, job = self._files.jobs.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            yield from watch(job, self._show_previews, label)

    def result(self) -> Result:
        return self._future.result()
