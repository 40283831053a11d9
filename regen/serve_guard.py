"""The ASGI layer in front of every `regen serve` route: bearer-token auth, the request body
limit, and the access log (method, route, status, ms on stderr; never bodies, signals or
tokens). Pure ASGI, so a refused body is never read and the connection is closed after the
refusal (no unread bytes left to parse as a next request)."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("regen.access")
OPEN_PATHS = ("/", "/health", "/docs", "/openapi.json", "/docs/oauth2-redirect")


async def send_error(send: Send, status: int, message: str, *, close: bool = False,
                     headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    head = [(b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()), *headers]
    if close:
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wraps the app: `token` ("" for none) guards every route but the page, /static, /health
    and the OpenAPI pages; bodies over `max_body` bytes answer 413 and close the connection."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int):
        self.app = app
        self.token = token.encode()
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, logged_send)
        finally:
            route = scope.get("route")
            where = getattr(route, "path", None) or scope.get("path", "")[:100]
            access_log.info("%s %s %d %.1f ms", scope.get("method"), where, status[0],
                            (time.perf_counter() - t0) * 1e3)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.token and not (path in OPEN_PATHS or path.startswith("/static/")):
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(auth, b"Bearer " + self.token):
                await send_error(send, 401, "missing or wrong bearer token: send the header "
                                 "'Authorization: Bearer TOKEN' with the api_token this server "
                                 "was started with",
                                 headers=((b"www-authenticate", b"Bearer"),))
                return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():            # the HTTP parser refuses these first
                await send_error(send, 400, "Content-Length is not a non-negative integer",
                                 close=True)
                return
            if int(length) > self.max_body:
                await send_error(send, 413, f"body of {int(length)} bytes; this server takes at "
                                 f"most {self.max_body} (setting max_body_bytes)", close=True)
                return
        seen = [0]
        state = {"started": False, "refused": False}

        async def counted() -> Message:     # chunked bodies declare no length: count them
            message = await receive()
            if message["type"] == "http.request" and not state["refused"]:
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body and not state["started"]:
                    state["refused"] = True
                    await _drain(receive, message, self.max_body)
                    await send_error(send, 413, f"body over {self.max_body} bytes (setting "
                                     "max_body_bytes)", close=True)
                    return {"type": "http.disconnect"}   # the app stops reading here
            return message

        async def tracking_send(message: Message) -> None:
            if state["refused"]:            # the 413 has gone out; the app's answer is dropped
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, counted, tracking_send)


DRAIN_S = 2.0   # a refused chunked body is read on (and dropped) this long at most


async def _drain(receive: Receive, message: Message, budget: int) -> None:
    """Read and drop the rest of a refused body, up to `budget` bytes and DRAIN_S seconds, so
    the 413 is not lost: closing a socket with unread data resets the connection, and the
    client may then never see the answer. A body longer still is cut off with the reset."""
    import anyio

    drained = 0
    with anyio.move_on_after(DRAIN_S):
        while message.get("more_body") and drained < budget:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))


def idle_timeout_protocol() -> type:
    """uvicorn's h11 protocol, also closing a connection that sends no complete request head
    within `timeout_keep_alive` of opening or of its last response (uvicorn alone times out
    only after a first response, so silent or trickling clients held a connection forever)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleTimeoutH11(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_by = self.loop.time() + self.timeout_keep_alive
            self._arm()

        def on_response_complete(self) -> None:
            self._head_by = self.loop.time() + self.timeout_keep_alive
            super().on_response_complete()

        def handle_events(self) -> None:
            super().handle_events()
            self._arm()

        def _arm(self) -> None:
            waiting = self.conn.their_state is h11.IDLE     # no request head yet
            if waiting and self.timeout_keep_alive_task is None \
                    and not self.transport.is_closing():
                left = max(0.0, self._head_by - self.loop.time())
                self.timeout_keep_alive_task = self.loop.call_later(
                    left, self.timeout_keep_alive_handler)

    return IdleTimeoutH11
