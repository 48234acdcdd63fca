"""Prompt text → text-encoder conditioning, built the way A1111 builds it, for diffusers pipelines.

For StableDiffusionPipeline (one CLIP encoder, SD1/SD2) and StableDiffusionXLPipeline (CLIP-L and
OpenCLIP-G: hidden states concatenated, pooled output from the second):

- the prompt is split into emphasis fragments (webui.core.prompts), each tokenized on its own;
- tokens go into chunks of 75: a chunk that fills up breaks after its last comma if that comma is within
  the last 20 tokens (A1111's "comma padding backtrack"), and BREAK starts a new chunk;
- each chunk is wrapped in BOS/EOS, padded to 77, encoded separately; chunks are concatenated, so a
  100-token prompt gives 154 positions;
- clip skip counts as A1111 does (1 = last layer); emphasis is A1111's "Original" mode;
- a textual-inversion embedding's name is matched on its tokens and replaced by its vectors, one position
  each, fed to the encoder in place of the token embeddings; its vectors stay together in one chunk.

A prompt without special syntax and at most 75 tokens gives exactly diffusers' own `encode_prompt`.
Callers remove extra-network tags first (webui.core.prompts.extract_network_tags).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from webui.core.errors import InvalidParameter
from webui.core.prompts import BREAK, BREAK_WEIGHT, entry_for_step, parse_prompt_attention, prompt_schedule
from webui.engine.sampling.hooks import ModelHook, ModelHooks, Stage

CHUNK_LENGTH = 75  # tokens a chunk holds between its BOS and EOS
COMMA_PADDING_BACKTRACK = 20  # A1111's default for "Prompt word wrap length limit"
EMBEDDING_PLACEHOLDER = 0  # the token id fed where an embedding vector goes (as A1111)

# Textual-inversion embeddings usable with a pipeline: name -> one (count, width) tensor per text encoder.
TextualInversions = Mapping[str, Sequence[torch.Tensor]]


@dataclass(frozen=True, eq=False)
class Conditioning:
    """One prompt's conditioning, batch size 1."""

    embeds: torch.Tensor  # (1, 77 × chunks, width): diffusers' prompt_embeds
    pooled: torch.Tensor | None = None  # (1, projection width) for SDXL: pooled_prompt_embeds
    embeddings: tuple[str, ...] = ()  # the textual-inversion embeddings the prompt used, in order

    @property
    def chunks(self) -> int:
        return self.embeds.shape[1] // (CHUNK_LENGTH + 2)


@dataclass(frozen=True)
class _Encoder:
    tokenizer: Any
    model: Any  # CLIPTextModel or CLIPTextModelWithProjection
    sdxl: bool  # SDXL reads hidden_states[-(clip_skip + 1)] without the final layer norm


def text_encoders(pipe: Any) -> list[_Encoder]:
    second = getattr(pipe, "text_encoder_2", None)
    if second is None:
        return [_Encoder(pipe.tokenizer, pipe.text_encoder, sdxl=False)]
    pairs = [(pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, second)]
    return [_Encoder(tokenizer, model, sdxl=True) for tokenizer, model in pairs if model is not None]


@dataclass(frozen=True)
class EmbeddingVector:
    """A prompt position taken by vector `row` of the embedding `name` (of `count` vectors)."""

    name: str
    row: int
    count: int


Token = int | EmbeddingVector


def split_chunks(
    fragments: Sequence[tuple[Sequence[Token], float] | None],
    comma_token: int | None,
    backtrack: int = COMMA_PADDING_BACKTRACK,
) -> list[tuple[list[Token], list[float]]]:
    """Token ids and their weights, (tokens, weight) per fragment or None for a BREAK, in chunks of at
    most CHUNK_LENGTH tokens, following A1111's rules. Always at least one (maybe empty) chunk."""
    chunks: list[tuple[list[Token], list[float]]] = []
    tokens: list[Token] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        chunks.append((tokens, weights))
        tokens, weights, last_comma = [], [], -1

    for fragment in fragments:
        if fragment is None:
            close()
            continue
        ids, weight = fragment
        for token in ids:
            full = len(tokens) == CHUNK_LENGTH
            if token == comma_token:
                last_comma = len(tokens)
            elif full and backtrack and last_comma != -1 and CHUNK_LENGTH - last_comma <= backtrack:
                # Move the words after the last comma to the next chunk rather than cut them in two.
                cut = last_comma + 1
                moved = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close()
                tokens, weights = moved
            if len(tokens) == CHUNK_LENGTH:
                close()
            starts_embedding = isinstance(token, EmbeddingVector) and token.row == 0
            if starts_embedding and len(tokens) + token.count > CHUNK_LENGTH:
                close()  # an embedding is never cut in two (A1111)
            tokens.append(token)
            weights.append(weight)
    if tokens or not chunks:
        close()
    return chunks


def _chunk_ids(tokenizer: Any, tokens: list[int], weights: list[float]) -> tuple[list[int], list[float]]:
    """BOS + tokens + EOS, padded to 77 with EOS; then everything after the first EOS becomes the pad
    token where that differs (OpenCLIP's "!"), which is also how diffusers' tokenizer pads."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    fill = CHUNK_LENGTH + 1 - len(tokens)
    ids = [tokenizer.bos_token_id, *tokens] + [eos] * fill
    if pad is not None and pad != eos:
        first_eos = ids.index(eos)
        ids[first_eos + 1 :] = [pad] * (len(ids) - first_eos - 1)
    return ids, [1.0, *weights] + [1.0] * fill


def emphasize(z: torch.Tensor, multipliers: torch.Tensor) -> torch.Tensor:
    """A1111's "Original" emphasis on chunks z (chunks, 77, width): scale each token's vector by its
    weight, then rescale each chunk so that its mean is what it was before."""
    if bool((multipliers == 1).all()):
        return z
    original = z.mean(dim=(1, 2), keepdim=True)
    scaled = z * multipliers.to(z.dtype).unsqueeze(-1)
    new = scaled.mean(dim=(1, 2), keepdim=True)
    return scaled * torch.where(new == 0, torch.ones_like(new), original / new)


def _hidden_layer(encoder: _Encoder, output: Any, clip_skip: int) -> torch.Tensor:
    layers = encoder.model.config.num_hidden_layers
    if not 1 <= clip_skip <= layers:
        raise InvalidParameter(
            f"Clip skip {clip_skip} is out of range: this text encoder has {layers} layers (1–{layers})"
        )
    if encoder.sdxl:
        return output.hidden_states[-(clip_skip + 1)]
    if clip_skip == 1:
        return output.last_hidden_state
    # transformers 5 dropped CLIPTextModel.text_model; older versions still have it.
    final_norm = getattr(encoder.model, "text_model", encoder.model).final_layer_norm
    return final_norm(output.hidden_states[-clip_skip])


def _name_lookup(tokenizer: Any, names: Sequence[str]) -> dict[int, list[tuple[list[int], str]]]:
    """First token -> (the name's tokens, name), longest first: matched on tokens, as A1111 does."""
    lookup: dict[int, list[tuple[list[int], str]]] = {}
    for name, ids in zip(names, tokenizer(list(names), add_special_tokens=False)["input_ids"]):
        if ids:
            lookup.setdefault(ids[0], []).append((ids, name))
    for candidates in lookup.values():
        candidates.sort(key=lambda candidate: -len(candidate[0]))
    return lookup


def _with_embeddings(
    ids: Sequence[int], lookup: Mapping[int, list[tuple[list[int], str]]], counts: Mapping[str, int]
) -> list[Token]:
    """The fragment's tokens with each embedding name replaced by its vectors' positions."""
    out: list[Token] = []
    position = 0
    while position < len(ids):
        candidates = lookup.get(ids[position], ())
        match = next((c for c in candidates if list(ids[position : position + len(c[0])]) == c[0]), None)
        if match is None:
            out.append(ids[position])
            position += 1
            continue
        name_ids, name = match
        out += [EmbeddingVector(name, row, counts[name]) for row in range(counts[name])]
        position += len(name_ids)
    return out


@contextmanager
def _vectors_in_place(model: Any, vectors: list[tuple[int, torch.Tensor]]) -> Iterator[None]:
    """During the model's forward pass, its token embeddings at the given positions are `vectors`."""
    if not vectors:
        yield
        return

    def replace(module: Any, args: tuple, kwargs: dict[str, Any], output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        for position, vector in vectors:
            output[:, position] = vector.to(output)
        return output

    hooks = ModelHooks([ModelHook(Stage.TEXTUAL_INVERSION, after=replace)])
    with hooks.installed(model.get_input_embeddings()):
        yield


def _tokenize(
    tokenizer: Any, fragments: list[tuple[str, float]], counts: Mapping[str, int]
) -> list[tuple[list[Token], float] | None]:
    """Each emphasis fragment's tokens with its weight (embedding names replaced by their vectors), None
    for a BREAK: the input of split_chunks. `counts`: embedding name -> number of vectors."""
    texts = [text for text, weight in fragments if not _is_break(text, weight)]
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
    token_lists = iter(encoded["input_ids"])
    lookup = _name_lookup(tokenizer, list(counts)) if counts else {}
    return [
        None if _is_break(text, weight) else (_with_embeddings(next(token_lists), lookup, counts), weight)
        for text, weight in fragments
    ]


def count_tokens(
    tokenizer: Any, prompt: str, embedding_counts: Mapping[str, int] | None = None
) -> tuple[int, int]:
    """A1111's token counter for one prompt text (extra-network tags removed, no prompt editing left):
    (tokens, max_length), shown as "tokens/max_length", e.g. (100, 150) for 100 tokens in two chunks.

    As in A1111, every chunk but the last counts as a full 75 (so a comma backtrack or a BREAK adds the
    room it leaves empty), the last counts its tokens unless a BREAK closed it, and max_length is the
    room of the chunks used. `embedding_counts`: textual-inversion name -> number of vectors."""
    marked = _tokenize(tokenizer, parse_prompt_attention(prompt), embedding_counts or {})
    chunks = split_chunks(marked, _comma_token(tokenizer))
    after_break: int | None = None  # tokens after the last BREAK
    for fragment in marked:
        if fragment is None:
            after_break = 0
        elif after_break is not None:
            after_break += len(fragment[0])
    last = CHUNK_LENGTH if after_break == 0 else len(chunks[-1][0])
    tokens = CHUNK_LENGTH * (len(chunks) - 1) + last
    return tokens, CHUNK_LENGTH * max(1, math.ceil(tokens / CHUNK_LENGTH))


def _encode_text(
    encoder: _Encoder,
    fragments: list[tuple[str, float]],
    clip_skip: int,
    device: torch.device,
    embeddings: Mapping[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """(1, 77 × chunks, width) hidden states, the pooled output of the first chunk (SDXL's encoder 2)
    and the names of the embeddings used. `embeddings`: name -> (count, width) vectors for this encoder."""
    tokenizer = encoder.tokenizer
    marked = _tokenize(tokenizer, fragments, {name: vectors.shape[0] for name, vectors in embeddings.items()})
    zs, pooled, used = [], None, []
    # One forward pass a chunk, as A1111 does: a chunk's result then never depends on its neighbours.
    for tokens, weights in split_chunks(marked, _comma_token(tokenizer)):
        placed = [(1 + i, t) for i, t in enumerate(tokens) if isinstance(t, EmbeddingVector)]  # 1: after BOS
        vectors = [(position, embeddings[t.name][t.row]) for position, t in placed]
        used += [t.name for _, t in placed if t.row == 0 and t.name not in used]
        plain = [EMBEDDING_PLACEHOLDER if isinstance(t, EmbeddingVector) else t for t in tokens]
        ids, multipliers = _chunk_ids(tokenizer, plain, weights)
        with _vectors_in_place(encoder.model, vectors):
            output = encoder.model(torch.tensor([ids], device=device), output_hidden_states=True)
        hidden = _hidden_layer(encoder, output, clip_skip)
        zs.append(emphasize(hidden, torch.tensor([multipliers], device=device)))
        if pooled is None:
            pooled = getattr(output, "text_embeds", None)
    return torch.cat(zs, dim=1), pooled, used


def _comma_token(tokenizer: Any) -> int | None:
    comma = tokenizer.convert_tokens_to_ids(",</w>")  # get_vocab() would copy all 49,408 entries
    return None if comma == tokenizer.unk_token_id else comma


def _is_break(text: str, weight: float) -> bool:
    return text == BREAK and weight == BREAK_WEIGHT


@torch.no_grad()
def encode_prompt(
    pipe: Any,
    prompt: str,
    clip_skip: int = 1,
    *,
    negative: bool = False,
    embeddings: TextualInversions | None = None,
) -> Conditioning:
    """The conditioning of one prompt (no prompt editing: see encode_schedule).

    negative=True marks a negative prompt: for SDXL, A1111 then encodes an empty one as zeros (embeddings
    and pooled), which is also what diffusers does when no negative prompt is given. `embeddings`: the
    textual inversions usable with this pipeline (webui.engine.networks.embeddings.EmbeddingLibrary.for_pipe).
    """
    encoders = text_encoders(pipe)
    fragments = parse_prompt_attention(prompt)
    device = pipe._execution_device
    inversions = embeddings or {}
    parts = [
        _encode_text(encoder, fragments, clip_skip, device, {name: v[i] for name, v in inversions.items()})
        for i, encoder in enumerate(encoders)
    ]
    embeds = torch.cat([z for z, _, _ in parts], dim=-1).to(encoders[-1].model.dtype)
    pooled = next((p for _, p, _ in reversed(parts) if p is not None), None)
    if negative and prompt == "" and encoders[-1].sdxl:
        embeds, pooled = torch.zeros_like(embeds), None if pooled is None else torch.zeros_like(pooled)
    return Conditioning(embeds, pooled, tuple(parts[0][2]))


def pad_pair(
    cond: Conditioning, uncond: Conditioning, empty: Conditioning
) -> tuple[Conditioning, Conditioning]:
    """Make both the same length for CFG by appending the empty prompt's conditioning (one chunk) to the
    shorter one, as A1111's "pad prompt/negative prompt" does."""

    def padded(c: Conditioning, chunks: int) -> Conditioning:
        extra = empty.embeds.repeat(1, chunks - c.chunks, 1)
        return Conditioning(torch.cat([c.embeds, extra], dim=1), c.pooled, c.embeddings)

    longest = max(cond.chunks, uncond.chunks)
    return padded(cond, longest), padded(uncond, longest)


def encode_pair(
    pipe: Any, prompt: str, negative: str, clip_skip: int = 1, embeddings: TextualInversions | None = None
) -> tuple[Conditioning, Conditioning]:
    """(cond, uncond) of the same length, ready for pipeline_kwargs."""
    cond = encode_prompt(pipe, prompt, clip_skip, embeddings=embeddings)
    uncond = encode_prompt(pipe, negative, clip_skip, negative=True, embeddings=embeddings)
    if cond.chunks == uncond.chunks:
        return cond, uncond
    return pad_pair(cond, uncond, encode_prompt(pipe, "", clip_skip))


def encode_schedule(
    pipe: Any,
    prompt: str,
    steps: int,
    clip_skip: int = 1,
    *,
    negative: bool = False,
    embeddings: TextualInversions | None = None,
) -> list[tuple[int, Conditioning]]:
    """[(end_step, conditioning)] for prompt editing and alternation (webui.core.prompts.prompt_schedule);
    pick the entry for a 0-based sampler step with webui.core.prompts.entry_for_step. Texts that repeat
    (alternations) are encoded once."""
    encoded: dict[str, Conditioning] = {}
    schedule = []
    for end, text in prompt_schedule(prompt, steps):
        if text not in encoded:
            encoded[text] = encode_prompt(pipe, text, clip_skip, negative=negative, embeddings=embeddings)
        schedule.append((end, encoded[text]))
    return schedule


def pair_for_step(
    conds: Sequence[tuple[int, Conditioning]],
    unconds: Sequence[tuple[int, Conditioning]],
    step: int,
    empty: Conditioning,
) -> tuple[Conditioning, Conditioning]:
    """The (cond, uncond) A1111 uses at 0-based sampler step `step`, of the same length. `empty` is
    encode_prompt(pipe, "", clip_skip): what the shorter one is padded with."""
    cond = conds[entry_for_step(conds, step)][1]
    uncond = unconds[entry_for_step(unconds, step)][1]
    return (cond, uncond) if cond.chunks == uncond.chunks else pad_pair(cond, uncond, empty)


def pipeline_kwargs(cond: Conditioning, uncond: Conditioning, batch_size: int) -> dict[str, torch.Tensor]:
    """diffusers call arguments for `batch_size` images: prompt_embeds, negative_prompt_embeds and, for
    SDXL, pooled_prompt_embeds and negative_pooled_prompt_embeds."""
    kwargs = {
        "prompt_embeds": cond.embeds.repeat(batch_size, 1, 1),
        "negative_prompt_embeds": uncond.embeds.repeat(batch_size, 1, 1),
    }
    if cond.pooled is not None and uncond.pooled is not None:
        kwargs["pooled_prompt_embeds"] = cond.pooled.repeat(batch_size, 1)
        kwargs["negative_pooled_prompt_embeds"] = uncond.pooled.repeat(batch_size, 1)
    return kwargs
