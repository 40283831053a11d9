"""A fake OpenAI-compatible chat server on loopback, so the real client code runs in tests.

`FakeLLMServer` speaks `POST /v1/chat/completions` (the OpenAI response shape) from a thread of
`ThreadingHTTPServer` on 127.0.0.1, port 0. Each request takes the next scripted behaviour, or
`default` when the script is empty:

    Reply(content)              200 with choices[0].message.content = content
    Delay(seconds, content)     answers only after `seconds` (longer than the client's timeout)
    Status(code, retry_after, message)  an OpenAI-shaped error body with that status
    Respond(fn)                 200 with the content fn(request body) returns (a scripted model
                                that reads the prompt, e.g. to keep the neighbours it names)

It records every request (`received`: path, headers, parsed JSON body) so tests can check the
prompt, model, temperature and the Authorization header. It serves loopback clients only and
stops, with any delayed handler, when `stop()` is called (the fixture does at teardown).

Test modules import the behaviours and name it in `pytest_plugins` for the fixture; it holds no
asserts, hence PYTEST_DONT_REWRITE (no "already imported" warning).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Reply:
    content: str


@dataclass(frozen=True)
class Delay:
    seconds: float
    content: str = '{"kept": [], "text": "late"}'


@dataclass(frozen=True)
class Status:
    code: int
    retry_after: str | None = None
    message: str | None = None      # the error body's message (default "scripted CODE")


@dataclass(frozen=True)
class Respond:
    fn: Callable[[dict[str, Any]], str]


Behaviour = Reply | Delay | Status | Respond


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]       # names in lower case
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []))


class FakeLLMServer:
    def __init__(self, default: Behaviour = Status(500)):
        self.default: Behaviour = default
        self.received: list[Received] = []
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True,
                                        name="fake-llm-server")

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()            # wakes delayed handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:   # quiet
                pass

            def do_POST(self) -> None:
                if self.client_address[0] != "127.0.0.1":
                    self._send(403, {"error": {"message": "loopback only"}})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                with server._lock:
                    server.received.append(Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                b = server._next()
                if isinstance(b, Status):
                    extra = {"Retry-After": b.retry_after} if b.retry_after is not None else {}
                    self._send(b.code, {"error": {"message": b.message or f"scripted {b.code}",
                                                  "type": "server_error", "code": b.code}},
                               extra)
                    return
                if isinstance(b, Delay) and server._stopping.wait(b.seconds):
                    return
                content = b.fn(body) if isinstance(b, Respond) else b.content
                self._send(200, completion(content, body.get("model", "")))

            def _send(self, code: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):   # the client gave up
                    pass

        return Handler


def completion(content: str, model: str) -> dict[str, Any]:
    """An OpenAI chat.completion object with one choice."""
    return {"id": f"chatcmpl-fake-{time.monotonic_ns()}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()
