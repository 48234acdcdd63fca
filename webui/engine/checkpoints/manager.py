"""The ModelManager: which checkpoint is loaded, the LRU cache of loaded ones, device and dtype, the VAE
each one runs with and the textual-inversion embeddings."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints.loader import LoadedCheckpoint, load_checkpoint
from webui.engine.checkpoints.memory import DEFAULT_TILING_THRESHOLD, MemoryFlags, Offload, prepare_pipe
from webui.engine.checkpoints.registry import CheckpointEntry, CheckpointRegistry
from webui.engine.checkpoints.vae import AUTOMATIC, VaeFile, VaeRegistry, VaeState, apply_vae
from webui.engine.controlnet.library import ControlNetLibrary
from webui.engine.devices import DeviceChoice
from webui.engine.networks.embeddings import EmbeddingLibrary
from webui.engine.networks.lora import LoraLibrary
from webui.engine.threads import threads_for_model

log = logging.getLogger(__name__)


class ModelManager:
    """Loads checkpoints on demand and keeps the most recently used ones.

    `device_slots` checkpoints stay on the compute device (A1111's "Maximum number of checkpoints loaded
    at the same time"); with `keep_in_cpu`, one more waits in RAM so switching back is a copy, not a load.
    A failed load leaves the current checkpoint untouched.

    The "SD VAE" choice (`set_vae`) is put into every checkpoint as it becomes current; `vaes` and
    `embeddings` default to empty folders.

    `memory` (--medvram, --lowvram, …) is applied to each checkpoint as it loads, on CUDA only. An
    offloaded pipeline places its components itself, so the cache never moves it; `vae_tiling_threshold`
    is read by the decode (engine.checkpoints.memory.decode_latents).
    """

    def __init__(
        self,
        registry: CheckpointRegistry,
        device: DeviceChoice,
        device_slots: int = 1,
        keep_in_cpu: bool = True,
        ram_cache: int = 0,
        vaes: VaeRegistry | None = None,
        embeddings: EmbeddingLibrary | None = None,
        loras: LoraLibrary | None = None,
        controlnets: ControlNetLibrary | None = None,
        memory: MemoryFlags | None = None,
        vae_tiling_threshold: int = DEFAULT_TILING_THRESHOLD,
    ) -> None:
        self.registry = registry
        self.loras = loras  # None: no LoRA folder, a <lora:…> tag is refused
        self.vaes = vaes or VaeRegistry(None, registry.hashes)
        self.embeddings = embeddings or EmbeddingLibrary(None, registry.hashes)
        self.controlnets = controlnets or ControlNetLibrary(None)  # ControlNet models and annotators
        self._vae_choice = AUTOMATIC
        self._vae_states: dict[Path, VaeState] = {}  # by checkpoint path, for the cached checkpoints
        self.device = device
        self.device_slots = device_slots
        self.keep_in_cpu = keep_in_cpu
        self.ram_cache = ram_cache
        self.torch_threads = 0  # the torch_threads setting: 0 = chosen by the model's size
        self.memory = memory or MemoryFlags()
        self.vae_tiling_threshold = vae_tiling_threshold
        self._offload: dict[Path, Offload] = {}  # by checkpoint path, for the cached checkpoints
        self._cache: OrderedDict[Path, LoadedCheckpoint] = OrderedDict()  # oldest first, current last
        # Short hash of each cached file as it was loaded (the file may be renamed or changed afterwards),
        # computed beside the load: the first load of a file is not held up by reading it twice in a row.
        self._short_hashes: dict[Path, Future[str]] = {}
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-hash")
        self._lock = threading.RLock()

    @property
    def current(self) -> LoadedCheckpoint | None:
        with self._lock:
            return next(reversed(self._cache.values()), None)

    def current_entry(self) -> CheckpointEntry | None:
        loaded = self.current
        return None if loaded is None else self.entry_for(loaded)

    def entry_for(self, loaded: LoadedCheckpoint) -> CheckpointEntry:
        for entry in self.registry.entries:
            if entry.path == loaded.path:
                return entry
        # The file was removed or renamed after loading: describe it from its path.
        return CheckpointEntry(path=loaded.path, name=loaded.path.name, model_name=loaded.path.stem)

    def short_hash(self, loaded: LoadedCheckpoint) -> str:
        """The short hash of the file the weights were loaded from (the infotext's "Model hash")."""
        with self._lock:
            known = self._short_hashes.get(loaded.path)
        # waits for the background hash only if it has not finished yet
        return known.result() if known is not None else self.registry.hashes.short_hash(loaded.path)

    def loaded_paths(self) -> list[Path]:
        with self._lock:
            return list(self._cache)

    def configure(self, device_slots: int, keep_in_cpu: bool, ram_cache: int = 0) -> None:
        with self._lock:
            self.device_slots, self.keep_in_cpu, self.ram_cache = device_slots, keep_in_cpu, ram_cache
            self._trim()

    def get(self, wanted: str | None = None) -> LoadedCheckpoint:
        """The checkpoint named by title/name/hash (or the current one, loading the first if none)."""
        with self._lock:
            if wanted:
                entry = self.registry.find(wanted)
            elif self.current is not None:
                return self._with_vae(self.current)
            elif self.registry.entries:
                entry = self.registry.entries[0]
            else:
                raise ModelLoadError(
                    f"No checkpoint found in {self.registry.root}: put a .safetensors file there"
                )
            return self._with_vae(self._activate(entry))

    def use(self, loaded: LoadedCheckpoint) -> LoadedCheckpoint:
        """Make `loaded` (a checkpoint this manager loaded) current again without loading anything: a run
        that switches checkpoints (refiner, hires checkpoint) holds them all, and each goes onto the
        device in its turn. One the cache had to let go of meanwhile comes back into it."""
        with self._lock:
            if self.current is not loaded:
                self._cache.pop(loaded.path, None)
                self._cache[loaded.path] = loaded
                self._trim()
            return self._with_vae(loaded)

    @contextmanager
    def kept_current(self, loaded: LoadedCheckpoint) -> Iterator[LoadedCheckpoint]:
        """`loaded` current while the block runs and again after it, errors included: a batch may end on
        another checkpoint (refiner, hires checkpoint), the next batch and the next job start on this one."""
        try:
            yield self.use(loaded)
        finally:
            self.use(loaded)

    def set_vae(self, choice: str) -> None:
        """Use the "SD VAE" setting `choice` ("Automatic", "None" or a VAE file name) from now on, and put
        it into the current checkpoint now. On ModelNotFound / ModelLoadError the old VAE stays."""
        with self._lock:
            self.vaes.check_choice(choice)
            previous, self._vae_choice = self._vae_choice, choice
            try:
                if self.current is not None:
                    self._with_vae(self.current)
            except BaseException:
                self._vae_choice = previous
                raise

    def vae_in_use(self, loaded: LoadedCheckpoint) -> VaeFile | None:
        """The VAE file `loaded` runs with; None for the checkpoint's own VAE."""
        with self._lock:
            state = self._vae_states.get(loaded.path)
            return None if state is None else state.file

    def _with_vae(self, loaded: LoadedCheckpoint) -> LoadedCheckpoint:
        wanted = self.vaes.resolve(self._vae_choice, loaded.path)
        state = self._vae_states.setdefault(loaded.path, VaeState())
        if wanted != state.file:
            apply_vae(loaded.pipe.vae, state, wanted)
        return loaded

    def _activate(self, entry: CheckpointEntry) -> LoadedCheckpoint:
        switching = self.current is None or self.current.path != entry.path
        cached = self._cache.pop(entry.path, None)
        if cached is None:
            # Free a device slot first (as A1111): the device never holds more than device_slots models.
            self._place(room=1)
            log.info("Loading checkpoint %s", entry.name)
            # hash beside the load (cached: instant for a known file) so the title and infotext carry it
            hashing = self._hasher.submit(self.registry.short_hash, entry)
            try:
                cached = load_checkpoint(entry.path, self._load_device(), self.device.dtype)
                cached.pipe.set_progress_bar_config(disable=True)  # progress goes to the job, not stderr
                family = cached.architecture.family
                self._offload[entry.path] = prepare_pipe(cached.pipe, family, self.memory, self.device)
            except BaseException:
                self._place()  # a failed load changes nothing: the loaded ones go back where they were
                raise
            self._short_hashes[entry.path] = hashing
        self._cache[entry.path] = cached
        self._trim()
        if switching:  # not on every job: a thread count set by hand stays until the model changes
            threads_for_model(cached.weight_bytes, self.torch_threads)
        return cached

    def set_torch_threads(self, setting: int) -> None:
        """The torch_threads setting (0: by the model's size), applied to the current checkpoint now."""
        with self._lock:
            self.torch_threads = setting
            if self.current is not None:
                threads_for_model(self.current.weight_bytes, setting)

    def _trim(self) -> None:
        """Free the checkpoints beyond the device slots and the RAM slots; place the rest."""
        # RAM slots: one for "keep in CPU", plus the sd_checkpoint_cache setting's. On a CPU-only machine
        # device and RAM are the same memory: the RAM slots are still a cache.
        keep = self.device_slots + (1 if self.keep_in_cpu else 0) + self.ram_cache
        evicted = list(reversed(self._cache))[keep:]
        for path in evicted:
            log.info("Unloading checkpoint %s", path.name)
            del self._cache[path]
            self._short_hashes.pop(path, None)
            self._vae_states.pop(path, None)
            self._offload.pop(path, None)
        self._place()
        if evicted:  # free the memory now; a full collection takes ~0.4 s, so not on every switch
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _place(self, room: int = 0) -> None:
        """The newest `device_slots - room` checkpoints on the compute device, the others in RAM."""
        if self.device.device.type == "cpu":
            return
        on_device = max(self.device_slots - room, 0)
        for index, loaded in enumerate(reversed(self._cache.values())):
            if self._offload.get(loaded.path, "none") == "none":
                loaded.pipe.to(self.device.device if index < on_device else "cpu")

    def _load_device(self) -> torch.device:
        """Where weights load: straight into RAM when they will be offloaded anyway (no VRAM peak)."""
        offloads = self.memory.medvram or self.memory.lowvram
        return torch.device("cpu") if offloads and self.device.device.type == "cuda" else self.device.device
