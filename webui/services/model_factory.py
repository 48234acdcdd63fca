"""A model manager built from the command-line flags: the App's, and each generation worker's own."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from webui.core.cmd_args import Paths, uses_cpu
from webui.core.hashing import HashCache
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.memory import MemoryFlags, log_startup
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.checkpoints.vae import VaeRegistry
from webui.engine.controlnet.annotators import annotator_dirs
from webui.engine.controlnet.library import ControlNetLibrary
from webui.engine.devices import choose_device
from webui.engine.networks.embeddings import EmbeddingLibrary
from webui.engine.networks.lora import LoraLibrary
from webui.services.options import ModelOptions

log = logging.getLogger(__name__)


def build_manager(
    args: argparse.Namespace, paths: Paths, options: ModelOptions, device_id: str | None
) -> ModelManager:
    """The manager over the model folders `paths` name, on the device the flags choose (`device_id`: a
    CUDA device index, None for the default one)."""
    extra = (Path(args.ckpt).expanduser().resolve(),) if args.ckpt else ()
    hashes = HashCache(paths.cache_file)
    device = choose_device(uses_cpu(args, "sd"), args.no_half or args.precision == "full", device_id)
    log.info("Running on %s", device.describe())
    memory = MemoryFlags.from_args(args)
    log_startup(memory, device)
    return ModelManager(
        CheckpointRegistry(paths.ckpt_dir, hashes, extra, shipped=paths.shipped("Stable-diffusion")),
        device,
        device_slots=options.checkpoints_limit,
        keep_in_cpu=options.keep_in_cpu,
        ram_cache=options.checkpoint_cache,
        vaes=VaeRegistry(paths.vae_dir, hashes, shipped=paths.shipped("VAE")),
        embeddings=EmbeddingLibrary(paths.embeddings_dir, hashes, shipped=paths.shipped("embeddings")),
        loras=LoraLibrary(paths.lora_dir, hashes, shipped=paths.shipped("Lora")),
        controlnets=ControlNetLibrary(
            paths.controlnet_dir, annotator_dirs(paths), shipped=paths.shipped("ControlNet")
        ),
        memory=memory,
        vae_tiling_threshold=options.vae_tiling_threshold,
    )
