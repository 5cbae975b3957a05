"""The little HTTP the console needs over plain ASGI: a request's cookies and form, and
responses with the headers every console page carries."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A key policy is at most 32 KiB; a form with one, URL-encoded, fits in this.
MAX_FORM_BYTES = 256 * 1024

# No script at all, nothing from elsewhere, no framing, forms only to this origin.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class FormTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


@dataclass
class Request:
    scope: Scope
    form: dict[str, list[str]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def secure(self) -> bool:
        return self.scope.get("scheme") == "https"

    @property
    def source_address(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def cross_origin(self) -> bool:
        """Whether a browser says this request comes from a page of another origin (its
        Origin header names one that is not this server's). No Origin (not a browser, or an
        old one) is not cross-origin: the CSRF token still decides."""
        origin = self.header(b"origin")
        if origin is None:
            return False
        scheme = "https" if self.secure else "http"
        return origin != f"{scheme}://{self.header(b'host') or ''}"

    def header(self, name: bytes) -> str | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value).decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        values = urllib.parse.parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        found = values.get(name)
        return found[0] if found else None

    def cookie(self, name: str) -> str | None:
        raw = self.header(b"cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    def field(self, name: str) -> str:
        values = self.form.get(name)
        return values[0] if values else ""

    def fields(self, name: str) -> list[str]:
        return self.form.get(name, [])


async def read_form(request: Request, receive: Receive) -> None:
    """Read a POST's URL-encoded body into ``request.form`` (at most ``MAX_FORM_BYTES``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks).decode("utf-8", "replace")
    request.form = urllib.parse.parse_qs(body, keep_blank_values=True)


def session_cookie(name: str, value: str, max_age: int, secure: bool) -> bytes:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Secure where TLS is on, and scoped to the console's path."""
    parts = [f"{name}={value}", "Path=/console", f"Max-Age={max_age}", "HttpOnly"]
    parts.append("SameSite=Strict")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/html; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += _SECURITY_HEADERS
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def redirect(
    send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    # 303: the browser follows with a GET, so a reload never submits a form again.
    headers = [(b"location", location.encode("latin-1"))] + (extra or [])
    await respond(send, 303, b"", extra=headers)
