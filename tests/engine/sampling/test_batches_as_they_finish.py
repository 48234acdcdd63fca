"""generate.run hands each batch over as it finishes (so services save and show it at once), and
Interrupt stops a run while its prompts are still being encoded (issue 21 #4, #6)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate, run_hooks
from webui.services.job import Job

BASE = Txt2Img(prompt="a red cube", steps=2, seed=40, width=64, height=64, sampler_name="Euler")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RecordingHooks(run_hooks.NoHooks):
    """The run's hooks, noting each finished batch and which batch the job was in when it came."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.batches: list[tuple[run_hooks.FinishedBatch, int]] = []

    def batch_done(self, batch: run_hooks.FinishedBatch) -> None:
        self.batches.append((batch, self.job.progress().state["job_no"]))


def new_job() -> Job:
    return Job(params=None, kind="txt2img", clock=time.monotonic)


def test_each_batch_is_handed_over_before_the_next_one_starts(manager: ModelManager) -> None:
    job = new_job()
    hooks = RecordingHooks(job)
    result = generate.run(BASE.replace(n_iter=3, batch_size=2), manager, job, hooks)

    assert [job_no for _, job_no in hooks.batches] == [0, 1, 2]
    assert [batch.seeds for batch, _ in hooks.batches] == [(40, 41), (42, 43), (44, 45)]
    handed = [
        (image, text) for batch, _ in hooks.batches for image, text in zip(batch.images, batch.infotexts)
    ]
    # what was handed over early is exactly what the run finally returns, infotexts included
    assert [image for image, _ in handed] == list(result.images)
    assert [text for _, text in handed] == list(result.infotexts)
    assert "Seed: 44," in result.infotexts[4]


def test_interrupt_while_the_prompt_is_encoded_stops_before_any_denoising(manager: ModelManager) -> None:
    job = new_job()
    pipe = manager.get().pipe
    passes: list[int] = []
    unet_calls: list[int] = []

    def encoder_pass(module: Any, args: Any, output: Any) -> None:
        passes.append(1)
        if len(passes) == 3:
            job._interrupt.set()  # what the Interrupt button does, while the third chunk is encoded

    long_prompt = "a red cube, " * 400  # about 1200 tokens: 16 chunks of 75, one encoder pass each
    handles = [
        pipe.text_encoder.register_forward_hook(encoder_pass),
        pipe.unet.register_forward_hook(lambda *_: unet_calls.append(1)),
    ]
    try:
        with torch.inference_mode():
            result = generate.run(BASE.replace(prompt=long_prompt, n_iter=2), manager, job)
    finally:
        for handle in handles:
            handle.remove()

    assert len(passes) == 3  # no chunk encoded after the interrupt
    assert unet_calls == []
    assert result.interrupted and result.images == () and result.infotexts == ()


def test_skip_while_the_prompt_is_encoded_goes_on_with_the_next_batch(manager: ModelManager) -> None:
    job = new_job()
    pipe = manager.get().pipe
    passes: list[int] = []

    def encoder_pass(module: Any, args: Any, output: Any) -> None:
        passes.append(1)
        if len(passes) == 2:
            job._skip.set()  # Skip, while the first batch's prompt is encoded

    handle = pipe.text_encoder.register_forward_hook(encoder_pass)
    try:
        result = generate.run(BASE.replace(prompt="a red cube, " * 100, n_iter=2), manager, job)
    finally:
        handle.remove()

    assert not result.interrupted
    assert result.seeds == (41,) and len(result.images) == 1  # the first batch made nothing
    assert "Seed: 41," in result.infotexts[0]
