"""Prompt token counts ("n/75" beside the prompt boxes), counted the way A1111 counts them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from webui.core.prompts import extract_network_tags, prompt_schedule, split_and, strip_comments
from webui.engine.sampling.conditioning import count_tokens


class EmbeddingCounts(Protocol):
    def embedding_vector_counts(self) -> dict[str, int]: ...


PromptRewrite = Callable[[str, int, bool], str]  # (prompt, steps, positive) → the prompt to count


def prompt_texts(prompt: str, steps: int, positive: bool = True) -> list[str]:
    """The texts A1111 counts for one prompt box: tags removed, split on AND (the positive prompt only),
    then every text of its prompt-editing schedule."""
    text, _ = extract_network_tags(strip_comments(prompt))
    parts = [part for part, _ in split_and(text)] if positive else [text]
    return [scheduled for part in parts for _, scheduled in prompt_schedule(part, max(1, steps))]


class TokenCounter:
    """Counts with a CLIP tokenizer of its own, built from the bundled files every checkpoint's tokenizer
    is built from (so the counts are the loaded model's), and never shares a tokenizer with a running
    generation. Textual-inversion names count as their vectors when a model is loaded."""

    def __init__(self, models: EmbeddingCounts, rewrite: PromptRewrite | None = None) -> None:
        self.models = models
        self.rewrite = rewrite  # extensions' on_before_token_counter (the App passes the plugins')
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from transformers import CLIPTokenizer

                from webui.engine.checkpoints.components import TOKENIZER_DIR

                self._tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)
            return self._tokenizer

    def count(self, prompt: str, steps: int, positive: bool = True) -> tuple[int, int]:
        """(tokens, max_length) of the longest text the prompt box gives, as A1111's counter shows it."""
        if self.rewrite is not None:
            prompt = self.rewrite(prompt, steps, positive)
        counts = self.models.embedding_vector_counts()
        tokenizer = self.tokenizer()
        with self._lock:  # one caller at a time on this tokenizer
            found = [count_tokens(tokenizer, text, counts) for text in prompt_texts(prompt, steps, positive)]
        return max(found, key=lambda found_count: found_count[0])

    def label(self, prompt: str | None, steps: float | None, positive: bool = True) -> str:
        tokens, max_length = self.count(prompt or "", int(steps or 1), positive)
        return f"{tokens}/{max_length}"
