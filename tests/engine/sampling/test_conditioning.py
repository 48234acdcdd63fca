"""A1111-style conditioning on tiny SD1 and SDXL pipelines, checked against diffusers' own encode_prompt."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tools.tiny_models import tiny_pipeline
from webui.core.errors import InvalidParameter
from webui.core.prompts import entry_for_step
from webui.engine.sampling.conditioning import (
    CHUNK_LENGTH,
    emphasize,
    encode_pair,
    encode_prompt,
    encode_schedule,
    pair_for_step,
    pipeline_kwargs,
    split_chunks,
)

PLAIN = "a photo of a red cat, high quality"
CAT = 2368  # "cat</w>": one token, no comma


@pytest.fixture(scope="module")
def pipes() -> dict[str, Any]:
    return {"sd1": tiny_pipeline("sd1"), "sdxl": tiny_pipeline("sdxl")}


def diffusers_encode(
    pipe: Any, prompt: str, clip_skip: int, negative: str | None = ""
) -> tuple[torch.Tensor, ...]:
    """diffusers' own encoding; clip_skip in A1111's numbering."""
    skip = clip_skip - 1 or None
    if hasattr(pipe, "text_encoder_2"):
        return pipe.encode_prompt(
            prompt,
            device="cpu",
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative,
            clip_skip=skip,
        )
    if skip is not None and not hasattr(pipe.text_encoder, "text_model"):
        # diffusers 0.42 reads text_encoder.text_model.final_layer_norm, which transformers 5 removed:
        # give it back on this test's own pipeline (unregistered, so the module tree is unchanged).
        object.__setattr__(pipe.text_encoder, "text_model", pipe.text_encoder)
    return pipe.encode_prompt(prompt, "cpu", 1, True, negative_prompt=negative, clip_skip=skip)


def chunk(c: torch.Tensor, index: int) -> torch.Tensor:
    size = CHUNK_LENGTH + 2
    return c[:, index * size : (index + 1) * size]


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
@pytest.mark.parametrize("clip_skip", [1, 2])
def test_plain_prompt_equals_diffusers(pipes: dict[str, Any], variant: str, clip_skip: int) -> None:
    pipe = pipes[variant]
    expected = diffusers_encode(pipe, PLAIN, clip_skip)
    cond = encode_prompt(pipe, PLAIN, clip_skip)
    assert torch.equal(cond.embeds, expected[0])
    if variant == "sdxl":
        assert torch.equal(cond.pooled, expected[2])
    else:
        assert cond.pooled is None
    if clip_skip == 1:  # diffusers ignores clip skip for the negative prompt; A1111 does not
        uncond = encode_prompt(pipe, "", clip_skip)
        assert torch.equal(uncond.embeds, expected[1])
        if variant == "sdxl":
            assert torch.equal(uncond.pooled, expected[3])


def test_sdxl_empty_negative_is_zeros_as_in_a1111(pipes: dict[str, Any]) -> None:
    pipe = pipes["sdxl"]
    # A1111 zeroes an empty SDXL negative prompt, as diffusers does when no negative prompt is given.
    expected = diffusers_encode(pipe, PLAIN, 1, negative=None)
    cond, uncond = encode_pair(pipe, PLAIN, "", 1)
    assert torch.count_nonzero(expected[1]) == 0
    assert torch.equal(uncond.embeds, expected[1]) and torch.equal(uncond.pooled, expected[3])
    assert torch.equal(cond.embeds, expected[0])
    sd1_uncond = encode_pair(pipes["sd1"], PLAIN, "", 1)[1]
    assert torch.count_nonzero(sd1_uncond.embeds) > 0  # SD1 encodes "" like any prompt


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_100_tokens_give_two_chunks_encoded_separately(pipes: dict[str, Any], variant: str) -> None:
    pipe = pipes[variant]
    cond = encode_prompt(pipe, "cat " * 100)
    assert cond.embeds.shape[1] == 154
    assert torch.equal(chunk(cond.embeds, 0), encode_prompt(pipe, "cat " * 75).embeds)
    assert torch.equal(chunk(cond.embeds, 1), encode_prompt(pipe, "cat " * 25).embeds)
    if variant == "sdxl":  # the pooled output comes from the first chunk
        assert torch.equal(cond.pooled, encode_prompt(pipe, "cat " * 75).pooled)


def test_75_tokens_fit_one_chunk(pipes: dict[str, Any]) -> None:
    assert encode_prompt(pipes["sd1"], "cat " * 75).chunks == 1
    assert encode_prompt(pipes["sd1"], "cat " * 76).chunks == 2


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_break_starts_a_new_chunk(pipes: dict[str, Any], variant: str) -> None:
    pipe = pipes[variant]
    cond = encode_prompt(pipe, "a red cat BREAK a blue dog")
    assert cond.chunks == 2
    assert torch.equal(chunk(cond.embeds, 0), encode_prompt(pipe, "a red cat").embeds)
    assert torch.equal(chunk(cond.embeds, 1), encode_prompt(pipe, "a blue dog").embeds)


def test_chunks_break_after_a_nearby_comma() -> None:
    comma = 267
    # Full at 75 tokens with a comma 15 back: the 14 tokens after it move to the next chunk.
    chunks = split_chunks([([1] * 60 + [comma] + [2] * 20, 1.0)], comma)
    assert [len(tokens) for tokens, _ in chunks] == [61, 20]
    assert chunks[0][0][-1] == comma and chunks[1][0] == [2] * 20
    # A comma more than 20 tokens back, or no backtracking: a hard cut at 75.
    assert [len(t) for t, _ in split_chunks([([1] * 50 + [comma] + [2] * 30, 1.0)], comma)] == [75, 6]
    no_backtrack = split_chunks([([1] * 60 + [comma] + [2] * 20, 1.0)], comma, backtrack=0)
    assert [len(t) for t, _ in no_backtrack] == [75, 6]


def test_chunk_weights_follow_their_tokens() -> None:
    comma = 267
    chunks = split_chunks([([1] * 70, 1.0), ([comma], 1.0), ([3] * 10, 1.5)], comma)
    assert chunks[1] == ([3] * 10, [1.5] * 10)
    assert chunks[0][1] == [1.0] * 71


def test_break_edges_like_a1111() -> None:
    assert split_chunks([None, ([1], 1.0)], None) == [([], []), ([1], [1.0])]  # leading BREAK: an empty chunk
    assert split_chunks([([1], 1.0), None], None) == [([1], [1.0])]  # trailing BREAK: nothing after
    assert split_chunks([], None) == [([], [])]


def test_emphasis_scales_then_restores_the_chunk_mean() -> None:
    z = torch.arange(1.0, 13.0).reshape(1, 4, 3)
    weights = torch.tensor([[1.0, 1.5, 1.0, 0.5]])
    out = emphasize(z, weights)
    scaled = z * weights.unsqueeze(-1)
    assert torch.allclose(out, scaled * (z.mean() / scaled.mean()))
    assert torch.allclose(out.mean(), z.mean())
    assert emphasize(z, torch.ones(1, 4)) is z


def test_emphasis_on_a_real_prompt() -> None:
    pipe = tiny_pipeline("sd1")
    with torch.no_grad():  # a fresh final norm has zero bias: every token's mean, so the chunk's, is ~0
        pipe.text_encoder.final_layer_norm.bias.fill_(0.1)
    plain = encode_prompt(pipe, "a cat").embeds
    weighted = encode_prompt(pipe, "a (cat:1.5)").embeds  # same tokens: "a " and "cat" tokenize as "a cat"
    ratio = weighted / plain
    factor = ratio[0, 0, 0]  # BOS: weight 1, so only the renormalisation
    assert factor != 1
    assert torch.allclose(ratio[0, 2], 1.5 * factor)  # "cat" (after BOS and "a")
    others = torch.cat([ratio[0, :2], ratio[0, 3:]])
    assert torch.allclose(others, factor.expand_as(others))
    assert torch.allclose(weighted.mean(), plain.mean())


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_negative_is_padded_to_the_prompt_length(pipes: dict[str, Any], variant: str) -> None:
    pipe = pipes[variant]
    cond, uncond = encode_pair(pipe, "cat " * 100, "blurry", 1)
    assert cond.embeds.shape == uncond.embeds.shape == (1, 154, cond.embeds.shape[-1])
    assert torch.equal(chunk(uncond.embeds, 0), encode_prompt(pipe, "blurry").embeds)
    assert torch.equal(chunk(uncond.embeds, 1), encode_prompt(pipe, "").embeds)  # A1111 pads with ""
    cond, uncond = encode_pair(pipe, "blurry", "cat " * 100, 1)  # and the other way round
    assert cond.embeds.shape == uncond.embeds.shape
    assert torch.equal(chunk(cond.embeds, 1), encode_prompt(pipe, "").embeds)


def test_sdxl_zero_negative_is_padded_with_the_empty_prompt(pipes: dict[str, Any]) -> None:
    pipe = pipes["sdxl"]
    cond, uncond = encode_pair(pipe, "cat " * 100, "", 1)
    assert torch.count_nonzero(chunk(uncond.embeds, 0)) == 0 and torch.count_nonzero(uncond.pooled) == 0
    assert torch.equal(chunk(uncond.embeds, 1), encode_prompt(pipe, "").embeds)


def test_clip_skip_out_of_range(pipes: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter, match="Clip skip 3"):
        encode_prompt(pipes["sd1"], "a cat", 3)  # the tiny text encoder has 2 layers


def test_schedule_swaps_conditioning(pipes: dict[str, Any]) -> None:
    pipe = pipes["sd1"]
    schedule = encode_schedule(pipe, "a [cat:dog:2]", 4)
    assert [end for end, _ in schedule] == [2, 4]
    assert torch.equal(schedule[0][1].embeds, encode_prompt(pipe, "a cat").embeds)
    assert torch.equal(schedule[1][1].embeds, encode_prompt(pipe, "a dog").embeds)
    assert entry_for_step(schedule, 3) == 1
    alternating = encode_schedule(pipe, "a [cat|dog]", 4)
    assert len(alternating) == 4 and alternating[0][1] is alternating[2][1]  # each text encoded once


def test_pair_for_step_pads_each_step(pipes: dict[str, Any]) -> None:
    pipe = pipes["sd1"]
    conds = encode_schedule(pipe, "[cat:" + "dog " * 80 + ":1]", 3)  # one chunk for steps 0–1, then two
    unconds = encode_schedule(pipe, "blurry", 3, negative=True)
    empty = encode_prompt(pipe, "")
    cond, uncond = pair_for_step(conds, unconds, 1, empty)
    assert cond is conds[0][1] and uncond is unconds[0][1]
    cond, uncond = pair_for_step(conds, unconds, 2, empty)
    assert cond.chunks == uncond.chunks == 2
    assert torch.equal(chunk(uncond.embeds, 1), empty.embeds)


def test_pipeline_runs_on_the_embeddings_and_matches_plain_strings(pipes: dict[str, Any]) -> None:
    pipe = pipes["sd1"]

    def run(**prompts: Any) -> Any:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            return pipe(
                **prompts,
                num_inference_steps=1,
                width=32,
                height=32,
                output_type="latent",
                generator=generator,
            )

    by_text = run(prompt=[PLAIN] * 2, negative_prompt=[""] * 2)
    by_embeds = run(**pipeline_kwargs(*encode_pair(pipe, PLAIN, "", 1), 2))
    long = run(**pipeline_kwargs(*encode_pair(pipe, "cat " * 100, "", 1), 1))
    assert torch.equal(by_text.images, by_embeds.images)
    assert long.images.shape == by_text.images[:1].shape


def test_sdxl_pipeline_kwargs_shapes(pipes: dict[str, Any]) -> None:
    cond, uncond = encode_pair(pipes["sdxl"], "cat " * 100, "blurry", 1)
    kwargs = pipeline_kwargs(cond, uncond, 3)
    assert kwargs["prompt_embeds"].shape == kwargs["negative_prompt_embeds"].shape == (3, 154, 64)
    assert kwargs["pooled_prompt_embeds"].shape == kwargs["negative_pooled_prompt_embeds"].shape == (3, 32)
