"""A1111's token counter ("n/75"), checked against the conditioning's own chunking on a tiny SD1 pipeline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tools.tiny_models import tiny_pipeline
from webui.engine.sampling.conditioning import CHUNK_LENGTH, count_tokens, encode_prompt


@pytest.fixture(scope="module")
def pipe() -> Any:
    return tiny_pipeline("sd1")


def chunks_encoded(pipe: Any, prompt: str) -> int:
    return encode_prompt(pipe, prompt).chunks


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("", (0, 75)),
        ("a photo of a cat", (5, 75)),
        ("cat " * 75, (75, 75)),
        ("cat " * 76, (76, 150)),
        ("cat " * 100, (100, 150)),
        ("cat " * 151, (151, 225)),
    ],
)
def test_counts_tokens_and_the_room_of_the_chunks_used(
    pipe: Any, prompt: str, expected: tuple[int, int]
) -> None:
    assert count_tokens(pipe.tokenizer, prompt) == expected
    assert expected[1] // CHUNK_LENGTH == chunks_encoded(pipe, prompt)


def test_emphasis_syntax_takes_no_tokens(pipe: Any) -> None:
    plain = count_tokens(pipe.tokenizer, "cat, dog, bird")
    assert count_tokens(pipe.tokenizer, "(cat:1.3), [dog], ((bird))") == plain
    # Escaped brackets are text: they do take tokens.
    assert count_tokens(pipe.tokenizer, r"\(cat\)")[0] > count_tokens(pipe.tokenizer, "cat")[0]


def test_break_fills_the_chunk_it_closes_as_a1111_counts(pipe: Any) -> None:
    prompt = "a red cat BREAK a blue dog"
    assert count_tokens(pipe.tokenizer, prompt) == (78, 150)  # 75 for the first chunk + 3
    assert chunks_encoded(pipe, prompt) == 2
    # A BREAK at the end closes the last chunk: it counts whole, and no second chunk starts.
    assert count_tokens(pipe.tokenizer, "a red cat BREAK") == (75, 75)
    assert chunks_encoded(pipe, "a red cat BREAK") == 1
    assert count_tokens(pipe.tokenizer, "BREAK a red cat") == (78, 150)


def test_comma_backtrack_moves_words_and_leaves_room_counted(pipe: Any) -> None:
    # 60 words, a comma, 20 words: the chunk breaks after the comma (61 tokens), 20 go to the next chunk.
    prompt = "cat " * 60 + ", " + "dog " * 20
    assert count_tokens(pipe.tokenizer, prompt) == (95, 150)
    assert chunks_encoded(pipe, prompt) == 2
    # Without a comma near the end, a hard cut: the count is the plain token count.
    assert count_tokens(pipe.tokenizer, "cat " * 81) == (81, 150)


def test_embedding_names_count_as_their_vectors(pipe: Any) -> None:
    assert count_tokens(pipe.tokenizer, "a photo of mystyle") == (5, 75)  # "mystyle" is two BPE tokens
    assert count_tokens(pipe.tokenizer, "a photo of mystyle", {"mystyle": 8}) == (11, 75)


def test_ui_counter_reads_prompts_as_a1111_does() -> None:
    from webui.ui.token_counter import TokenCounter, prompt_texts

    # Tags are dropped, AND splits the positive prompt, prompt editing gives one text per schedule entry.
    assert prompt_texts("<lora:x:1>a cat AND a dog", 20) == ["a cat", " a dog"]
    assert prompt_texts("a cat AND a dog", 20, positive=False) == ["a cat AND a dog"]
    assert prompt_texts("[cat:dog dog dog:5]", 10) == ["cat", "dog dog dog"]

    counter = TokenCounter(SimpleNamespace(embedding_vector_counts=dict))  # no model: bundled tokenizer
    assert counter.label("cat " * 100, 20) == "100/150"
    assert counter.label("cat " * 70 + "AND dog", 20) == "70/75"  # the longest part counts
    assert counter.label("<lora:style:1> cat", 20) == "1/75"
    assert counter.label("[cat:dog dog dog:5]", 10) == "3/75"
    assert counter.label(None, None) == "0/75"
