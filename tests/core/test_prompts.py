"""A1111 prompt syntax. Most cases are the examples in A1111's modules/prompt_parser.py docstrings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webui.core.errors import InvalidParameter
from webui.core.prompts import (
    NetworkTag,
    entry_for_step,
    extract_network_tags,
    parse_prompt_attention,
    prompt_schedule,
    prompts_per_step,
    split_and,
    text_for_step,
)

# --- emphasis ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("\\(literal\\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        ),
    ],
)
def test_attention_matches_a1111_docstring(text: str, expected: list[tuple[str, float]]) -> None:
    assert parse_prompt_attention(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("((word))", [("word", 1.1 * 1.1)]),
        ("[word]", [("word", 1 / 1.1)]),
        ("(word:1.5)", [("word", 1.5)]),
        ("(word: 0.25 )", [("word", 0.25)]),
        ("a\\\\b", [("a\\b", 1.0)]),
        ("a\\b", [("ab", 1.0)]),  # a backslash before an ordinary character is dropped
        ("word)", [("word)", 1.0)]),  # a closing bracket with nothing open is text
        ("a:1.5)", [("a:1.5)", 1.0)]),
        ("(a:1.2.3)", [("a:1.2.3)", 1.1)]),  # A1111 crashes here; the weight stays text
        ("", [("", 1.0)]),
    ],
)
def test_attention_rules(text: str, expected: list[tuple[str, float]]) -> None:
    assert_fragments(parse_prompt_attention(text), expected)


def assert_fragments(actual: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [text for text, _ in actual] == [text for text, _ in expected]
    assert [weight for _, weight in actual] == pytest.approx([weight for _, weight in expected])


def test_break_is_its_own_fragment() -> None:
    assert parse_prompt_attention("a cat BREAK a dog") == [("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.0)]
    assert parse_prompt_attention("BREAKFAST") == [("BREAKFAST", 1.0)]


def test_break_inside_brackets_is_text_as_in_a1111() -> None:
    # The bracket multiplies the marker's weight too, so it no longer reads as a break.
    assert_fragments(parse_prompt_attention("(a BREAK b)"), [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)])


# --- prompt editing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("test", [(10, "test")]),
        ("a [b:3]", [(3, "a "), (10, "a b")]),
        ("a [b: 3]", [(3, "a "), (10, "a b")]),
        ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
        ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
        ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
        ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
        ("a [unbalanced", [(10, "a [unbalanced")]),
        ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
        ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
        ("[a|(b:1.1)]", [(i, "a" if i % 2 else "(b:1.1)") for i in range(1, 11)]),
        ("[fe|]male", [(i, "female" if i % 2 else "male") for i in range(1, 11)]),
        ("[fe|||]male", [(i, "female" if i % 4 == 1 else "male") for i in range(1, 11)]),
        # The docstring also lists 'a [{b|d{:.5] c' as scheduled; that line predates alternation. Since
        # "|" became syntax, A1111's parser rejects the prompt and uses it unchanged, as here.
        ("a [{b|d{:.5] c", [(10, "a [{b|d{:.5] c")]),
    ],
)
def test_schedule_matches_a1111_docstring(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert prompt_schedule(prompt, 10) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a [b:.5] c", [(10, "a b c")]),
        ("a [b:1.5] c", [(5, "a  c"), (10, "a b c")]),
        ("a [b:15] c", [(5, "a  c"), (10, "a b c")]),
    ],
)
def test_hires_schedule_counts_after_the_first_pass(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert prompt_schedule(prompt, 10, hires_steps=10) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("[from:to:0.25]", [(5, "from"), (20, "to")]),
        ("[from::7]", [(7, "from"), (20, "")]),
        ("[:to:7]", [(7, ""), (20, "to")]),
        ("[a:b:1.0]", [(20, "a")]),  # "." makes it a fraction: all 20 steps
        ("[a:b:1]", [(1, "a"), (20, "b")]),  # no "." makes it a step
        ("[a:b:30]", [(20, "a")]),  # past the end: clamped to the last step
        ("[a:b:0]", [(20, "b")]),
        ("[a:b:1e400]", [(20, "a")]),  # A1111 crashes on an infinite step
        ("a | b", [(20, "a | b")]),  # "|" outside brackets: not scheduled at all
    ],
)
def test_schedule_rules(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert prompt_schedule(prompt, 20) == expected


def test_schedule_is_applied_at_0_based_sampler_steps_like_a1111() -> None:
    # A1111 uses the first entry whose end step >= the sampler's 0-based step.
    assert prompts_per_step("[a:b:3]", 6) == ["a", "a", "a", "a", "b", "b"]
    assert prompts_per_step("[x|y]", 5) == ["x", "x", "y", "x", "y"]
    schedule = prompt_schedule("[a:b:c:2]", 4)
    assert text_for_step(schedule, 3) == "[a:b:c:2]"
    assert entry_for_step([(2, "a"), (4, "b")], 3) == 1


def test_deep_nesting_does_not_raise() -> None:
    prompt = "(" * 5000 + "a [b:2]" + ")" * 5000
    assert prompt_schedule(prompt, 4) == [(4, prompt)]


# --- AND and extra networks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a AND b :1.2", [("a", 1.0), (" b", 1.2)]),
        ("a cat:0.5 AND  a dog : -1 ", [("a cat", 0.5), ("  a dog", -1.0)]),
        ("cat :2", [("cat", 2.0)]),
        ("(cat:1.5)", [("(cat:1.5)", 1.0)]),
        ("ANDROID and robot", [("ANDROID and robot", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_split_and(prompt: str, expected: list[tuple[str, float]]) -> None:
    assert split_and(prompt) == expected


def test_network_tags_are_removed_and_read() -> None:
    text, tags = extract_network_tags("a <lora:foo:0.8> cat, <lora:bar_v2:0.8:0.5><hypernet:style:0.6> x")
    assert text == "a  cat,  x"
    assert tags == [
        NetworkTag("lora", "foo", ("0.8",)),
        NetworkTag("lora", "bar_v2", ("0.8", "0.5")),
        NetworkTag("hypernet", "style", ("0.6",)),
    ]
    assert (tags[0].weight, tags[0].unet_weight) == (0.8, 0.8)
    assert (tags[1].weight, tags[1].unet_weight) == (0.8, 0.5)
    assert tags[2].weight == 0.6


def test_network_tag_defaults_and_named_arguments() -> None:
    _, [plain, named] = extract_network_tags("<lora:plain><lora:named:unet=0.3:te=0.7>")
    assert (plain.weight, plain.unet_weight) == (1.0, 1.0)
    assert (named.weight, named.unet_weight) == (0.7, 0.3)


def test_network_tag_with_a_bad_number_names_it() -> None:
    _, [tag] = extract_network_tags("<lora:foo:lots>")
    with pytest.raises(InvalidParameter, match="'lots'"):
        _ = tag.weight


# --- fuzzing ---------------------------------------------------------------------------------------------

syntax_heavy = st.lists(st.sampled_from([*"ab :|[]()<>\\.,015-+eE\n", "BREAK", " AND ", "lora"])).map("".join)
plain_text = st.text(alphabet=st.sampled_from(list("abcdefgh xyz,.!-'0123456789")))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), syntax_heavy), st.integers(min_value=1, max_value=40))
def test_parsers_never_raise(text: str, steps: int) -> None:
    assert parse_prompt_attention(text)
    schedule = prompt_schedule(text, steps)
    assert schedule[-1][0] == steps and all(1 <= end <= steps for end, _ in schedule)
    assert len(prompts_per_step(text, steps)) == steps
    assert split_and(text)
    clean, tags = extract_network_tags(text)
    assert len(clean) <= len(text) and all(tag.kind and tag.name is not None for tag in tags)


@settings(max_examples=200, deadline=None)
@given(plain_text, st.integers(min_value=1, max_value=40))
def test_text_without_syntax_is_itself(text: str, steps: int) -> None:
    assert parse_prompt_attention(text) == [(text, 1.0)]
    assert prompt_schedule(text, steps) == [(steps, text)]
    assert split_and(text) == [(text.rstrip(), 1.0)]
    assert extract_network_tags(text) == (text, [])
