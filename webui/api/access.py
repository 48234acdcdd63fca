"""Who may call the server: HTTP Basic on every API route (--api-auth), throttled logins (API and UI),
CORS (--cors-allow-origins[-regex]) and which files gradio may serve."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webui.api.login_throttle import LoginThrottle

# Paths that are the API's even where no route matches (an unknown /sdapi/ route is a 401, not gradio's 404).
API_PREFIXES = ("/sdapi/", "/controlnet/")
# gradio's login form, under the UI mounted at "/"
UI_LOGIN_PATHS = ("/login", "/login/")
log = logging.getLogger(__name__)


def _user(header: str, credentials: Sequence[tuple[str, str]]) -> str | None:
    """The user whose HTTP Basic credentials `header` carries, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # Compare every pair in full and in constant time, so timing tells nothing about near misses.
    found = None
    for known_user, known_password in credentials:
        same_user = secrets.compare_digest(user.encode(), known_user.encode())
        same_password = secrets.compare_digest(password.encode(), known_password.encode())
        if sep and same_user and same_password:
            found = known_user
    return found


def is_ui_route(route: BaseRoute) -> bool:
    """gradio's UI: the Mount that holds gradio's own app (its routes are governed by --gradio-auth)."""
    return isinstance(route, Mount) and type(route.app).__module__.split(".")[0] == "gradio"


def serves_api(web: Starlette, scope: Scope) -> bool:
    """Whether the request goes to the API rather than the UI: every route of the server's own route table
    is the API's (the /sdapi and /controlnet routes, /docs, /redoc, /openapi.json, routes extensions add),
    except gradio's mount; so is anything under an API prefix, and anything when no UI is mounted."""
    if scope["path"].startswith(API_PREFIXES):
        return True
    for route in web.router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return not is_ui_route(route)
    return True


class AccessControl:
    """ASGI middleware: with --api-auth every API request needs one of the credentials as HTTP Basic,
    else 401 with a WWW-Authenticate challenge; failed logins (API or gradio's login form) are throttled
    per client address (webui.api.login_throttle)."""

    def __init__(
        self,
        app: ASGIApp,
        web: Starlette,
        api_credentials: Sequence[tuple[str, str]],
        ui_login: bool,
        throttle: LoginThrottle,
    ) -> None:
        self.app = app
        self.web = web
        self.credentials = tuple(api_credentials)
        self.ui_login = ui_login
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.credentials and serves_api(self.web, scope):
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            wait = self.throttle.retry_after(client) if header else 0.0
            user = _user(header, self.credentials) if not wait else None
            if user is None:
                if wait:
                    await _refuse(scope, send, 429, _too_many(wait), wait)
                    return
                if header:
                    self.throttle.failed(client)
                await _refuse(scope, send, 401, "Incorrect username or password")
                return
            self.throttle.succeeded(client)
            scope["api_user"] = user
        elif self.ui_login and scope["type"] == "http" and scope["path"] in UI_LOGIN_PATHS:
            wait = self.throttle.retry_after(client)
            if wait and scope["method"] == "POST":
                await _refuse(scope, send, 429, _too_many(wait), wait)
                return
            send = self._watch_login(client, send) if scope["method"] == "POST" else send
        await self.app(scope, receive, send)

    def _watch_login(self, client: str, send: Send) -> Send:
        """`send` that counts gradio's answer to a login: 400/401 a failure, 2xx/3xx a success."""

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status in (400, 401):
                    self.throttle.failed(client)
                elif status < 400:
                    self.throttle.succeeded(client)
            await send(message)

        return watching


def _too_many(wait: float) -> str:
    return f"Too many failed logins from your address; try again in {math.ceil(wait)} s"


async def _refuse(scope: Scope, send: Send, status: int, detail: str, retry_after: float = 0.0) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail})
        return
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="sdapi"'))
    if retry_after:
        headers.append((b"retry-after", str(math.ceil(retry_after)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def add_access_control(
    web: FastAPI,
    args: argparse.Namespace,
    api_credentials: Sequence[tuple[str, str]],
    ui_login: bool = False,
) -> None:
    """API auth and the login throttle, then CORS around them (so a browser's preflight gets its CORS
    answer without credentials)."""
    if api_credentials or ui_login:
        web.add_middleware(
            AccessControl,
            web=web,
            api_credentials=api_credentials,
            ui_login=ui_login,
            throttle=LoginThrottle(),
        )
    origins = [origin.strip() for origin in (args.cors_allow_origins or "").split(",") if origin.strip()]
    if origins or args.cors_allow_origins_regex:
        web.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_origin_regex=args.cors_allow_origins_regex,
            allow_methods=["*"],
            allow_credentials=True,
            allow_headers=["*"],
        )


def exposure_warning(args: argparse.Namespace, has_ui_auth: bool, has_api_auth: bool) -> str | None:
    """A loud warning when the server is reachable from other machines without a password, else None."""
    reachable = []
    if args.share:
        reachable.append("--share makes it public on the internet")
    if args.listen or (args.server_name and args.server_name not in ("127.0.0.1", "localhost", "::1")):
        reachable.append("--listen/--server-name opens it to your network")
    if not reachable:
        return None
    missing = []
    if not args.nowebui and not has_ui_auth:
        missing.append("the UI has no password (--gradio-auth)")
    if (args.api or args.nowebui) and not has_api_auth:
        missing.append("the API has no password (--api-auth)")
    if not missing:
        return None
    return (
        "!!! WARNING: "
        + "; ".join(reachable)
        + ", and "
        + " and ".join(missing)
        + ". Anyone who can reach it can generate images and read your outputs. !!!"
    )


def gradio_file_paths(allowed: Iterable[Path], blocked: Iterable[Path]) -> tuple[list[str], list[str]]:
    """gradio's allowed_paths / blocked_paths as absolute strings: the output folders may be served;
    models, settings and styles never, even when an output folder is set to contain them."""
    return [str(Path(p).resolve()) for p in allowed], [str(Path(p).resolve()) for p in blocked]


def open_share_link(host: str, port: int) -> str | None:
    """A public gradio share link to the server on `host`:`port`, or None when none can be made (offline,
    say): the reason is logged and the local server is left as it is."""
    import httpx
    from gradio import networking
    from gradio.exceptions import ChecksumMismatchError

    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        url = networking.setup_tunnel(local, port, secrets.token_urlsafe(32), None, None)
    # network, missing or corrupt frpc binary, certificate file, share server's answer
    except (OSError, RuntimeError, ValueError, ChecksumMismatchError, httpx.HTTPError) as error:
        cause = f"{error} ({error.__cause__})" if error.__cause__ else str(error)
        log.error("Could not create share link: %s. The local server keeps running.", cause)
        return None
    return urlparse(url)._replace(scheme="https").geturl()  # gradio's share server answers on https
