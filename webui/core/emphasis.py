"""A1111's emphasis syntax, parsed as A1111 parses it, in time linear in the text's length.

`(word)` ×1.1, `((word))` ×1.21, `(word:1.5)`, `[word]` ÷1.1; a backslash escapes ( ) [ ] and itself;
`BREAK` (outside brackets) starts a new 75-token chunk. webui.core.prompts has the rest of the syntax.
"""

from __future__ import annotations

import itertools
import math
import operator
import re

from webui.core.errors import InvalidParameter

BREAK = "BREAK"
BREAK_WEIGHT = -1.0  # the weight that marks a BREAK fragment (as A1111 marks it)
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

# One token of emphasis syntax. A backslash escapes ( ) [ ] \ ; a backslash before anything else is
# dropped (A1111 does the same). The weight must end its bracket: "(a:1.5)", "(a: 1.5 )".
_ATTENTION_TOKEN = re.compile(
    r"""
    (?P<escape>\\[()\[\]\\]?)
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?[.\d]+)\s*\)
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+|:)
    """,
    re.VERBOSE,
)
_BREAK_WORD = re.compile(r"\bBREAK\b")

# A fragment's weight is multiplied bracket by bracket in the order the brackets close, as A1111 does, for
# the innermost EXACT_DEPTH brackets of each kind around it. Brackets beyond those (only in prompts nested
# deeper than anyone writes) count as one product: A1111's order costs time quadratic in the nesting.
EXACT_DEPTH = 32


class _Bracket:
    """An open "(" or "["; `below` is the one of the same kind it was opened inside."""

    __slots__ = ("below", "multiplier", "order", "product")

    def __init__(self, below: _Bracket | None) -> None:
        self.below = below
        self.multiplier = 1.0
        self.order = 0  # when the multiplier applies: brackets close in this order
        # This multiplier times those of all brackets below it, as math.frexp's (mantissa, exponent): round
        # and square brackets thousands deep overflow alone but not together ("([a" … ")]").
        self.product = (0.5, 1)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Fragments of text with their emphasis weight; ("BREAK", -1.0) marks a chunk break.

    Unbalanced brackets weigh everything after them; adjacent fragments of equal weight are merged; an
    empty prompt gives [("", 1.0)]. A BREAK inside brackets gets its weight multiplied too and then no
    longer counts as a break (A1111 behaves the same). Time and memory are linear in the text's length.
    Raises InvalidParameter where a weight is not a finite number ("(a:1e400)" written out, or brackets
    nested thousands deep) and for text that is not valid Unicode (see require_unicode).
    """
    require_unicode(text, "the prompt")
    # Each fragment keeps the innermost open brackets of both kinds; weights are worked out at the end.
    fragments: list[tuple[str, float, _Bracket | None, _Bracket | None]] = []
    opened: list[_Bracket] = []
    round_top: _Bracket | None = None
    square_top: _Bracket | None = None
    closes = itertools.count(1)

    def close(bracket: _Bracket, multiplier: float) -> _Bracket | None:
        bracket.multiplier, bracket.order = multiplier, next(closes)
        return bracket.below

    for match in _ATTENTION_TOKEN.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "escape":
            fragments.append((token[1:], 1.0, round_top, square_top))
        elif token == "(":
            round_top = _Bracket(round_top)
            opened.append(round_top)
        elif token == "[":
            square_top = _Bracket(square_top)
            opened.append(square_top)
        elif kind == "weight" and round_top is not None and _is_float(match.group(kind)):
            round_top = close(round_top, float(match.group(kind)))
        elif token == ")" and round_top is not None:
            round_top = close(round_top, ROUND_MULTIPLIER)
        elif token == "]" and square_top is not None:
            square_top = close(square_top, SQUARE_MULTIPLIER)
        else:
            for i, part in enumerate(_split_break(token)):
                if i:
                    fragments.append((BREAK, BREAK_WEIGHT, round_top, square_top))
                fragments.append((part, 1.0, round_top, square_top))
    # Brackets left open weigh everything after them: round ones, then square ones, outermost first.
    for top, multiplier in ((round_top, ROUND_MULTIPLIER), (square_top, SQUARE_MULTIPLIER)):
        for bracket in reversed(_innermost(top)):
            close(bracket, multiplier)
    for bracket in opened:  # in opening order, so the bracket below is done first
        bracket.product = _times(bracket.below.product if bracket.below else (0.5, 1), bracket.multiplier)

    weights: dict[tuple[float, _Bracket | None, _Bracket | None], float] = {}
    merged: list[tuple[list[str], float]] = []
    for fragment_text, initial, round_open, square_open in fragments:
        key = (initial, round_open, square_open)
        if key not in weights:
            weights[key] = _weigh(initial, round_open, square_open, fragment_text)
        weight = weights[key]
        if merged and merged[-1][1] == weight:
            merged[-1][0].append(fragment_text)
        else:
            merged.append(([fragment_text], weight))
    return [("".join(parts), weight) for parts, weight in merged] or [("", 1.0)]


def require_unicode(text: str, what: str) -> None:
    """InvalidParameter naming `what` if `text` holds a lone surrogate (JSON's "\\ud800" carries one): no
    tokenizer, file or JSON answer takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidParameter(
            f"{what} holds a lone surrogate (U+{ord(text[error.start]):04X}) at character {error.start}: "
            "not valid Unicode text"
        ) from None


def _innermost(top: _Bracket | None, limit: float = math.inf) -> list[_Bracket]:
    """Up to `limit` brackets from `top` down, innermost first."""
    chain: list[_Bracket] = []
    while top is not None and len(chain) < limit:
        chain.append(top)
        top = top.below
    return chain


def _weigh(initial: float, round_open: _Bracket | None, square_open: _Bracket | None, text: str) -> float:
    """The weight of a fragment inside these brackets, multiplied in the order A1111 multiplies it."""
    exact: list[_Bracket] = []
    deep = (0.5, 1)  # the brackets below the EXACT_DEPTH innermost ones of each kind
    for top in (round_open, square_open):
        chain = _innermost(top, EXACT_DEPTH)
        exact += chain
        if chain and chain[-1].below is not None:
            deep = _combine(deep, chain[-1].below.product)
    weight = initial
    for bracket in sorted(exact, key=operator.attrgetter("order")):
        weight *= bracket.multiplier
    mantissa, exponent = _combine(deep, math.frexp(weight))
    try:
        weight = math.ldexp(mantissa, exponent)
    except OverflowError:
        weight = math.inf
    if not math.isfinite(weight):
        raise InvalidParameter(
            f"the emphasis weight of {_shorten(text)!r} is {weight}: weights must be finite numbers"
        )
    return weight


def _times(product: tuple[float, int], multiplier: float) -> tuple[float, int]:
    """A product kept as math.frexp's (mantissa, exponent), times a float: no overflow in between."""
    return _combine(product, math.frexp(multiplier))


def _combine(first: tuple[float, int], second: tuple[float, int]) -> tuple[float, int]:
    mantissa, exponent = math.frexp(first[0] * second[0])
    return mantissa, exponent + first[1] + second[1]


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_break(text: str) -> list[str]:
    """Split at the word BREAK, dropping the whitespace around it, as A1111 does with a regular expression
    (one that takes quadratic time on long runs of spaces)."""
    if "BREAK" not in text:
        return [text]
    parts, start = [], 0
    for match in _BREAK_WORD.finditer(text):
        parts.append(text[start : match.start()].rstrip())
        start = match.end()
        while start < len(text) and text[start].isspace():
            start += 1
    parts.append(text[start:])
    return parts


def _is_float(text: str) -> bool:
    # A1111 crashes on weights like "(a:1.2.3)"; here they stay plain text.
    try:
        float(text)
    except ValueError:
        return False
    return True
