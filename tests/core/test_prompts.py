"""A1111 prompt syntax. Most cases are the examples in A1111's modules/prompt_parser.py docstrings."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webui.core.emphasis import EXACT_DEPTH, ROUND_MULTIPLIER, SQUARE_MULTIPLIER
from webui.core.errors import InvalidParameter
from webui.core.prompts import (
    MAX_PROMPT_LENGTH,
    NetworkTag,
    check_prompt,
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


def direct_attention(text: str) -> list[tuple[str, float]]:
    """A1111's algorithm read directly (time quadratic in the nesting): each closing bracket multiplies
    every fragment since its opening one; brackets left open at the end do so then, round ones first."""
    import re

    from webui.core.emphasis import _ATTENTION_TOKEN

    fragments: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def weigh_from(start: int, multiplier: float) -> None:
        for fragment in fragments[start:]:
            fragment[1] *= multiplier

    for match in _ATTENTION_TOKEN.finditer(text):
        token, weight = match.group(0), match.group("weight")
        if match.group("escape") is not None:
            fragments.append([token[1:], 1.0])
        elif token in "([":
            (round_open if token == "(" else square_open).append(len(fragments))
        elif weight is not None and round_open and is_number(weight):
            weigh_from(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            weigh_from(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            weigh_from(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            for i, part in enumerate(re.split(r"\s*\bBREAK\b\s*", token)):
                if i:
                    fragments.append(["BREAK", -1.0])
                fragments.append([part, 1.0])
    for start in round_open:
        weigh_from(start, ROUND_MULTIPLIER)
    for start in square_open:
        weigh_from(start, SQUARE_MULTIPLIER)
    merged: list[tuple[str, float]] = []
    for text_, weight_ in fragments:
        if merged and merged[-1][1] == weight_:
            merged[-1] = (merged[-1][0] + text_, weight_)
        else:
            merged.append((text_, weight_))
    return merged or [("", 1.0)]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


emphasis_heavy = st.lists(
    st.sampled_from([*"ab :[]()\\.015+-\n\t\u3000", "BREAK", " BREAK ", ":1.3)", ":0.7)", ": 2 )", ":1e2)"]),
    max_size=80,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(emphasis_heavy)
def test_weights_are_a1111s_to_the_last_bit(text: str) -> None:
    assert parse_prompt_attention(text) == direct_attention(text)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["(", "[", ")", "]", "a", ":1.3)", "b "]), min_size=EXACT_DEPTH, max_size=150)
)
def test_deep_nesting_keeps_the_weights(parts: list[str]) -> None:
    # Exact to the bit up to EXACT_DEPTH brackets of a kind; beyond, the same up to rounding (which can
    # split a fragment A1111 merges, so compare character by character).
    text = "(" * EXACT_DEPTH + "[" * EXACT_DEPTH + "".join(parts)
    actual, expected = per_character(parse_prompt_attention(text)), per_character(direct_attention(text))
    assert [char for char, _ in actual] == [char for char, _ in expected]
    assert [weight for _, weight in actual] == pytest.approx([weight for _, weight in expected], rel=1e-12)


def per_character(fragments: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(char, weight) for fragment, weight in fragments for char in fragment]


@pytest.mark.parametrize(
    "text",
    [
        "(red:" + "9" * 400 + ")",  # a weight too large for a float
        "(" * 8000 + "red",  # 1.1 ** 8000
        "((red:" + "9" * 300 + "):" + "9" * 300 + ")",  # 1e300 × 1e300
        "((red:" + "9" * 400 + "):0)",  # inf × 0
    ],
)
def test_weights_that_are_not_finite_are_refused(text: str) -> None:
    with pytest.raises(
        InvalidParameter, match="emphasis weight of 'red' is (inf|nan): weights must be finite"
    ):
        parse_prompt_attention(text)


def test_words_after_a_colon_are_text_as_in_a1111() -> None:
    # A1111 reads only digits and dots as a weight; "nan", "inf" and "1e999" are words to the parser
    # (check_prompt refuses them as weights before generation).
    assert parse_prompt_attention("(red:nan)") == [("red:nan", 1.1)]
    assert parse_prompt_attention("(red:1e999)") == [("red:1e999", 1.1)]
    check_prompt("(red:1e2) (blue: infinite) (a:b)", "prompt")  # finite or no number: left as text


def test_the_parser_refuses_lone_surrogates() -> None:
    # The engine parses every prompt it encodes: a prompt that skipped check_prompt still fails cleanly.
    with pytest.raises(
        InvalidParameter, match=r"the prompt holds a lone surrogate \(U\+D800\) at character 1"
    ):
        parse_prompt_attention("a\ud800")


def best_time(function: Callable[[str], object], text: str) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.mark.parametrize(
    ("function", "make"),
    [
        (parse_prompt_attention, lambda size: "([a " * (size // 8) + "b)] " * (size // 8)),  # nested
        (parse_prompt_attention, lambda size: "[" * (size // 4) + "a[b]" * (size // 16)),  # left open
        (parse_prompt_attention, lambda size: "[a:" * (size // 6) + "b:1]" * (size // 6)),
        (parse_prompt_attention, lambda size: "a" + " " * size + "b"),  # BREAK's split on spaces
        (split_and, lambda size: "a" + " " * size + "b AND c"),
        (extract_network_tags, lambda size: "<a:" * (size // 3)),
        (lambda text: prompt_schedule(text, 20), lambda size: "[a:" * (size // 6) + "b:1]" * (size // 6)),
    ],
)
def test_parsing_time_grows_linearly_with_the_prompt(
    function: Callable[[str], object], make: Callable[[int], str]
) -> None:
    small, large = make(4096), make(MAX_PROMPT_LENGTH)
    growth = len(large) / len(small)  # about 16
    small_s, large_s = best_time(function, small), best_time(function, large)
    # Linear time grows as the text does, quadratic time with its square (~256 times here).
    assert large_s < 1.0 and large_s < 4 * growth * max(small_s, 1e-4), (small_s, large_s)


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


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "1e999"])
def test_network_tag_weights_must_be_finite(weight: str) -> None:
    _, [tag] = extract_network_tags(f"<lora:foo:{weight}>")
    with pytest.raises(InvalidParameter, match="not a finite number"):
        _ = tag.weight


def test_and_weight_too_large_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="AND weight of 400 characters is too large"):
        split_and("a AND b :" + "9" * 400)


# --- checks ----------------------------------------------------------------------------------------------


def test_check_prompt_accepts_long_prompts_up_to_the_limit() -> None:
    check_prompt("(masterpiece:1.2), [[a|b]:c:0.5] <lora:x:0.8> BREAK d AND e :0.5", "prompt")
    check_prompt("(a cat:1.1), " * (MAX_PROMPT_LENGTH // 13) + "x" * (MAX_PROMPT_LENGTH % 13), "prompt")


def test_check_prompt_refuses_a_prompt_over_the_limit() -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_prompt("a" * 900_000, "negative_prompt")
    assert str(caught.value) == "negative_prompt is 900,000 characters; the limit is 65,536"
    with pytest.raises(InvalidParameter, match="65,537 characters"):
        check_prompt("a" * (MAX_PROMPT_LENGTH + 1), "prompt")


@pytest.mark.parametrize(("text", "code", "index"), [("a \ud800 b", "D800", 2), ("\udfff", "DFFF", 0)])
def test_check_prompt_refuses_lone_surrogates(text: str, code: str, index: int) -> None:
    with pytest.raises(
        InvalidParameter, match=f"prompt holds a lone surrogate \\(U\\+{code}\\) at character {index}"
    ):
        check_prompt(text, "prompt")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(red:" + "9" * 400 + ")", "emphasis weight of 'red' is inf"),
        ("a (" * 7500 + "red", "emphasis weight of 'a ' is inf"),
        ("<lora:x:nan> red", "<lora:x:…>: 'nan' is not a finite number"),
        ("<lora:x:1:unet=inf> red", "'inf' is not a finite number"),
        ("<hypernet:x:1e999> red", "'1e999' is not a finite number"),
        ("red AND blue :" + "9" * 400, "AND weight"),
        ("red AND (blue:" + "9" * 400 + ")", "emphasis weight of 'blue' is inf"),
        ("(red:nan)", "the emphasis weight nan is not a finite number"),
        ("a (red: -INF ) b", "the emphasis weight -INF is not a finite number"),
        ("(red:Infinity)", "the emphasis weight Infinity is not a finite number"),
        ("(red:1e999)", "the emphasis weight 1e999 is not a finite number"),
    ],
)
def test_check_prompt_refuses_weights_that_are_not_finite(text: str, reason: str) -> None:
    with pytest.raises(InvalidParameter, match="^hr_prompt: ") as caught:
        check_prompt(text, "hr_prompt")
    assert reason in str(caught.value)


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
