"""img2img's batch: every image of a folder through img2img (or inpaint, with a mask folder), one queued
job per file, saved to an output folder under the input's name or to the usual outputs.

Folders outside the data folder are refused when the server is reachable from other machines (unless
--enable-insecure-extension-access): a page could otherwise read and write any folder of this host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from webui.core.errors import InvalidParameter, UserError
from webui.core.params import Img2Img
from webui.core.requests import Result
from webui.services.generation import GenerationService, save_to
from webui.services.job import Job

# (index, count, file name) before each file is queued
OnFile = Callable[[int, int, str], None]
# waits for a job's result (the UI feeds its progress bar meanwhile)
Wait = Callable[[Job], Result]


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """A1111's "Resize by": the input size times `scale`, rounded down to multiples of 8."""
    width, height = (int(side * scale) // 8 * 8 for side in size)
    return width, height


def open_image(path: Path) -> Image.Image:
    """The image in `path`, fully read; InvalidParameter naming the file when it is not one."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except UnidentifiedImageError as error:
        raise InvalidParameter(f"{path.name}: not an image") from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidParameter(f"{path.name}: the image cannot be read ({error})") from error


@dataclass(frozen=True)
class BatchFolders:
    input: Path
    output: Path | None  # None: the usual outputs folder
    masks: Path | None  # None: plain img2img


def _folder(data_dir: Path, any_folder: bool, text: str, label: str) -> Path | None:
    """The folder a batch field names (relative: inside the data folder); None when empty."""
    if not text.strip():
        return None
    data_dir = data_dir.resolve()
    path = (data_dir / Path(text.strip()).expanduser()).resolve()
    if not any_folder and not path.is_relative_to(data_dir):
        raise InvalidParameter(
            f"Batch {label} {path} is outside the data folder {data_dir}: the UI is reachable from other "
            "machines, so only folders inside it are allowed (--enable-insecure-extension-access allows any)"
        )
    return path


def batch_folders(
    data_dir: Path, any_folder: bool, input_dir: str, output_dir: str, mask_dir: str
) -> BatchFolders:
    """The batch's folders, checked: the input (and mask) folder must exist. `any_folder`: folders
    outside the data folder are allowed."""
    source = _folder(data_dir, any_folder, input_dir, "input directory")
    if source is None:
        raise InvalidParameter("Batch needs an input directory")
    output = _folder(data_dir, any_folder, output_dir, "output directory")
    masks = _folder(data_dir, any_folder, mask_dir, "mask directory")
    for label, folder in (("input directory", source), ("mask directory", masks)):
        if folder is not None and not folder.is_dir():
            raise InvalidParameter(f"Batch {label} {folder} does not exist or is not a folder")
    return BatchFolders(input=source, output=output, masks=masks)


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def batch_files(folders: BatchFolders) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """(image, mask) pairs to process, and warnings for images left out. As A1111: a mask folder with one
    file masks every image; otherwise each image takes the mask with its file name (any extension)."""
    images = _files(folders.input)
    if not images:
        raise InvalidParameter(f"Batch input directory {folders.input} has no files")
    if folders.masks is None:
        return [(image, None) for image in images], []
    masks = _files(folders.masks)
    if len(masks) == 1:
        return [(image, masks[0]) for image in images], []
    by_stem = {mask.stem: mask for mask in masks}
    pairs: list[tuple[Path, Path | None]] = [
        (image, by_stem[image.stem]) for image in images if image.stem in by_stem
    ]
    warnings = [
        f"{image.name}: no mask of that name in {folders.masks}; skipped"
        for image in images
        if image.stem not in by_stem
    ]
    return pairs, warnings


def run_batch(
    generation: GenerationService,
    params: Img2Img,
    folders: BatchFolders,
    scale: float | None,
    on_file: OnFile,
    wait: Wait,
    owner: str | None = None,
) -> Result:
    """One queued job per input file, saved to the output folder (named after the input) or the usual
    outputs. Unreadable files are skipped with a warning; Interrupt stops the batch. The jobs are
    `owner`'s (the queue's turns)."""
    pairs, warnings = batch_files(folders)
    results: list[Result] = []
    for index, (path, mask_path) in enumerate(pairs):
        on_file(index, len(pairs), path.name)
        try:
            image = open_image(path)
            mask = open_image(mask_path) if mask_path else None
        except InvalidParameter as error:
            warnings.append(f"{error}; skipped")
            continue
        width, height = scaled_size(image.size, scale) if scale else (params.width, params.height)
        job_params = dataclasses.replace(params, init_images=(image,), mask=mask, width=width, height=height)
        try:
            job = generation.submit(job_params, save_images=folders.output is None, owner=owner)
        except UserError as error:
            raise type(error)(f"{path.name}: {error}") from error
        result = wait(job)
        results.append(_save_to(generation, result, folders.output, path.stem) if folders.output else result)
        if result.interrupted:
            break
    if not results:
        raise InvalidParameter("Batch processed no image: " + "; ".join(warnings))
    return dataclasses.replace(
        results[0],
        images=tuple(image for result in results for image in result.images),
        infotexts=tuple(text for result in results for text in result.infotexts),
        seeds=tuple(seed for result in results for seed in result.seeds),
        paths=tuple(path for result in results for path in result.paths),
        interrupted=results[-1].interrupted,
        warnings=tuple(dict.fromkeys([*warnings, *(w for result in results for w in result.warnings)])),
    )


def _save_to(generation: GenerationService, result: Result, directory: Path, stem: str) -> Result:
    """`result`'s images saved in `directory` as NNNNN-<stem>(-N).ext, as A1111 names batch outputs."""
    options = generation.save_options()
    several = len(result.images) > 1
    paths = []
    for number, (image, text, seed) in enumerate(zip(result.images, result.infotexts, result.seeds), start=1):
        pattern = f"{stem}-{number}" if several else stem
        paths.append(str(save_to(image, text, directory, seed, options, pattern)))
    return dataclasses.replace(result, paths=tuple(paths))
