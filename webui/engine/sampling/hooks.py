"""The one place hooks go onto a model: each hook declares its Stage, the registry installs them in that
order and always removes them together.

A run wraps the UNet call in several hooks (extensions' on_cfg_denoiser, ControlNet, composable AND,
CFG Rescale) and each depends on what the others did to the call. Their order is therefore declared
here, by Stage, rather than left to the order their `register_forward_*_hook` calls happen to run in.

Stages nest like an onion around the module call, the lowest stage outermost: `before` parts run from
the lowest stage to the highest (each sees the inputs as the outer ones left them), `after` parts from
the highest to the lowest (each sees the output as the inner ones left it). The registry puts one torch
pre-hook and one forward hook on the module (only those it needs) that run its hooks in this order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

# torch's hook signatures (with_kwargs=True): return None to leave the inputs / output as they are
Before = Callable[[Any, tuple, dict[str, Any]], tuple[tuple, dict[str, Any]] | None]
After = Callable[[Any, tuple, dict[str, Any], Any], Any]


class Stage(enum.IntEnum):
    """Where a hook sits around its module's call, outermost (lowest) first."""

    # On the UNet:
    # Extensions see each pass's inputs as the pipeline made them (CFG: [uncond, cond]), as A1111's
    # on_cfg_denoiser does, and what they replace (x, text conditioning) is what every hook inside gets.
    CFG_DENOISER = 10
    # Its `after` must see the folded [uncond, cond] prediction, so it sits outside composable AND.
    CFG_RESCALE = 20
    # The ControlNets run on diffusers' own [uncond, cond] batch (cfg injection zeroes the uncond half)
    # and add their residuals to the UNet call's arguments, which composable AND then expands with the rest.
    CONTROLNET = 30
    # Innermost: the UNet itself runs the expanded [uncond, cond₁ … cond_K] batch, and the prediction is
    # folded back to [uncond, cond] before any hook outside sees it.
    COMPOSABLE = 40

    # On a text encoder's token embeddings (their own module: no order to settle with the UNet's):
    # Textual-inversion vectors replace the placeholder tokens' embeddings.
    TEXTUAL_INVERSION = 100


@dataclass(frozen=True)
class ModelHook:
    """One hook: its stage, and what it does before and/or after the module's forward."""

    stage: Stage
    before: Before | None = None
    after: After | None = None


class ModelHooks:
    """The hooks of one run on one module, in Stage order whatever order they were given in.

    None entries are skipped (a feature that is off contributes no hook). Two hooks at one stage would
    have no defined order: refused."""

    def __init__(self, hooks: Iterable[ModelHook | None] = ()) -> None:
        self._hooks: list[ModelHook] = []
        for hook in hooks:
            self.add(hook)

    def add(self, hook: ModelHook | None) -> None:
        if hook is None:
            return
        if any(known.stage == hook.stage for known in self._hooks):
            raise ValueError(f"two hooks at stage {hook.stage.name}: their order would be undefined")
        self._hooks = sorted([*self._hooks, hook], key=lambda known: known.stage)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(hook.stage for hook in self._hooks)

    def _before(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        for hook in self._hooks:
            if hook.before is not None:
                changed = hook.before(module, args, kwargs)
                if changed is not None:
                    args, kwargs = changed
        return args, kwargs

    def _after(self, module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        for hook in reversed(self._hooks):
            if hook.after is not None:
                changed = hook.after(module, args, kwargs, output)
                if changed is not None:
                    output = changed
        return output

    @contextmanager
    def installed(self, module: torch.nn.Module) -> Iterator[None]:
        """All the hooks on `module` while the block runs; removed when it ends, by exception or interrupt
        too. Nothing is put on the module for a side (before / after) no hook has."""
        handles = []
        try:
            if any(hook.before is not None for hook in self._hooks):
                handles.append(module.register_forward_pre_hook(self._before, with_kwargs=True))
            if any(hook.after is not None for hook in self._hooks):
                handles.append(module.register_forward_hook(self._after, with_kwargs=True))
            yield
        finally:
            for handle in handles:
                handle.remove()
