"""img2img's Batch tab: the folder fields checked and the batch run by the generation service
(webui.services.batch), with gradio's progress bar fed while each file's job runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from webui.core.cmd_args import insecure_access_allowed
from webui.core.params import Img2Img
from webui.core.requests import Result
from webui.services import batch
from webui.services.batch import BatchFolders
from webui.ui.progress import wait_with_progress

if TYPE_CHECKING:
    from webui.services.container import Services


def batch_folders(services: Services, input_dir: str, output_dir: str, mask_dir: str) -> BatchFolders:
    """The Batch tab's folders, checked. When the UI is reachable from other machines only folders
    inside the data folder are allowed (unless --enable-insecure-extension-access)."""
    any_folder = insecure_access_allowed(services.args)
    return batch.batch_folders(services.paths.data_dir, any_folder, input_dir, output_dir, mask_dir)


def run_batch(
    services: Services, params: Img2Img, folders: BatchFolders, scale: float | None, progress: gr.Progress
) -> Result:
    """One queued job per input file (see webui.services.batch.run_batch); Interrupt stops the batch."""

    def on_file(index: int, count: int, name: str) -> None:
        progress(index / count, desc=f"File {index + 1}/{count}: {name}")

    return batch.run_batch(
        services.generation, params, folders, scale, on_file, lambda job: wait_with_progress(job, progress)
    )
