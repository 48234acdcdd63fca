"""A resumable, seeded optimisation loop shared by every training stage.

A stage lives in its own folder of the work dir: `checkpoint.pt` (weights, optimiser, RNG state, step,
loss history) is rewritten every `save_every` steps and when the time cap stops the run, so a killed or
capped run continues where it stopped with the same random draws; `final.safetensors` (the finished
weights) marks the stage done. All randomness of a step comes from the stage's own CPU generator.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT = "checkpoint.pt"
FINAL = "final.safetensors"


@dataclass(frozen=True)
class Schedule:
    steps: int
    lr: float
    warmup: int = 100
    min_lr_ratio: float = 0.1  # cosine decay ends at this share of lr
    grad_clip: float = 1.0
    save_every: int = 200
    log_every: int = 50

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


def is_done(folder: Path) -> bool:
    return (folder / FINAL).is_file()


def save_final(folder: Path, modules: Mapping[str, torch.nn.Module]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }
    temporary = folder / (FINAL + ".tmp")
    save_file(tensors, str(temporary))
    temporary.replace(folder / FINAL)


def _load_exactly(module: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """load_state_dict, but refusing any difference in names (diffusers' models drop unknown keys)."""
    expected = module.state_dict().keys()
    if set(state) != set(expected):
        odd = sorted(set(state) ^ set(expected))[:3]
        raise ValueError(
            f"{source} was saved from another model configuration (e.g. {odd}); "
            "delete it or use another --work-dir"
        )
    module.load_state_dict(state)


def load_final(folder: Path, modules: Mapping[str, torch.nn.Module]) -> None:
    tensors = load_file(folder / FINAL)
    for name, module in modules.items():
        prefix = f"{name}."
        part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        _load_exactly(module, part, folder / FINAL)


@dataclass
class Outcome:
    finished: bool
    steps: int  # steps done so far in total
    losses: list[float]  # mean loss of every log_every steps, since the stage began


def run(
    folder: Path,
    modules: Mapping[str, torch.nn.Module],
    parameters: list[torch.nn.Parameter],
    schedule: Schedule,
    step: Callable[[torch.Generator], torch.Tensor],
    seed: int,
    minutes: float | None = None,
    name: str = "",
) -> Outcome:
    """Optimise `parameters` (of `modules`) with AdamW until `schedule.steps`, resuming from the folder's
    checkpoint. `step(generator)` draws one batch with the generator and returns its loss. Stops early
    (after saving) once `minutes` of wall time have passed; the next call goes on from there."""
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(parameters, lr=schedule.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    done, losses = 0, []
    checkpoint = folder / CHECKPOINT
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        for key, module in modules.items():
            _load_exactly(module, state["modules"][key], checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        done, losses = state["step"], state["losses"]

    def save() -> None:
        state = {
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "step": done,
            "losses": losses,
        }
        temporary = folder / (CHECKPOINT + ".tmp")
        torch.save(state, temporary)
        temporary.replace(checkpoint)

    for module in modules.values():
        module.train()
    started, first = time.monotonic(), done
    window: list[float] = []
    while done < schedule.steps:
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(done)
        loss = step(generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, schedule.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done += 1
        window.append(loss.item())
        if len(window) == schedule.log_every or done == schedule.steps:
            losses.append(sum(window) / len(window))
            rate = (time.monotonic() - started) / (done - first)
            print(
                f"[{name}] step {done}/{schedule.steps} loss {losses[-1]:.4f} ({rate:.2f} s/step)", flush=True
            )
            window = []
        if done % schedule.save_every == 0 or done == schedule.steps:
            save()
        if minutes is not None and time.monotonic() - started > minutes * 60 and done < schedule.steps:
            save()
            print(f"[{name}] stopped at step {done} after {minutes:g} min; run again to continue", flush=True)
            break
    for module in modules.values():
        module.eval()
    return Outcome(finished=done >= schedule.steps, steps=done, losses=losses)
