"""Textual-inversion embeddings (webui.engine.networks.embeddings + conditioning) on the tiny SD1 and SDXL
models.

The reference for "the embedding's vectors at its positions" is independent of the hook that puts them
there: a copy of the text encoder whose token-embedding rows of some ordinary words are set to the
vectors, asked about the prompt with those words in the embedding's place.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext
from webui.core.hashing import HashCache, sha256_file
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.networks.embeddings import EmbeddingLibrary, read_embedding
from webui.engine.sampling import conditioning, generate
from webui.engine.sampling.conditioning import CHUNK_LENGTH, EmbeddingVector, encode_prompt, split_chunks
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDTH = 32  # tools.tiny_models.TEXT_WIDTH
STAND_INS = ("cat", "dog", "bird")  # words whose token rows stand in for the vectors in the reference


def vectors(count: int, seed: int, width: int = WIDTH) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def write_all_formats(folder: Path) -> dict[str, torch.Tensor]:
    """One SD1 embedding file in each format; returns name -> vectors."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {"embsafe": vectors(2, 1), "embpt": vectors(3, 2), "embbin": vectors(1, 3)}
    save_file({"emb_params": made["embsafe"]}, folder / "embsafe.safetensors")
    param = torch.nn.Parameter(made["embpt"].clone())
    torch.save(
        {"string_to_token": {"*": 265}, "string_to_param": {"*": param}, "name": "x", "step": 500},
        folder / "embpt.pt",
    )
    torch.save({"<embbin>": made["embbin"][0].clone()}, folder / "embbin.bin")  # diffusers' learned_embeds
    return made


def reference_pipe(pipe: Any, rows: list[torch.Tensor]) -> SimpleNamespace:
    """The pipe's tokenizers with copies of its text encoders where STAND_INS[i] has the vectors rows[e][i]
    (rows: one (count, width) tensor per encoder)."""
    encoders = [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]
    copies = []
    for encoder, vecs in zip([e for e in encoders if e is not None], rows):
        encoder = copy.deepcopy(encoder)
        table = encoder.get_input_embeddings().weight
        with torch.no_grad():
            for word, vector in zip(STAND_INS, vecs):
                table[pipe.tokenizer.convert_tokens_to_ids(f"{word}</w>")] = vector
        copies.append(encoder)
    extra = {"tokenizer_2": pipe.tokenizer_2, "text_encoder_2": copies[1]} if len(copies) == 2 else {}
    return SimpleNamespace(
        tokenizer=pipe.tokenizer, text_encoder=copies[0], _execution_device=torch.device("cpu"), **extra
    )


def test_each_file_format_reads_its_vectors(tmp_path: Path) -> None:
    made = write_all_formats(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        embedding = read_embedding(path)
        assert embedding.name == path.stem
        assert torch.equal(embedding.vectors["clip"], made[path.stem])
        assert embedding.count == made[path.stem].shape[0]


@pytest.mark.parametrize("name", ["embsafe", "embpt", "embbin"])
def test_name_in_prompt_becomes_the_vectors_at_its_positions(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, name: str
) -> None:
    made = write_all_formats(tmp_path)
    pipe = tiny_sd1.pipe
    usable = EmbeddingLibrary(tmp_path, HashCache(tmp_path / "cache.json")).for_pipe(pipe)
    assert sorted(usable) == ["embbin", "embpt", "embsafe"]
    count = made[name].shape[0]
    words = " ".join(STAND_INS[:count])
    reference = reference_pipe(pipe, [made[name]])

    for prompt in (f"a photo of {name}, studio", f"a photo of ({name}:1.4), studio"):
        got = encode_prompt(pipe, prompt, embeddings=usable)
        want = encode_prompt(reference, prompt.replace(name, words))
        assert got.embeddings == (name,)
        assert torch.equal(got.embeds, want.embeds), prompt

    # Causal attention: positions before the embedding (BOS, a, photo, of) are those of the plain model.
    got = encode_prompt(pipe, f"a photo of {name}, studio", embeddings=usable).embeds
    plain = encode_prompt(pipe, f"a photo of {words}, studio").embeds
    assert torch.equal(got[:, :4], plain[:, :4])
    assert not torch.allclose(got[:, 4], plain[:, 4])


def test_without_embeddings_a_name_is_plain_text(tmp_path: Path, tiny_sd1: TinyCheckpoint) -> None:
    write_all_formats(tmp_path)
    usable = EmbeddingLibrary(tmp_path, HashCache(tmp_path / "cache.json")).for_pipe(tiny_sd1.pipe)
    with_library = encode_prompt(tiny_sd1.pipe, "a photo of embsafex", embeddings=usable)  # another word
    without = encode_prompt(tiny_sd1.pipe, "a photo of embsafex")
    assert with_library.embeddings == ()
    assert torch.equal(with_library.embeds, without.embeds)


def test_sdxl_embedding_feeds_clip_l_and_clip_g(tmp_path: Path, tiny_sdxl: TinyCheckpoint) -> None:
    clip_l, clip_g = vectors(2, 5), vectors(2, 6)
    save_file({"clip_l": clip_l, "clip_g": clip_g}, tmp_path / "xlemb.safetensors")
    save_file({"emb_params": vectors(2, 7)}, tmp_path / "sd1emb.safetensors")  # SD1 format: not for SDXL
    usable = EmbeddingLibrary(tmp_path, HashCache(tmp_path / "cache.json")).for_pipe(tiny_sdxl.pipe)
    assert list(usable) == ["xlemb"]

    got = encode_prompt(tiny_sdxl.pipe, "a (xlemb:1.2) house", embeddings=usable)
    want = encode_prompt(reference_pipe(tiny_sdxl.pipe, [clip_l, clip_g]), "a (cat dog:1.2) house")
    assert got.embeddings == ("xlemb",)
    assert torch.equal(got.embeds, want.embeds)
    assert torch.equal(got.pooled, want.pooled)


def test_embedding_of_the_wrong_width_is_skipped_with_a_warning(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, caplog: pytest.LogCaptureFixture
) -> None:
    save_file({"emb_params": vectors(2, 1, width=48)}, tmp_path / "wideemb.safetensors")
    library = EmbeddingLibrary(tmp_path, HashCache(tmp_path / "cache.json"))
    with caplog.at_level(logging.WARNING, logger="webui.engine.networks.embeddings"):
        assert library.for_pipe(tiny_sd1.pipe) == {}
    assert "wideemb.safetensors" in caplog.text


def test_unreadable_file_is_skipped_and_the_others_load(tmp_path: Path, tiny_sd1: TinyCheckpoint) -> None:
    write_all_formats(tmp_path)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    usable = EmbeddingLibrary(tmp_path, HashCache(tmp_path / "cache.json")).for_pipe(tiny_sd1.pipe)
    assert sorted(usable) == ["embbin", "embpt", "embsafe"]


def test_embedding_vectors_stay_in_one_chunk() -> None:
    words = [(list(range(100, 100 + CHUNK_LENGTH - 1)), 1.0)]  # 74 tokens
    emb = [EmbeddingVector("e", row, 2) for row in range(2)]
    chunks = split_chunks([*words, (emb, 1.3)], comma_token=None)
    assert [len(tokens) for tokens, _ in chunks] == [CHUNK_LENGTH - 1, 2]
    assert chunks[1] == (emb, [1.3, 1.3])


def test_infotext_lists_the_hashes_of_the_embeddings_used(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, make_manager: Callable[..., ModelManager]
) -> None:
    made = write_all_formats(tmp_path / "embeddings")
    hashes = HashCache(tmp_path / "cache.json")
    embeddings = EmbeddingLibrary(tmp_path / "embeddings", hashes)
    manager = make_manager(tmp_path, tiny_sd1, hashes=hashes, embeddings=embeddings)
    params = Txt2Img(
        prompt="a [cube:embsafe:1] on a table",  # prompt editing: the embedding comes in at step 2
        negative_prompt="embpt, blurry",
        steps=2,
        cfg_scale=2.0,
        seed=5,
        width=64,
        height=64,
    )
    result = generate.run(params, manager, Job(None, "txt2img", time.monotonic))
    fields = infotext.parse(result.infotexts[0])
    files = {"embsafe": "embsafe.safetensors", "embpt": "embpt.pt"}
    expected = {name: sha256_file(tmp_path / "embeddings" / file)[:12] for name, file in files.items()}
    assert fields["TI hashes"] == ", ".join(f"{name}: {short}" for name, short in expected.items())
    assert "embbin" not in fields["TI hashes"] and set(made) > set(expected)

    plain_params = params.replace(prompt="a cube", negative_prompt="")
    plain = generate.run(plain_params, manager, Job(None, "txt2img", time.monotonic))
    assert "TI hashes" not in infotext.parse(plain.infotexts[0])


def test_conditioning_module_keeps_plain_prompts_unchanged(tiny_sd1: TinyCheckpoint) -> None:
    """No embeddings given: the same tensors as before embeddings existed (diffusers' own encode_prompt)."""
    pipe = tiny_sd1.pipe
    ours = conditioning.encode_prompt(pipe, "a photo of a cat")
    theirs, _ = pipe.encode_prompt("a photo of a cat", "cpu", 1, False)
    assert torch.equal(ours.embeds, theirs)
