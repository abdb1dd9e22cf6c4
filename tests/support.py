"""Test helpers: in-memory keyring, threaded HTTP server on 127.0.0.1, the schema oracle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from pydantic import BaseModel, TypeAdapter

FAKE_KEY = "sk-test-" + "Q7" * 12 + "leakcanary"  # shaped like a key; hunted for in every output


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


# --- a scripted HTTP server -------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    """Answers each request with the next scripted Reply (the last one repeats); records them."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Recorded] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                server.requests.append(
                    Recorded(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                reply = server.replies[min(len(server.requests), len(server.replies)) - 1]
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                headers = dict(reply.headers)
                if isinstance(payload, dict):
                    payload = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(payload, str):
                    payload = payload.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def script(self, *replies: Reply) -> ScriptedServer:
        self.replies = list(replies)
        return self

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def openai_error(
    message: str, code: str | None, param: str | None = None, type_: str = "invalid_request_error"
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --- the schema oracle: openai's published pydantic types ---------------------------------------


def unknown_keys(obj: Any, path: str = "") -> Iterator[str]:
    """Paths of keys a validated openai model kept as extras (i.e. did not know)."""
    if isinstance(obj, BaseModel):
        for name in obj.model_extra or {}:
            yield f"{path}.{name}".lstrip(".")
        for name in type(obj).model_fields:
            yield from unknown_keys(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield from unknown_keys(item, f"{path}[{index}]")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from unknown_keys(value, f"{path}.{key}")


def validate_strict(tp: Any, data: Any, allowed: tuple[str, ...] = ()) -> Any:
    """Validate `data` against an openai type; fail on any key the type does not know, but
    those in `allowed` (paths such as "session.id")."""
    value = TypeAdapter(tp).validate_python(data)
    unknown = [path for path in unknown_keys(value) if path not in allowed]
    assert not unknown, f"keys unknown to {getattr(tp, '__name__', tp)}: {unknown}"
    return value


def validate_client_secret_request(body: dict[str, Any]) -> None:
    from openai.types.realtime import RealtimeSessionCreateRequest
    from openai.types.realtime.client_secret_create_params import ExpiresAfter

    assert set(body) <= {"expires_after", "session"}, body.keys()
    if "expires_after" in body:
        assert set(body["expires_after"]) <= set(ExpiresAfter.__annotations__)
        TypeAdapter(ExpiresAfter).validate_python(body["expires_after"])
        assert 10 <= body["expires_after"]["seconds"] <= 7200
    validate_strict(RealtimeSessionCreateRequest, body["session"])


class Lines:
    """A child's output stream read line by line with a deadline. Each line is read by a short
    thread, so a child that stops writing (but keeps the pipe open) cannot hang the test, and
    once `until` returns nothing else reads the stream (`communicate()` still works)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _read_into(self, box: Any) -> None:
        box.put(self._stream.readline())

    def until(self, predicate: Any, within: float) -> list[str]:
        """Lines up to and including the first one `predicate` accepts; AssertionError with what
        was seen when the stream ends or `within` seconds pass first."""
        import queue

        seen: list[str] = []
        deadline = time.monotonic() + within
        while True:
            box: queue.Queue[str] = queue.Queue()
            threading.Thread(target=self._read_into, args=(box,), daemon=True).start()
            try:
                line = box.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise AssertionError(f"no matching line within {within:g} s: {seen}") from None
            if not line:
                raise AssertionError(f"the stream ended without a matching line: {seen}")
            seen.append(line)
            if predicate(line):
                return seen


def rtc_voice(*args: str) -> list[str]:
    """The CLI as a user runs it, in a subprocess."""
    import sys

    return [sys.executable, "-m", "rtc_voice", *args]
