"""A1111 1.8's prompt comments: what strip_comments leaves of a prompt."""

from __future__ import annotations

import pytest

from webui.core.prompts import strip_comments


@pytest.mark.parametrize(
    ("prompt", "stripped"),
    [
        ("a cat", "a cat"),
        ("# a note\na cat", "\na cat"),
        ("a cat # blue\nsky", "a cat \nsky"),
        ("a cat\n# last line", "a cat\n"),
        ("(cat:1.2), sky #", "(cat:1.2), sky \n"),
    ],
)
def test_comments_are_cut_to_the_end_of_their_line(prompt: str, stripped: str) -> None:
    assert strip_comments(prompt) == stripped
