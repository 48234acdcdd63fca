"""Issue 21 #16: failed logins are throttled per client, for the API's HTTP Basic (--api-auth) and
gradio's login form (--gradio-auth) alike: after a few failures every attempt waits (429 + Retry-After),
even with the right password, so guessing 200 passwords in 2 s is no longer possible."""

from __future__ import annotations

import time

import pytest
import requests

from tests.security.servers import served
from webui.api.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_grows_with_each_failure_and_ends_on_success() -> None:
    clock = Clock()
    throttle = LoginThrottle(free_failures=2, max_lockout_s=8, clock=clock)
    for _ in range(2):
        throttle.failed("a")
        assert throttle.retry_after("a") == 0
    waits = []
    for _ in range(5):
        throttle.failed("a")
        waits.append(throttle.retry_after("a"))
    assert waits == [2, 4, 8, 8, 8]  # doubling, capped
    assert throttle.retry_after("b") == 0  # per client
    clock.now += 8
    assert throttle.retry_after("a") == 0
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0  # the count started again


def _wait_out(response: requests.Response) -> None:
    time.sleep(float(response.headers["Retry-After"]) + 0.1)


@pytest.mark.slow
def test_api_and_ui_logins_are_throttled(tmp_path):
    with served(tmp_path, "--api", "--api-auth", "api:right", "--gradio-auth", "ui:right") as (_, url, _):
        options = f"{url}/sdapi/v1/options"
        codes = [requests.get(options, auth=("api", f"guess{i}"), timeout=30).status_code for i in range(7)]
        assert codes == [401] * 6 + [429]  # the 6th failure locks for 2 s
        locked = requests.get(options, auth=("api", "right"), timeout=30)
        assert locked.status_code == 429 and "try again" in locked.json()["detail"]  # even the right one
        _wait_out(locked)
        assert requests.get(options, auth=("api", "right"), timeout=30).status_code == 200

        login = f"{url}/login"
        codes = [
            requests.post(login, data={"username": "ui", "password": f"guess{i}"}, timeout=30).status_code
            for i in range(7)
        ]
        assert codes == [400] * 6 + [429]
        locked = requests.post(login, data={"username": "ui", "password": "right"}, timeout=30)
        assert locked.status_code == 429
        _wait_out(locked)
        answer = requests.post(login, data={"username": "ui", "password": "right"}, timeout=30)
        assert answer.json() == {"success": True}
