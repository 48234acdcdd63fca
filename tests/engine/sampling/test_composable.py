"""Composable diffusion (`a AND b :0.8`) through engine.generate.run on tiny single-file checkpoints.

The guidance itself is checked against A1111's formula on the UNet's raw predictions; whole runs check
what the user sees (pixels change, weight 0 is the part left out, plain prompts take the old path).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import composable, conditioning, generate
from webui.engine.sampling.hooks import ModelHooks
from webui.engine.sampling.prompt_conditioning import PromptConditioning
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = Txt2Img(
    prompt="a red circle",
    negative_prompt="blurry",
    steps=2,
    cfg_scale=5.0,
    sampler_name="Euler",
    seed=321,
    width=64,
    height=64,
)


@pytest.fixture(scope="module")
def sd1(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("composable-sd1"), tiny_sd1)


@pytest.fixture(scope="module")
def sdxl(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sdxl: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("composable-sdxl"), tiny_sdxl)


def image(manager: ModelManager, prompt: str, **changes: object) -> np.ndarray:
    params = BASE.replace(prompt=prompt, **changes)
    result = generate.run(params, manager, Job(params=None, kind="txt2img", clock=time.monotonic))
    return np.asarray(result.images[0], dtype=np.int16)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_prompt_parts_follow_a1111_split() -> None:
    assert composable.prompt_parts("a red cube, studio light ") == [("a red cube, studio light ", 1.0)]
    assert composable.prompt_parts("a AND b :0.8") == [("a", 1.0), (" b", 0.8)]
    assert composable.prompt_parts("a AND b :0") == [("a", 1.0)]
    assert composable.prompt_parts("cat :2") == [("cat", 2.0)]  # a weight without AND still counts
    assert composable.prompt_parts("cat :1") == [("cat", 1.0)]  # as A1111: the weight is not prompt text
    assert composable.prompt_parts("a :0 AND b :0") == [("a", 0.0)]
    assert composable.is_plain(composable.prompt_parts("a AND b :0"))
    assert not composable.is_plain(composable.prompt_parts("cat :2"))


@pytest.mark.parametrize("fixture", ["sd1", "sdxl"])
@pytest.mark.parametrize("with_cfg", [True, False])
def test_guided_prediction_is_a1111s_weighted_sum(
    request: pytest.FixtureRequest, fixture: str, with_cfg: bool
) -> None:
    manager: ModelManager = request.getfixturevalue(fixture)
    loaded = manager.get()
    unet, count = loaded.pipe.unet, 2
    prompt = "a red circle AND a blue background :0.8 AND grass:-0.3"
    params = BASE.replace(prompt=prompt, negative_prompt="ugly")
    with torch.inference_mode():
        text = PromptConditioning(loaded, params, count)
        assert text.guidance is not None and text.guidance.weights == (1.0, 0.8, -0.3)
        conds = [schedule[0][1] for schedule in text.schedules]
        uncond = text.unconds[0][1]
        latents = torch.randn(count, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        t = torch.tensor(500)
        time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]).repeat(count, 1)

        def predict(
            embeds: torch.Tensor, pooled: torch.Tensor | None, x: torch.Tensor, ids: torch.Tensor
        ) -> torch.Tensor:
            added = None if pooled is None else {"text_embeds": pooled, "time_ids": ids}
            return unet(x, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False)[0]

        def alone(c: conditioning.Conditioning) -> torch.Tensor:
            pooled = None if c.pooled is None else c.pooled.repeat(count, 1)
            return predict(c.embeds.repeat(count, 1, 1), pooled, latents, time_ids)

        expected_uncond = alone(uncond)
        weighted = (w * (alone(c) - expected_uncond) for w, c in zip((1.0, 0.8, -0.3), conds))
        expected = expected_uncond + sum(weighted)
        # what diffusers passes: its own [uncond, cond] embeddings, which the hooks must replace
        kwargs = text.kwargs(0)
        embeds, pooled = kwargs["prompt_embeds"], kwargs.get("pooled_prompt_embeds")
        x, ids = latents, time_ids
        if with_cfg:
            embeds = torch.cat([kwargs["negative_prompt_embeds"], embeds])
            pooled = None if pooled is None else torch.cat([kwargs["negative_pooled_prompt_embeds"], pooled])
            x, ids = torch.cat([latents, latents]), torch.cat([time_ids, time_ids])
        with ModelHooks([text.guidance_hook()]).installed(unet):
            got = predict(embeds, pooled, x, ids)
        assert not unet._forward_hooks and not unet._forward_pre_hooks  # removed again
    if with_cfg:
        torch.testing.assert_close(got[:count], expected_uncond, atol=1e-5, rtol=1e-5)
        got = got[count:]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(expected, alone(conds[0]), atol=1e-3)  # the other parts mattered


# The tiny model's random weights move pixels little: two unrelated prompts differ by ~1 level on average.
CHANGED = 0.3


def test_and_changes_the_image_and_weights_scale_the_part(sd1: ModelManager) -> None:
    red = image(sd1, "a red circle")
    both = image(sd1, "a red circle AND a blue background")
    assert distance(both, red) > CHANGED
    assert distance(both, image(sd1, "a red circle a blue background")) > CHANGED
    assert np.array_equal(image(sd1, "a red circle AND a blue background :0"), red)  # weight 0: left out
    half = image(sd1, "a red circle AND a blue background :0.5")
    double = image(sd1, "a red circle AND a blue background :2")
    assert CHANGED < distance(half, red) < distance(both, red) < distance(double, red)


def test_plain_prompts_take_the_pipelines_own_path(sd1: ModelManager) -> None:
    loaded = sd1.get()
    unet = loaded.pipe.unet
    hooks_seen: list[int] = []
    probe = unet.register_forward_pre_hook(
        lambda module, args: hooks_seen.append(len(module._forward_pre_hooks))
    )
    try:
        plain = image(sd1, "a red circle")
        weighted = image(sd1, "a red circle :1")  # split_and's weight 1: still plain CFG
    finally:
        probe.remove()
    assert hooks_seen and set(hooks_seen) == {1}  # only the probe: no composable hooks on a plain prompt
    assert np.array_equal(plain, weighted)
    with torch.inference_mode():
        assert PromptConditioning(loaded, BASE, 1).guidance is None


def test_each_part_keeps_its_own_prompt_editing(sd1: ModelManager) -> None:
    steps = {"steps": 4}
    fixed = image(sd1, "a red circle AND a blue background", **steps)
    never = image(sd1, "a red circle AND [a blue background:a green field:10]", **steps)
    edited = image(sd1, "a red circle AND [a blue background:a green field:1]", **steps)
    green = image(sd1, "a red circle AND a green field", **steps)
    assert np.array_equal(never, fixed)  # the edit syntax was read per part
    # after the first step this model barely listens to the prompt (a plain edit moves 0.01 levels too)
    assert not np.array_equal(edited, fixed) and not np.array_equal(edited, green)
    loaded = sd1.get()
    with torch.inference_mode():
        switching, plain_blue, green_embeds = (
            PromptConditioning(loaded, BASE.replace(prompt=prompt, steps=4), 1)
            for prompt in (
                "a red circle AND [a blue background:a green field:1]",
                "a red circle AND a blue background",
                "a red circle AND a green field",
            )
        )
        assert switching.changes_during_run and not plain_blue.changes_during_run
        assert switching.guidance is not None and plain_blue.guidance is not None
        assert green_embeds.guidance is not None
        assert torch.equal(switching.guidance.embeds, plain_blue.guidance.embeds)  # step 0: the first text
        switching.replace({}, 2, with_cfg=True)  # what on_step_end does for step 2 ("[a:b:1]": a for 0–1)
        assert torch.equal(switching.guidance.embeds, green_embeds.guidance.embeds)


def test_sdxl_composes_with_its_pooled_embeddings(sdxl: ModelManager) -> None:
    red = image(sdxl, "a red circle")
    assert distance(image(sdxl, "a red circle AND a blue background"), red) > CHANGED
    assert np.array_equal(image(sdxl, "a red circle AND a blue background :0"), red)


def test_infotext_keeps_the_prompt_as_typed_and_batches_compose(sd1: ModelManager) -> None:
    typed = "a red circle AND a blue background :0.8"
    params = BASE.replace(prompt=typed, batch_size=2)
    result = generate.run(params, sd1, Job(params=None, kind="txt2img", clock=time.monotonic))
    assert [infotext.parse(text)["Prompt"] for text in result.infotexts] == [typed, typed]
    second = image(sd1, typed, seed=BASE.seed + 1)
    diff = np.abs(np.asarray(result.images[1], dtype=np.int16) - second)
    assert diff.max() <= 1  # the second image of the batch, made alone (batch kernels round differently)
