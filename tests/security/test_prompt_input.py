"""Hostile prompts sent to a real server over HTTP (issue 21, items 4, 10 and 18): each is a clear 4xx
naming the problem, and the server keeps serving."""

from __future__ import annotations

import json
import time

import pytest
import requests

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "seed": 1}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def post_raw(url: str, body: str) -> requests.Response:
    """JSON as written: json.dumps would escape a lone surrogate the same way, but the text stays visible."""
    return requests.post(
        f"{url}/sdapi/v1/txt2img",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def txt2img(url: str, **payload: object) -> requests.Response:
    return requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, **payload}, timeout=120)


def assert_still_serving(url: str) -> None:
    response = txt2img(url, prompt="a red square")
    assert response.status_code == 200, response.text
    assert len(response.json()["images"]) == 1


@pytest.mark.parametrize(
    ("field", "body_text", "code", "index"),
    [("prompt", r"a \ud800 b", "D800", 2), ("negative_prompt", r"\udfff", "DFFF", 0)],
)
def test_lone_surrogate_is_a_4xx_naming_it(running_app, field, body_text, code, index):
    _, url = running_app
    body = (
        "{" + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in SMALL.items()) + f', "{field}": "{body_text}"}}'
    )
    response = post_raw(url, body)
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert f"lone surrogate (U+{code}) at character {index}" in detail
    assert_still_serving(url)


@pytest.mark.parametrize("field", ["prompt", "negative_prompt"])
def test_lone_surrogate_names_the_field(running_app, field):
    _, url = running_app
    body = "{" + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in SMALL.items()) + f', "{field}": "\\ud800"}}'
    response = post_raw(url, body)
    assert response.status_code == 422 and response.json()["detail"].startswith(
        f"{field} holds a lone surrogate"
    )


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ("(red:" + "9" * 400 + ")", "the emphasis weight of 'red' is inf"),
        ("red AND blue :" + "9" * 400, "AND weight"),
        ("(" * 8000 + "red", "the emphasis weight of 'red' is inf"),
        ("[(red:" + "9" * 400 + "):blue:0.5]", "is inf"),  # only the first half of the steps
    ],
)
def test_weights_that_are_not_finite_are_a_4xx(running_app, prompt, reason):
    _, url = running_app
    response = txt2img(url, prompt=prompt)
    assert response.status_code == 422, response.status_code
    assert reason in response.json()["detail"]
    assert_still_serving(url)


@pytest.mark.parametrize("weight", ["nan", "inf", "1e999"])
def test_weights_spelled_as_words_are_a_4xx(running_app, weight):
    _, url = running_app
    response = txt2img(url, prompt=f"(red:{weight})")
    assert response.status_code == 422
    assert response.json()["detail"] == f"prompt: the emphasis weight {weight} is not a finite number"


def test_overlong_prompt_is_refused_at_once(running_app):
    _, url = running_app
    start = time.monotonic()
    # Spaces: cheap to generate from should the limit be missing, so the worker is not held meanwhile.
    response = txt2img(url, prompt="a" + " " * 899_999)
    assert response.status_code == 422
    assert response.json()["detail"] == "prompt is 900,000 characters; the limit is 65,536"
    assert time.monotonic() - start < 5


def test_a_64_kb_prompt_of_nested_brackets_does_not_hold_the_worker(running_app):
    # Before the linear parser, a prompt like this took minutes to parse while the only worker waited.
    _, url = running_app
    prompt = "([a " * 4096 + "b)] " * 4096
    assert len(prompt) <= 65_536
    start = time.monotonic()
    response = txt2img(url, prompt=prompt, steps=1)
    assert response.status_code == 200, response.text
    assert time.monotonic() - start < 60
    assert_still_serving(url)
