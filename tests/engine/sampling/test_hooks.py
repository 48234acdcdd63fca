"""The model-hook registry (engine.sampling.hooks): hooks run in their declared Stage order whatever order
they were given in, what an outer hook changes is what an inner one sees, and every hook is removed when
the block ends, by an exception too; then the same inside a real generation on the tiny SD1 model."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core.params import GenerationParams, Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate, run_hooks
from webui.engine.sampling.hooks import ModelHook, ModelHooks, Stage
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recording(stage: Stage, seen: list[tuple[str, Stage]]) -> ModelHook:
    def before(module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        seen.append(("before", stage))

    def after(module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        seen.append(("after", stage))

    return ModelHook(stage, before=before, after=after)


@pytest.mark.parametrize(
    "given", [list(Stage)[:4], list(reversed(list(Stage)[:4]))], ids=["forward", "reverse"]
)
def test_hooks_nest_in_stage_order_whatever_order_they_were_given(given: list[Stage]) -> None:
    seen: list[tuple[str, Stage]] = []
    module = torch.nn.Linear(2, 2)
    with ModelHooks(recording(stage, seen) for stage in given).installed(module):
        module(torch.ones(1, 2))
    inside_out = [Stage.CFG_DENOISER, Stage.CFG_RESCALE, Stage.CONTROLNET, Stage.COMPOSABLE]
    assert seen == [("before", s) for s in inside_out] + [("after", s) for s in reversed(inside_out)]


def test_an_inner_hook_sees_what_the_outer_ones_changed() -> None:
    module = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(module.weight)
    inputs: list[float] = []

    def double_input(module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        return (args[0] * 2,), kwargs

    def record_input(module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        inputs.append(float(args[0]))

    hooks = ModelHooks(
        [
            # the inner one (higher stage) adds 1 to the output first, the outer one then triples it
            ModelHook(Stage.COMPOSABLE, before=record_input, after=lambda m, a, k, out: out + 1),
            ModelHook(Stage.CFG_DENOISER, before=double_input, after=lambda m, a, k, out: out * 3),
        ]
    )
    with torch.no_grad():
        with hooks.installed(module):
            out = module(torch.tensor([5.0]))
        assert inputs == [10.0]
        assert float(out) == (10 + 1) * 3
        assert float(module(torch.tensor([5.0]))) == 5  # outside the block: the hooks are gone


def test_hooks_are_removed_after_an_exception_and_only_needed_sides_are_hooked() -> None:
    module = torch.nn.Linear(2, 2)

    def boom(module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        raise RuntimeError("boom")

    hooks = ModelHooks([ModelHook(Stage.CFG_RESCALE, after=boom)])
    with pytest.raises(RuntimeError, match="boom"), hooks.installed(module):
        assert not module._forward_pre_hooks and len(module._forward_hooks) == 1
        module(torch.ones(1, 2))
    assert not module._forward_hooks and not module._forward_pre_hooks
    with ModelHooks([None]).installed(module):  # a feature that is off adds nothing
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_two_hooks_at_one_stage_are_refused() -> None:
    with pytest.raises(ValueError, match="two hooks at stage CONTROLNET"):
        ModelHooks([ModelHook(Stage.CONTROLNET), ModelHook(Stage.CONTROLNET)])


# In a real run.

# AND (composable's hook) and CFG Rescale (its own) on together with an extension's cfg_denoiser hook
BASE = Txt2Img(
    prompt="a red circle AND a blue background :0.8",
    negative_prompt="blurry",
    steps=2,
    cfg_scale=7.0,
    cfg_rescale=0.5,
    seed=5,
    width=64,
    height=64,
    batch_size=2,
)


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("hooks"), tiny_sd1_fast)


class DenoiserHooks(run_hooks.NoHooks):
    """An extension's on_cfg_denoiser as the plugins inject it: records each pass's batch, and can fail."""

    def __init__(self, fail_on_pass: int | None = None) -> None:
        self.batches: list[int] = []
        self.fail_on_pass = fail_on_pass

    def cfg_denoiser(self, pipe: Any, params: GenerationParams, count: int) -> ModelHook | None:
        def before(module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
            if len(self.batches) == self.fail_on_pass:
                raise RuntimeError("extension failed")
            self.batches.append(args[0].shape[0])

        return ModelHook(Stage.CFG_DENOISER, before=before)


def run(manager: ModelManager, hooks: run_hooks.RunHooks) -> np.ndarray:
    job = Job(params=None, kind="txt2img", clock=time.monotonic)
    return np.asarray(generate.run(BASE, manager, job, hooks).images[0])


def test_in_a_run_the_extension_sees_the_pipelines_batch_and_all_hooks_go_afterwards(
    manager: ModelManager,
) -> None:
    unet = manager.get().pipe.unet
    hooks = DenoiserHooks()
    plain = run(manager, run_hooks.NoHooks())
    assert np.array_equal(run(manager, hooks), plain)  # a hook that only looks changes nothing
    # diffusers' own CFG batch (uncond + cond for 2 images), not composable's expanded one (1 + 2 parts)
    assert hooks.batches == [4, 4]
    with pytest.raises(RuntimeError, match="extension failed"):
        run(manager, DenoiserHooks(fail_on_pass=1))
    assert not unet._forward_hooks and not unet._forward_pre_hooks
    assert np.array_equal(run(manager, run_hooks.NoHooks()), plain)  # nothing left behind
