"""A1111's per-batch hooks after a batch is made: postprocess_batch (the batch as one tensor) and
postprocess_batch_list (a list of image tensors the script may change: replace, drop or add images).

A1111 hands both the decoded batch as float tensors in [0, 1], channels first ((B, 3, H, W) and a list
of (3, H, W)); extensions do tensor arithmetic on them, so they get exactly that here, made from our
images, and what the list holds afterwards (tensors, arrays or PIL images) becomes the batch's images.
Our engine runs these after postprocess_image (A1111: before), when the batch's infotexts are built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from webui.engine.sampling.run_hooks import FinishedBatch as Batch  # index-aligned images, infotexts, seeds


@dataclass
class PostprocessBatchListArgs:
    images: list[Any]


# runs one hook on every always-on script: (hook name, leading arguments, keyword arguments)
EachScript = Callable[..., None]


def run(each: EachScript, p: Any, number: int, batch: Batch) -> Batch:
    """postprocess_batch, then postprocess_batch_list, with A1111's p.prompts / p.seeds for the batch;
    the batch as the scripts left it (the same object when they changed nothing)."""
    first = number * p.batch_size
    count = len(batch.images)
    p.prompts = list(p.all_prompts[first : first + count])
    p.negative_prompts = list(p.all_negative_prompts[first : first + count])
    p.seeds, p.subseeds = list(batch.seeds), list(p.all_subseeds[first : first + count])
    tensors = [to_tensor(image) for image in batch.images]
    each("postprocess_batch", images=torch.stack(tensors), batch_number=number)
    listed = PostprocessBatchListArgs(list(tensors))
    each("postprocess_batch_list", listed, batch_number=number)
    if len(listed.images) == count and all(a is b for a, b in zip(listed.images, tensors)):
        return batch
    images = [to_image(item) for item in listed.images]
    if len(images) == count:  # replaced in place: each keeps its infotext and seed
        return Batch(tuple(images), batch.infotexts, batch.seeds)
    texts, seeds = _realigned(batch, p.seeds, len(images))
    return Batch(tuple(images), tuple(texts), tuple(seeds))


def _realigned(batch: Batch, seeds: Sequence[int], count: int) -> tuple[list[str], list[int]]:
    """Infotexts and seeds for a list a script made longer or shorter: A1111 asks it to set p.seeds to
    match; each image then gets the infotext of the image with its seed (else the nearest by position)."""
    if len(seeds) != count:
        seeds = [batch.seeds[min(i, len(batch.seeds) - 1)] for i in range(count)]
    texts = []
    for i, seed in enumerate(seeds):
        known = batch.seeds.index(seed) if seed in batch.seeds else min(i, len(batch.infotexts) - 1)
        texts.append(batch.infotexts[known])
    return texts, list(seeds)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1], as A1111's decoded samples."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_image(item: Any) -> Image.Image:
    """An image from what a script put in the list: a (3, H, W) tensor or array in [0, 1] (A1111's
    form), an (H, W, 3) uint8 array, or a PIL image."""
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, torch.Tensor):
        item = item.detach().float().cpu().numpy()
    array = np.asarray(item)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)
