"""LoRA networks: the Lora folder's files by name, and `<lora:name:te:unet>` tags applied to a pipeline.

Loading goes through diffusers (`load_lora_weights`, peft layers) and switching through `set_adapters`,
so the base weights never change: with no tag active the LoRA layers are disabled and every layer runs
its untouched base weights. Loaded adapters stay on their pipeline (so per checkpoint) until their file
changes; changing the active set never reloads the checkpoint.

Kohya files trained on the LDM UNet name blocks `input_blocks_4_1_…`/`middle_block_1_…`/`output_blocks_…`;
diffusers only understands those for SDXL, so they are renamed to diffusers blocks here first.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from webui.core.errors import InvalidParameter
from webui.core.hashing import HashCache
from webui.core.prompts import NetworkTag
from webui.engine.checkpoints.weights_files import read_state_dict
from webui.engine.model_folders import model_files

log = logging.getLogger(__name__)

LORA_SUFFIXES = (".safetensors", ".pt")
TAG_KINDS = ("lora", "lyco")  # A1111 reads old LyCORIS tags as LoRA tags
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")

_LDM_KEY = re.compile(
    r"lora_unet_(input_blocks|output_blocks)_(\d+)_(\d+)_?(.*)|lora_unet_middle_block_(\d+)_?(.*)"
)
# LDM ResBlock layer names -> diffusers ResnetBlock2D names
_RESNET_LAYERS = {
    "in_layers_0": "norm1",
    "in_layers_2": "conv1",
    "emb_layers_1": "time_emb_proj",
    "out_layers_0": "norm2",
    "out_layers_3": "conv2",
    "skip_connection": "conv_shortcut",
}
_LORA_DOWN = re.compile(r"(\.lora_down\.weight|\.lora_A\.weight|\.lora\.down\.weight|_lora\.down\.weight)$")


@dataclass(frozen=True)
class LoraEntry:
    name: str  # file stem: what `<lora:name:…>` names
    path: Path


@dataclass(frozen=True)
class LoraRequest:
    """One LoRA asked for by the prompt; repeated tags of one name add up (as their layers would)."""

    name: str  # as written in the tag
    entry: LoraEntry
    te_weight: float
    unet_weight: float


@dataclass(frozen=True)
class AppliedLora:
    name: str
    short_hash: str  # A1111's LoRA hash: 12 hex digits of the addnet hash (sha256 for .pt)
    te_weight: float
    unet_weight: float


@dataclass(frozen=True)
class AppliedLoras:
    loras: tuple[AppliedLora, ...] = ()
    warnings: tuple[str, ...] = ()  # LoRAs that were skipped, and why

    def infotext_hashes(self) -> str | None:
        """The value of A1111's `Lora hashes: "name: hash, …"` (the infotext writer adds the quotes)."""
        if not self.loras:
            return None
        # A1111 drops ':' and ',' from the name so the list stays readable
        return ", ".join(f"{re.sub('[:,]', '', lora.name)}: {lora.short_hash}" for lora in self.loras)


@dataclass(frozen=True)
class _Adapter:
    """What one pipeline holds for one file: its adapter, or why the file could not be applied."""

    stamp: tuple[int, int]  # (size, mtime_ns) of the file when loaded
    adapter: str | None
    problem: str | None = None


class LoraLibrary:
    """The LoRA files under `root` (recursively), then under `shipped` (the install's own), by name, and
    their adapters on each pipeline."""

    def __init__(self, root: Path, hashes: HashCache, shipped: Path | None = None) -> None:
        self.root = Path(root)
        self.shipped = shipped
        self.hashes = hashes
        self._lock = threading.RLock()
        self._entries: dict[str, LoraEntry] = {}
        # per pipeline (so per loaded checkpoint): file -> adapter; dropped with the pipeline
        self._adapters: weakref.WeakKeyDictionary[Any, dict[Path, _Adapter]] = weakref.WeakKeyDictionary()
        self.refresh()

    def refresh(self) -> None:
        found: dict[str, LoraEntry] = {}
        for _, path in model_files(self.root, self.shipped):
            if path.suffix.lower() not in LORA_SUFFIXES:
                continue
            if path.stem in found:
                log.warning(
                    "LoRA %s: name already used by %s; ignoring this file", path, found[path.stem].path
                )
                continue
            found[path.stem] = LoraEntry(path.stem, path)
        with self._lock:
            self._entries = dict(sorted(found.items(), key=lambda item: item[0].lower()))

    @property
    def entries(self) -> list[LoraEntry]:
        with self._lock:
            return list(self._entries.values())

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def find(self, name: str) -> LoraEntry:
        with self._lock:
            entry = self._entries.get(name)
        if entry is None:
            available = ", ".join(self.names()) or f"none: the folder {self.root} has no LoRA files"
            raise InvalidParameter(f"LoRA not found: {name!r} (available: {available})")
        return entry

    def short_hash(self, entry: LoraEntry) -> str:
        if entry.path.suffix.lower() == ".safetensors":
            return self.hashes.addnet_short_hash(entry.path)
        return self.hashes.sha256(entry.path)[:12]

    def resolve(self, tags: Iterable[NetworkTag]) -> list[LoraRequest]:
        """The LoRAs the tags ask for; an unknown name fails before anything is loaded."""
        requests: dict[str, LoraRequest] = {}
        for tag in tags:
            entry = self.find(tag.name)
            known = requests.get(entry.name)
            te, unet = tag.weight, tag.unet_weight
            if known is not None:
                te, unet = te + known.te_weight, unet + known.unet_weight
            requests[entry.name] = LoraRequest(tag.name, entry, te, unet)
        return list(requests.values())

    def apply(self, pipe: Any, requests: Sequence[LoraRequest]) -> AppliedLoras:
        """Make exactly `requests` active on `pipe` (none: all LoRA layers off, the base model as loaded)."""
        with self._lock:
            held = self._adapters.setdefault(pipe, {})
            applied: list[AppliedLora] = []
            warnings: list[str] = []
            names: list[str] = []
            weights: list[dict[str, float]] = []
            for request in requests:
                adapter = self._adapter(pipe, held, request.entry)
                if adapter.adapter is None:
                    warnings.append(f"LoRA {request.name!r} skipped: {adapter.problem}")
                    log.warning("%s", warnings[-1])
                    continue
                names.append(adapter.adapter)
                weights.append(_component_weights(pipe, adapter.adapter, request))
                applied.append(
                    AppliedLora(
                        request.name, self.short_hash(request.entry), request.te_weight, request.unet_weight
                    )
                )
            _activate(pipe, names, weights)
            return AppliedLoras(tuple(applied), tuple(warnings))

    def _adapter(self, pipe: Any, held: dict[Path, _Adapter], entry: LoraEntry) -> _Adapter:
        stat = entry.path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        known = held.get(entry.path)
        if known is not None and known.stamp == stamp:
            return known
        if known is not None and known.adapter is not None:  # the file changed: load it again
            pipe.delete_adapters(known.adapter)
        # peft keys its layers by adapter name: a plain identifier, unique on this pipeline
        name = f"lora{len(held)}_" + re.sub(r"\W", "_", entry.name)[:40]
        log.info("Loading LoRA %s", entry.path)
        try:
            problem = _load(pipe, read_lora_file(entry.path), name)
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as error:
            problem = f"{entry.path.name} does not fit this checkpoint ({type(error).__name__}: {error})"
        held[entry.path] = _Adapter(stamp, None if problem else name, problem)
        return held[entry.path]


def read_lora_file(path: Path) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors: safetensors, or `.pt` read weights-only (a pickle that wants to run code is
    refused with a ModelLoadError, never executed)."""
    if path.suffix.lower() == ".safetensors":
        return load_file(path, device="cpu")
    return read_state_dict(path)


def _load(pipe: Any, state: dict[str, torch.Tensor], adapter: str) -> str | None:
    """Load `state` as `adapter`; returns why it was refused (then nothing of it stays on the pipe)."""
    state = map_ldm_unet_keys(state, pipe.unet.config)
    wanted = sum(1 for key in state if _LORA_DOWN.search(key))
    if not wanted:
        return "no LoRA weights found in the file (not a LoRA, or a network type this version cannot apply)"
    if any(key.startswith("lora_te2_") for key in state) and getattr(pipe, "text_encoder_2", None) is None:
        return "it was made for SDXL (it has weights for a second text encoder); this checkpoint is not SDXL"
    try:
        pipe.load_lora_weights(dict(state), adapter_name=adapter)
    except BaseException:
        _delete(pipe, adapter)
        raise
    matched = sum(
        _count_layers(getattr(pipe, component, None), adapter) for component in pipe._lora_loadable_modules
    )
    if matched < wanted:
        _delete(pipe, adapter)
        return (
            f"only {matched} of its {wanted} layers match this checkpoint: "
            "made for another model architecture"
        )
    return None


def _count_layers(model: torch.nn.Module | None, adapter: str) -> int:
    if model is None:
        return 0
    return sum(1 for module in model.modules() if adapter in getattr(module, "lora_A", {}))


def _delete(pipe: Any, adapter: str) -> None:
    if any(adapter in adapters for adapters in pipe.get_list_adapters().values()):
        pipe.delete_adapters(adapter)


def _component_weights(pipe: Any, adapter: str, request: LoraRequest) -> dict[str, float]:
    """The adapter's weight for each component that holds it: UNet weight, text-encoder weight."""
    holders = [component for component, adapters in pipe.get_list_adapters().items() if adapter in adapters]
    return {c: request.te_weight if c in TEXT_ENCODERS else request.unet_weight for c in holders}


def _activate(pipe: Any, names: list[str], weights: list[dict[str, float]]) -> None:
    from diffusers.utils.peft_utils import set_adapter_layers  # diffusers (and peft) load with the model

    loaded = pipe.get_list_adapters()
    for component in loaded:
        model = getattr(pipe, component)
        active = any(name in loaded[component] for name in names)
        # off: peft layers run their base layer alone, so the output is exactly the base model's
        set_adapter_layers(model, enabled=active)
    if names:
        pipe.set_adapters(names, adapter_weights=weights)


def map_ldm_unet_keys(state: dict[str, torch.Tensor], unet_config: Any) -> dict[str, torch.Tensor]:
    """Kohya keys with LDM UNet block names (`lora_unet_input_blocks_1_1_…`) renamed to diffusers blocks
    (`lora_unet_down_blocks_0_attentions_0_…`); other keys unchanged."""
    if not any(_LDM_KEY.match(key) for key in state):
        return state
    inputs, outputs = _block_tables(unet_config)
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, dot, rest = key.partition(".")
        match = _LDM_KEY.fullmatch(module)
        if match is None:
            mapped[key] = value
            continue
        if match.group(5) is not None:
            block = int(match.group(5))
            if block not in (0, 1, 2):
                raise ValueError(f"{module}: the UNet has no middle block {block}")
            target, inner = (
                ("mid_block_attentions_0" if block == 1 else f"mid_block_resnets_{block // 2}"),
                match.group(6),
            )
        else:
            table = inputs if match.group(1) == "input_blocks" else outputs
            place = (int(match.group(2)), int(match.group(3)))
            if place not in table:
                raise ValueError(f"{module}: the UNet has no block {match.group(1)}.{place[0]}.{place[1]}")
            target, inner = table[place], match.group(4)
        if "_resnets_" in target:
            inner = _resnet_layer(inner)
        elif target.endswith("samplers_0") or target == "conv_in":
            inner = {"op": "conv"}.get(inner, inner)
        name = "lora_unet_" + "_".join(part for part in (target, inner) if part)
        if target == "conv_in":
            name = "lora_unet_conv_in"
        mapped[name + dot + rest] = value
    return mapped


def _resnet_layer(inner: str) -> str:
    for ldm, diffusers_name in _RESNET_LAYERS.items():
        if inner == ldm:
            return diffusers_name
    return inner


def _block_tables(config: Any) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], str]]:
    """(LDM block, position inside it) -> diffusers module, for `input_blocks` and `output_blocks`."""
    levels = len(config.down_block_types)
    per_level = config.layers_per_block
    layers = [per_level] * levels if isinstance(per_level, int) else list(per_level)
    inputs: dict[tuple[int, int], str] = {(0, 0): "conv_in"}
    index = 1
    for level, count in enumerate(layers):
        has_attention = "CrossAttn" in config.down_block_types[level]
        for k in range(count):
            inputs[(index, 0)] = f"down_blocks_{level}_resnets_{k}"
            if has_attention:
                inputs[(index, 1)] = f"down_blocks_{level}_attentions_{k}"
            index += 1
        if level < levels - 1:
            inputs[(index, 0)] = f"down_blocks_{level}_downsamplers_0"
            index += 1
    outputs: dict[tuple[int, int], str] = {}
    index = 0
    for level, count in enumerate(reversed(layers)):
        has_attention = "CrossAttn" in config.up_block_types[level]
        for k in range(count + 1):
            outputs[(index, 0)] = f"up_blocks_{level}_resnets_{k}"
            if has_attention:
                outputs[(index, 1)] = f"up_blocks_{level}_attentions_{k}"
            if k == count and level < levels - 1:  # the upsampler follows the last layer of a level
                outputs[(index, 2 if has_attention else 1)] = f"up_blocks_{level}_upsamplers_0"
            index += 1
    return inputs, outputs
