"""Who may call the server: HTTP Basic on the API (--api-auth), CORS (--cors-allow-origins[-regex]) and
which files gradio may serve."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/sdapi/"
log = logging.getLogger(__name__)


def _matches(header: str, credentials: Sequence[tuple[str, str]]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Compare every pair in full and in constant time, so timing tells nothing about near misses.
    found = False
    for known_user, known_password in credentials:
        same_user = secrets.compare_digest(user.encode(), known_user.encode())
        same_password = secrets.compare_digest(password.encode(), known_password.encode())
        found |= bool(sep) and same_user and same_password
    return found


class ApiBasicAuth:
    """ASGI middleware: every request under /sdapi/ needs one of `credentials` as HTTP Basic, else 401
    with a WWW-Authenticate challenge (what A1111's --api-auth does on each API route)."""

    def __init__(self, app: ASGIApp, credentials: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self.credentials = tuple(credentials)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            headers = dict(scope["headers"])
            header = headers.get(b"authorization", b"").decode("latin-1")
            if not _matches(header, self.credentials):
                await _unauthorized(send)
                return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send) -> None:
    body = json.dumps({"detail": "Incorrect username or password"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="sdapi"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def add_access_control(
    web: FastAPI, args: argparse.Namespace, api_credentials: Sequence[tuple[str, str]]
) -> None:
    """API auth, then CORS around it (so a browser's preflight gets its CORS answer without credentials)."""
    if api_credentials:
        web.add_middleware(ApiBasicAuth, credentials=api_credentials)
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
