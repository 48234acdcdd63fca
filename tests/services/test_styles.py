"""Prompt styles in styles.csv: A1111's file format and its {prompt} / append rule."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

import pytest

from webui.core.errors import InvalidParameter, UserError
from webui.services.styles import PromptStyle, StyleDatabase, merge_prompts

A1111_CSV = (
    "name,prompt,negative_prompt\n"
    'cinematic,"cinematic still {prompt} . film grain","cartoon, drawing"\n'
    'sharp,"sharp focus, 8k",blurry\n'
)


@pytest.mark.parametrize(
    ("style", "prompt", "expected"),
    [
        ("art by someone", "a cat", "a cat, art by someone"),
        ("photo of {prompt}, dslr", "a cat", "photo of a cat, dslr"),
        ("art", "", "art"),
        ("", "a cat", "a cat"),
        ("  art ", " a cat ", "a cat, art"),
        ("{prompt} and {prompt}", "x", "x and x"),
    ],
)
def test_merge_follows_a1111(style: str, prompt: str, expected: str) -> None:
    assert merge_prompts(style, prompt) == expected


def test_reads_a1111_file_and_applies_in_order(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(A1111_CSV, encoding="utf-8-sig")  # A1111 files may start with a BOM
    styles = StyleDatabase(path)
    assert styles.names() == ["cinematic", "sharp"]
    assert styles.get("sharp") == PromptStyle("sharp", "sharp focus, 8k", "blurry")
    prompt, negative = styles.apply("a dog", "ugly", ["cinematic", "sharp"])
    assert prompt == "cinematic still a dog . film grain, sharp focus, 8k"
    assert negative == "ugly, cartoon, drawing, blurry"
    assert (
        styles.apply("a dog", "", ["sharp", "cinematic"])[0]
        == "cinematic still a dog, sharp focus, 8k . film grain"
    )
    assert styles.apply("a dog", "ugly", []) == ("a dog", "ugly")


def test_unknown_style_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(A1111_CSV)
    with pytest.raises(InvalidParameter, match="'nope'.*cinematic, sharp"):
        StyleDatabase(path).apply("a", "", ["sharp", "nope"])


def test_missing_file_means_no_styles_and_save_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "styles.csv"
    styles = StyleDatabase(path)
    assert styles.styles() == []
    styles.save(PromptStyle("mine", 'say "hi", {prompt}\nnext line', "bad"))
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"name": "mine", "prompt": 'say "hi", {prompt}\nnext line', "negative_prompt": "bad"}]
    assert StyleDatabase(path).get("mine").prompt == 'say "hi", {prompt}\nnext line'  # a fresh reader agrees


def test_save_replaces_in_place_and_delete_removes(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(A1111_CSV)
    styles = StyleDatabase(path)
    styles.save(PromptStyle("cinematic", "new {prompt}", ""))
    styles.save(PromptStyle("third", "t", "n"))
    assert styles.names() == ["cinematic", "sharp", "third"]
    assert StyleDatabase(path).get("cinematic") == PromptStyle("cinematic", "new {prompt}", "")
    styles.delete("sharp")
    assert StyleDatabase(path).names() == ["cinematic", "third"]
    with pytest.raises(InvalidParameter, match="sharp"):
        styles.delete("sharp")
    with pytest.raises(InvalidParameter, match="name"):
        styles.save(PromptStyle("  ", "x"))
    assert not [p for p in tmp_path.iterdir() if p.name != "styles.csv"]  # no temporary files left


def test_hand_edits_are_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(A1111_CSV)
    styles = StyleDatabase(path)
    assert styles.names() == ["cinematic", "sharp"]
    path.write_text("name,prompt,negative_prompt\nonly,o,\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    assert styles.names() == ["only"]


def test_file_without_name_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text("title,text\na,b\n")
    with pytest.raises(UserError, match="'name' column"):
        StyleDatabase(path).styles()


def test_concurrent_saves_keep_every_style(tmp_path: Path) -> None:
    styles = StyleDatabase(tmp_path / "styles.csv")
    threads = [threading.Thread(target=styles.save, args=(PromptStyle(f"s{i}", str(i)),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(StyleDatabase(tmp_path / "styles.csv").names()) == [f"s{i}" for i in range(8)]
