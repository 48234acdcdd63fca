"""A1111's prompt syntax, parsed exactly as A1111 parses it. Pure text in, plain data out.

- Emphasis (parsed in webui.core.emphasis): `(word)` ×1.1, `((word))` ×1.21, `(word:1.5)`, `[word]` ÷1.1;
  a backslash escapes ( ) [ ] and itself; `BREAK` (outside brackets) starts a new 75-token chunk.
- Prompt editing: `[from:to:when]`, `[to:when]`, `[from::when]`; `when` with a "." is a fraction of the
  steps, without one a step number. Alternation: `[a|b]` switches every step. Both nest.
- Composable diffusion: `a AND b :1.2`. Extra networks: `<lora:name:0.8>`, `<hypernet:name:1>`.

The order A1111 applies them in: extra-network tags are removed from the whole prompt, the rest is split
on AND, each part is expanded into its step schedule, and each scheduled text is parsed for emphasis
when it is encoded (webui/engine/sampling/conditioning.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from webui.core.emphasis import BREAK as BREAK  # re-exported: the prompt syntax is imported from here
from webui.core.emphasis import BREAK_WEIGHT as BREAK_WEIGHT
from webui.core.emphasis import parse_prompt_attention as parse_prompt_attention
from webui.core.emphasis import require_unicode
from webui.core.errors import InvalidParameter

# --- prompt editing and alternation -------------------------------------------------------------------
# A parsed prompt is a tree of str (literal text), _Scheduled and _Alternate nodes inside lists.


@dataclass(frozen=True)
class _Scheduled:
    before: list[object]  # empty for [to:when]
    after: list[object]
    when: str  # the number as written: "." in it decides fraction vs step


@dataclass(frozen=True)
class _Alternate:
    options: tuple[list[object], ...]


_NUMBER_CLOSE = re.compile(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*\]")
_PLAIN = re.compile(r"[^\\\[\]():|]+")
_STOPS = ":|])"  # characters that end a prompt nested in brackets


class _ScheduleParser:
    """Recursive descent over A1111's prompt-editing grammar, with its leniency at the top level.

    Inside brackets every construct must be complete; at the top level a bracket or colon that starts no
    complete construct is plain text. A prompt that still cannot be read (a "|" outside brackets, a
    backslash at the end) is not scheduled at all, which is what A1111 does when its parser fails.

    Where a complete construct is directly followed by a stray "]", ")", "(" or ":" at the top level
    ("[b:3]]"), A1111's own answer depends on Python's hash seed (its Earley parser's ambiguity
    resolution); here the construct always wins, one of A1111's answers.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        # Bracket parses by start position: a bracket's parse never depends on what encloses it.
        self.groups: dict[int, tuple[object, int] | None] = {}

    def parse(self) -> list[object] | None:
        text, items, i = self.text, [], 0
        while i < len(text):
            char = text[i]
            if char in "([":
                group = self.group(i)
                if group is not None:
                    items.append(group[0])
                    i = group[1]
                    continue
            if char in "([]):":
                items.append(char)
                i += 1
                continue
            plain = self.plain(i)
            if plain is None:
                return None
            items.append(plain[0])
            i = plain[1]
        return items

    def plain(self, i: int) -> tuple[str, int] | None:
        """Plain text at i: a run of ordinary characters or one escape (a backslash and any character)."""
        if self.text[i] == "\\":
            if i + 1 < len(self.text) and self.text[i + 1] != "\n":
                return self.text[i : i + 2], i + 2
            return None
        match = _PLAIN.match(self.text, i)
        return (match.group(0), match.end()) if match else None

    def prompt(self, i: int) -> tuple[list[object], int] | None:
        """A prompt nested in brackets: everything up to the next stop character at this depth."""
        items: list[object] = []
        while i < len(self.text) and self.text[i] not in _STOPS:
            part = self.group(i) if self.text[i] in "([" else self.plain(i)
            if part is None:
                return None
            items.append(part[0])
            i = part[1]
        return items, i

    def group(self, i: int) -> tuple[object, int] | None:
        if i not in self.groups:
            self.groups[i] = self._round(i) if self.text[i] == "(" else self._square(i)
        return self.groups[i]

    def _at(self, i: int) -> str:
        return self.text[i] if i < len(self.text) else ""

    def _round(self, i: int) -> tuple[list[object], int] | None:
        # (prompt) or (prompt:prompt): kept as written; the emphasis parser reads it later.
        first = self.prompt(i + 1)
        if first is None:
            return None
        inner, j = first
        if self._at(j) == ")":
            return ["(", inner, ")"], j + 1
        if self._at(j) != ":":
            return None
        second = self.prompt(j + 1)
        if second is None or self._at(second[1]) != ")":
            return None
        return ["(", inner, ":", second[0], ")"], second[1] + 1

    def _square(self, i: int) -> tuple[object, int] | None:
        first = self.prompt(i + 1)
        if first is None:
            return None
        inner, j = first
        stop = self._at(j)
        if stop == "]":
            return ["[", inner, "]"], j + 1
        if stop == "|":
            options = [inner]
            while self._at(j) == "|":
                option = self.prompt(j + 1)
                if option is None:
                    return None
                options.append(option[0])
                j = option[1]
            return (_Alternate(tuple(options)), j + 1) if self._at(j) == "]" else None
        if stop != ":":
            return None
        number = _NUMBER_CLOSE.match(self.text, j + 1)
        if number:  # [to:when]
            return _Scheduled([], inner, number.group(1)), number.end()
        second = self.prompt(j + 1)
        if second is None or self._at(second[1]) != ":":
            return None
        number = _NUMBER_CLOSE.match(self.text, second[1] + 1)
        if number is None:
            return None
        return _Scheduled(inner, second[0], number.group(1)), number.end()


def _when_to_step(when: str, steps: int, base_steps: int, hires: bool) -> int:
    """A1111's rule: "0.25" is a fraction of the steps, "5" a step; in a hires pass both count from the
    end of the first pass (so "1.5" is half-way through it and "15" is step 5 of it after 10 base steps)."""
    value = float(when)
    if "." in when:
        value = (value - (1.0 if hires else 0.0)) * steps
    elif hires:
        value -= base_steps
    if math.isinf(value):
        return steps if value > 0 else -1
    return min(steps, int(value))


def _children(node: object) -> list[object]:
    if isinstance(node, list):
        return node
    if isinstance(node, _Scheduled):
        return [node.before, node.after]
    if isinstance(node, _Alternate):
        return list(node.options)
    return []


def _walk(node: object) -> Iterator[object]:
    """Every node of a parsed prompt, depth first."""
    yield node
    for child in _children(node):
        yield from _walk(child)


def _text_at(node: object, step: int, steps_of: dict[int, int]) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "".join(_text_at(child, step, steps_of) for child in node)
    if isinstance(node, _Scheduled):
        return _text_at(node.before if step <= steps_of[id(node)] else node.after, step, steps_of)
    assert isinstance(node, _Alternate)
    return _text_at(node.options[(step - 1) % len(node.options)], step, steps_of)


def prompt_schedule(prompt: str, steps: int, hires_steps: int | None = None) -> list[tuple[int, str]]:
    """[(end_step, text)]: use `text` up to and including sampler step `end_step` (see text_for_step).

    A1111's get_learned_conditioning_prompt_schedules for one prompt: "a [b:3]" with 10 steps gives
    [(3, "a "), (10, "a b")]; an alternation adds an entry for every step. With hires_steps, the schedule
    is the one of a hires pass of that many steps that follows `steps` base steps.
    """
    total = steps if hires_steps is None else hires_steps
    try:
        tree = _ScheduleParser(prompt).parse()
        return [(total, prompt)] if tree is None else _schedule(tree, total, steps, hires_steps is not None)
    except RecursionError:  # brackets nested hundreds deep: read the prompt as plain text
        return [(total, prompt)]


def _schedule(tree: list[object], total: int, base_steps: int, hires: bool) -> list[tuple[int, str]]:
    ends = {total}
    steps_of: dict[int, int] = {}  # id of each _Scheduled node → its last step
    for node in _walk(tree):
        if isinstance(node, _Scheduled):
            steps_of[id(node)] = _when_to_step(node.when, total, base_steps, hires)
            if steps_of[id(node)] >= 1:
                ends.add(steps_of[id(node)])
        elif isinstance(node, _Alternate):
            ends.update(range(1, total + 1))
    return [(end, _text_at(tree, end, steps_of)) for end in sorted(ends)]


def entry_for_step(schedule: Sequence[tuple[int, object]], step: int) -> int:
    """Index of the schedule entry A1111 uses at 0-based sampler step `step`: the first whose end step is
    >= step (so "[a:b:3]" uses "a" for steps 0–3), else the first."""
    return next((i for i, (end, _) in enumerate(schedule) if step <= end), 0)


def text_for_step(schedule: Sequence[tuple[int, str]], step: int) -> str:
    return schedule[entry_for_step(schedule, step)][1]


def prompts_per_step(prompt: str, steps: int) -> list[str]:
    """The text A1111 encodes at each sampler step 0 … steps-1, alternations included."""
    schedule = prompt_schedule(prompt, steps)
    return [text_for_step(schedule, step) for step in range(steps)]


# --- AND -------------------------------------------------------------------------------------------------

_AND = re.compile(r"\bAND\b")
_AND_WEIGHT = re.compile(r"[-+]?(?:\d+\.?|\d*\.\d+)")


def split_and(prompt: str) -> list[tuple[str, float]]:
    """Composable-diffusion parts: "a AND b :1.2" → [("a", 1.0), (" b", 1.2)].

    As in A1111, trailing whitespace and a trailing ":weight" are cut from each part (also without any
    AND: "cat :2" weighs 2); leading whitespace stays. Raises InvalidParameter for a weight too large to
    be a finite number.
    """
    parts = []
    for part in _AND.split(prompt):
        # String methods, not A1111's single regular expression: that one is quadratic on runs of spaces.
        text, weight = part.rstrip(), 1.0
        head, colon, number = text.rpartition(":")
        if colon and _AND_WEIGHT.fullmatch(number.lstrip()):
            text, weight = head.rstrip(), float(number)
            if not math.isfinite(weight):
                raise InvalidParameter(f"an AND weight of {len(number.strip())} characters is too large")
        parts.append((text, weight))
    return parts


# --- extra networks --------------------------------------------------------------------------------------

_NETWORK_TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True)
class NetworkTag:
    """One `<kind:name:arg:…>` tag. Arguments are positional or `key=value` (A1111: te=, unet=, dyn=)."""

    kind: str
    name: str
    args: tuple[str, ...] = ()

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(arg for arg in self.args if arg.count("=") != 1)

    @property
    def named(self) -> dict[str, str]:
        return dict(arg.split("=") for arg in self.args if arg.count("=") == 1)

    @property
    def weight(self) -> float:
        """The strength: a LoRA's text-encoder weight (`te=`), a hypernetwork's multiplier; default 1."""
        default = self.positional[0] if self.positional else "1"
        return self._number(self.named.get("te", default))

    @property
    def unet_weight(self) -> float:
        """A LoRA's UNet weight (third field or `unet=`); defaults to `weight`."""
        if "unet" in self.named:
            return self._number(self.named["unet"])
        return self._number(self.positional[1]) if len(self.positional) > 1 else self.weight

    def _number(self, text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise InvalidParameter(f"<{self.kind}:{self.name}:…>: {text!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidParameter(f"<{self.kind}:{self.name}:…>: {text!r} is not a finite number")
        return number


def extract_network_tags(prompt: str) -> tuple[str, list[NetworkTag]]:
    """The prompt without its `<kind:…>` tags (removed as written, spaces around them stay) and the tags."""
    tags: list[NetworkTag] = []

    def take(match: re.Match[str]) -> str:
        name, *args = match.group(2).split(":")
        tags.append(NetworkTag(match.group(1), name, tuple(args)))
        return ""

    # No tag ends after the last ">"; leaving that part out keeps the search linear where no ">" follows.
    end = prompt.rfind(">") + 1
    return _NETWORK_TAG.sub(take, prompt[:end]) + prompt[end:], tags


# --- checks ----------------------------------------------------------------------------------------------

MAX_PROMPT_LENGTH = 65_536  # characters; A1111 users write long prompts, far beyond 75 tokens

# A1111 reads only digits and dots as an emphasis weight, so "(red:inf)" is the text "red:inf". Nobody
# means that as text: the spellings of infinity and NaN, and numbers too large, are refused as weights.
_WORD_WEIGHT = re.compile(r":\s*([+-]?(?:nan|inf(?:inity)?|[\d.]+e[+-]?\d+))\s*\)", re.IGNORECASE)


def check_prompt(text: str, field: str) -> None:
    """Raise InvalidParameter naming `field` unless the prompt can be generated from: at most
    MAX_PROMPT_LENGTH characters, valid Unicode (no lone surrogates, which JSON's "\\ud800" can carry),
    and finite weights in its emphasis ("(red:inf)" included), AND parts and extra-network tags.

    The parsers raise for non-finite weights themselves (a scheduled variant of the prompt is only seen
    during generation); this check names the field before a job is queued.
    """
    if len(text) > MAX_PROMPT_LENGTH:
        raise InvalidParameter(f"{field} is {len(text):,} characters; the limit is {MAX_PROMPT_LENGTH:,}")
    require_unicode(text, field)
    try:
        plain, tags = extract_network_tags(text)
        for tag in tags:
            for arg in (*tag.positional, *tag.named.values()):
                if _is_number(arg) and not math.isfinite(float(arg)):
                    raise InvalidParameter(f"<{tag.kind}:{tag.name}:…>: {arg!r} is not a finite number")
        for match in _WORD_WEIGHT.finditer(plain):
            if _is_number(match.group(1)) and not math.isfinite(float(match.group(1))):
                raise InvalidParameter(f"the emphasis weight {match.group(1)} is not a finite number")
        for part, _ in split_and(plain):
            parse_prompt_attention(part)
    except InvalidParameter as error:
        raise InvalidParameter(f"{field}: {error}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# A1111 1.8's prompt comments: a line starting with "#", and the rest of a line after "#", never reach the
# model (the setting "enable_prompt_comments").
_COMMENT_LINE = re.compile(r"(^|\n)#[^\n]*(\n|$)")
_COMMENT_END = re.compile(r"#[^\n]*(\n|$)")


def strip_comments(text: str) -> str:
    """`text` without its # comments, each replaced by a line break, as A1111 strips them."""
    return _COMMENT_END.sub("\n", _COMMENT_LINE.sub("\n", text))
