"""txt2img through engine.generate.run on tiny single-file checkpoints, with real jobs as step reporters.

64x64 images, 2 steps: pixels carry no meaning here, only identity. Equal means byte-equal, except where a
batch is compared with single images (see `assert_nearly_equal`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext, samplers
from webui.core.errors import InvalidParameter
from webui.core.hashing import sha256_file
from webui.core.params import GenerationParams, Txt2Img
from webui.core.requests import Result
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.devices import DeviceChoice
from webui.engine.sampling import generate
from webui.engine.sampling.prompt_conditioning import PromptConditioning
from webui.services.job import Job, JobStatus
from webui.services.jobs import JobQueue

CPU = DeviceChoice(torch.device("cpu"), torch.float32)
BASE = Txt2Img(
    prompt="a red cube, studio light",
    negative_prompt="blurry",
    steps=2,
    cfg_scale=5.0,
    sampler_name="Euler a",
    seed=1234,
    width=64,
    height=64,
)

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Should have ta>=t0"),  # torchsde, float rounding of sigma_min
]


class RecordingJob(Job):
    """A real Job that also keeps every report and the progress state it led to."""

    def __init__(self) -> None:
        super().__init__(params=None, kind="txt2img", clock=time.monotonic)
        self.reports: list[tuple[int, int]] = []
        self.states: list[dict[str, Any]] = []
        self.fractions: list[float] = []

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        super().report(step, total, preview)
        self.reports.append((step, total))
        progress = self.progress()
        self.states.append(progress.state)
        self.fractions.append(progress.progress)


def run(manager: ModelManager, params: GenerationParams) -> tuple[Result, RecordingJob]:
    job = RecordingJob()
    return generate.run(params, manager, job), job


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_nearly_equal(a: Image.Image, b: Image.Image) -> None:
    """Equal up to rounding: a batch of 2 runs the UNet and VAE through other CPU kernels than a batch of 1,
    so their floats differ by ~1e-6 (measured: UNet 2e-6, VAE 4e-6), which flips a rare pixel value by 1.
    A batch-dependent image (e.g. one Brownian tree for the whole batch) differs by ~2.3 on average."""
    diff = np.abs(pixels(a) - pixels(b))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001, (diff.max(), diff.mean())


def assert_differ(a: Image.Image, b: Image.Image) -> None:
    assert np.abs(pixels(a) - pixels(b)).mean() > 10


@pytest.mark.parametrize("sampler", [s.name for s in samplers.SAMPLERS])
def test_every_sampler_gives_identical_pixels_for_the_same_params(
    manager: ModelManager, sampler: str
) -> None:
    # cfg 1 skips the unconditional half of the batch: half the time, and the noise is what matters here
    params = BASE.replace(sampler_name=sampler, scheduler="Automatic", cfg_scale=1.0, seed=77)
    first, _ = run(manager, params)
    second, _ = run(manager, params)
    assert first.params.sampler_name == sampler
    assert pixels(first.images[0]).std() > 5  # a real image, not a blank one that is trivially equal
    assert first.images[0].tobytes() == second.images[0].tobytes()


def test_different_seeds_give_different_images(manager: ModelManager) -> None:
    one, _ = run(manager, BASE.replace(seed=1))
    two, _ = run(manager, BASE.replace(seed=2))
    assert one.seeds == (1,) and two.seeds == (2,)
    assert_differ(one.images[0], two.images[0])


def test_random_seed_is_resolved_reported_and_reproduces(manager: ModelManager) -> None:
    first, _ = run(manager, BASE.replace(seed=-1))
    (seed,) = first.seeds
    assert 0 <= seed <= generate.MAX_SEED
    assert first.params.seed == seed
    assert infotext.parse(first.infotexts[0])["Seed"] == str(seed)
    again, _ = run(manager, BASE.replace(seed=seed))
    assert again.images[0].tobytes() == first.images[0].tobytes()


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ SDE", "DPM++ 2M SDE"])  # noise drawn at every step
def test_an_image_does_not_depend_on_its_batch(manager: ModelManager, sampler: str) -> None:
    params = BASE.replace(sampler_name=sampler, seed=500)
    batch, _ = run(manager, params.replace(batch_size=2))
    alone, _ = run(manager, params.replace(seed=501))
    assert batch.seeds == (500, 501)
    assert len(batch.images) == 2
    assert_nearly_equal(batch.images[1], alone.images[0])
    assert_differ(batch.images[0], batch.images[1])


def test_n_iter_batches_take_consecutive_seeds_and_report_progress(manager: ModelManager) -> None:
    result, job = run(manager, BASE.replace(seed=10, batch_size=2, n_iter=2))
    assert result.seeds == (10, 11, 12, 13)
    assert len(result.images) == len(result.infotexts) == 4
    assert [infotext.parse(text)["Seed"] for text in result.infotexts] == ["10", "11", "12", "13"]
    assert job.reports == [(1, 2), (2, 2), (1, 2), (2, 2)]
    assert [(s["job_no"], s["job_count"], s["sampling_step"]) for s in job.states] == [
        (0, 2, 1),
        (0, 2, 2),
        (1, 2, 1),
        (1, 2, 2),
    ]
    assert job.states[-1]["job"] == "Batch 2 out of 2"
    assert job.fractions == sorted(job.fractions) and job.fractions[1] == 0.5 and job.fractions[-1] == 1.0
    assert_differ(result.images[1], result.images[2])  # the second batch has its own seeds


def test_clip_skip_changes_the_image(manager: ModelManager) -> None:
    last, _ = run(manager, BASE.replace(seed=3, clip_skip=1))
    skipped, _ = run(manager, BASE.replace(seed=3, clip_skip=2))
    assert "Clip skip" not in infotext.parse(last.infotexts[0])
    assert infotext.parse(skipped.infotexts[0])["Clip skip"] == "2"
    assert np.abs(pixels(last.images[0]) - pixels(skipped.images[0])).mean() > 1


def test_clip_skip_applies_to_the_negative_prompt_too(manager: ModelManager) -> None:
    # With the negative prompt equal to the prompt, CFG gives the prompt's prediction whatever the scale,
    # but only when both texts went through the same layers.
    same = BASE.replace(prompt="a red cube", negative_prompt="a red cube", seed=6, clip_skip=2)
    guided, _ = run(manager, same.replace(cfg_scale=7.0))
    unguided, _ = run(manager, same.replace(cfg_scale=1.0))  # no CFG at all: the prompt alone
    assert_nearly_equal(guided.images[0], unguided.images[0])


def test_plain_prompt_conditioning_is_the_pipelines_own(manager: ModelManager) -> None:
    loaded = manager.get()
    params = BASE.replace(prompt="a red cube, studio light", negative_prompt="blur")
    with torch.inference_mode():
        own, own_negative = loaded.pipe.encode_prompt([params.prompt], torch.device("cpu"), 1, True, ["blur"])
        mine = PromptConditioning(loaded, params, 1).kwargs(0)
    assert torch.equal(mine["prompt_embeds"], own)
    assert torch.equal(mine["negative_prompt_embeds"], own_negative)
    too_deep = params.replace(clip_skip=loaded.pipe.text_encoder.config.num_hidden_layers + 1)
    with pytest.raises(InvalidParameter, match="layers"):
        PromptConditioning(loaded, too_deep, 1)


def test_prompt_editing_changes_the_conditioning_mid_run(manager: ModelManager) -> None:
    def image(prompt: str) -> np.ndarray:
        return pixels(run(manager, BASE.replace(prompt=prompt, seed=5, steps=4))[0].images[0])

    red, blue = image("red square"), image("blue square")
    # An edit after the last step never happens: exactly the first prompt, so the syntax was understood.
    assert np.array_equal(image("[red square:blue square:10]"), red)
    edited = image("[red square:blue square:2]")
    assert not np.array_equal(edited, red) and not np.array_equal(edited, blue)


def test_extra_network_tags_are_refused_until_supported(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="<lora:style>"):
        run(manager, BASE.replace(prompt="a cat <lora:style:0.8>"))


def test_infotext_reads_back_to_the_params_that_remake_the_image(manager: ModelManager) -> None:
    params = BASE.replace(
        sampler_name="DPM++ 2M", scheduler="Exponential", seed=90, n_iter=2, clip_skip=2, width=64, height=80
    )
    result, _ = run(manager, params)
    entry = manager.current_entry()
    assert entry is not None and entry.model_name == "tiny-sd1"
    short_hash = sha256_file(entry.path)[:10]
    for image, text, seed in zip(result.images, result.infotexts, (90, 91)):
        assert image.size == (64, 80)
        fields = infotext.parse(text)
        assert fields["Prompt"] == params.prompt and fields["Negative prompt"] == params.negative_prompt
        assert {key: fields.get(key) for key in ("Seed", "Size", "Model", "Model hash", "RNG")} == {
            "Seed": str(seed),
            "Size": "64x80",
            "Model": "tiny-sd1",
            "Model hash": short_hash,
            "RNG": None,  # A1111's default GPU noise (NV without CUDA) has no RNG key
        }
        assert (fields["Sampler"], fields["Schedule type"]) == ("DPM++ 2M", "Exponential")
        read_back = infotext.to_params(fields)
        assert read_back == params.replace(seed=seed, n_iter=1, sd_model_checkpoint="tiny-sd1")
    # the second image, made alone in its own batch, is made again from its infotext alone
    again, _ = run(manager, read_back)
    assert again.images[0].tobytes() == result.images[1].tobytes()


def test_interrupt_during_the_first_step_stops_the_job(manager: ModelManager) -> None:
    steps: list[int] = []

    def runner(params: GenerationParams, job: Job) -> Result:
        report = job.report

        def interrupting_report(step: int, total: int, preview: object | None = None) -> None:
            report(step, total, preview)
            steps.append(step)
            if step == 1:
                queue.interrupt()  # what the Interrupt button does, while the first step is reported

        job.report = interrupting_report  # type: ignore[method-assign]
        return generate.run(params, manager, job)

    queue = JobQueue(runner)
    queue.start()
    try:
        job = queue.submit(BASE.replace(steps=4, n_iter=2, seed=8))
        result = job.wait(60)
    finally:
        queue.stop(10)
    assert job.status is JobStatus.INTERRUPTED
    assert result.interrupted
    assert steps == [1]  # no step of this batch after the interrupt, and no second batch
    assert result.seeds == (8,) and len(result.images) == 1 and len(result.infotexts) == 1


def test_invalid_sampler_or_schedule_fails_before_any_model_work(
    tmp_path: Path, make_manager: Callable[..., ModelManager]
) -> None:
    empty = make_manager(tmp_path)  # no checkpoint at all: any model work would raise ModelLoadError
    job = RecordingJob()
    for bad in (
        BASE.replace(steps=0),  # out of its declared range
        BASE.replace(sampler_name="Euler z"),
        BASE.replace(scheduler="Sometimes"),
    ):
        with pytest.raises(InvalidParameter):
            generate.run(bad, empty, job)
    assert empty.current is None and job.reports == []


@pytest.mark.parametrize("fixture", ["tiny_sd2_v", "tiny_sdxl"])
def test_sd2_v_and_sdxl_checkpoints_generate(
    tmp_path: Path, request: pytest.FixtureRequest, fixture: str, make_manager: Callable[..., ModelManager]
) -> None:
    checkpoint: TinyCheckpoint = request.getfixturevalue(fixture)
    manager = make_manager(tmp_path, checkpoint)
    params = BASE.replace(sd_model_checkpoint=checkpoint.path.name, sampler_name="DPM++ 2M", seed=21)
    first, _ = run(manager, params)
    other, _ = run(manager, params.replace(seed=22))
    clip_skip, _ = run(manager, params.replace(clip_skip=2))  # A1111 applies Clip skip to SD1 only
    loaded = manager.current
    assert loaded is not None and loaded.path.name == checkpoint.path.name
    # the per-run scheduler keeps what the model needs: v-prediction for SD2-v
    expected = "v_prediction" if fixture == "tiny_sd2_v" else "epsilon"
    assert loaded.architecture.prediction_type == loaded.pipe.scheduler.config.prediction_type == expected
    assert first.images[0].size == (64, 64)
    assert pixels(first.images[0]).std() > 5
    assert_differ(first.images[0], other.images[0])
    assert clip_skip.images[0].tobytes() == first.images[0].tobytes()
    assert infotext.parse(first.infotexts[0])["Model"] == checkpoint.path.stem


def test_generation_goes_on_after_the_loaded_file_is_renamed(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, make_manager: Callable[..., ModelManager]
) -> None:
    manager = make_manager(tmp_path, tiny_sd1)
    loaded = manager.get()
    short_hash = sha256_file(loaded.path)[:10]
    loaded.path.rename(loaded.path.with_name("renamed.safetensors"))
    result, _ = run(manager, BASE.replace(seed=4))
    manager.registry.refresh()
    after_refresh, _ = run(manager, BASE.replace(seed=4))
    for done in (result, after_refresh):
        fields = infotext.parse(done.infotexts[0])
        assert (fields["Model"], fields["Model hash"]) == ("tiny-sd1", short_hash)  # what made the image
    assert after_refresh.images[0].tobytes() == result.images[0].tobytes()
