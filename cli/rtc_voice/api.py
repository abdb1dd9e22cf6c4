"""The OpenAI Realtime REST calls (mint client secret, post SDP, hang up). Sole httpx user.

Errors are translated here, once, into `rtc_voice.errors` with OpenAI's own message; 429 and 5xx
get a bounded retry with backoff that honours `retry-after`. Keys travel only in the
Authorization header and every translated error is raised `from None`.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rtc_voice import __version__
from rtc_voice.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    NetworkError,
    ProtocolError,
    RateLimitError,
    ServerError,
)

# httpx's __init__ imports its command-line tool, httpx._main (click, rich.syntax, pygments:
# ~15 ms on `talk`'s path), inside `try: ... except ImportError`, its own fallback for installs
# without the `cli` extra. rtc-voice never runs that tool, so while httpx loads the module is
# marked absent (a None entry in sys.modules makes its import raise ImportError: the documented
# import-system rule) and the mark is taken away after, so nothing else ever sees it. Done only
# when httpx is not loaded yet; a test checks httpx still works and pygments stays unloaded.
_skip_cli = "httpx" not in sys.modules and "httpx._main" not in sys.modules
if _skip_cli:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
try:
    import httpx
finally:
    if _skip_cli and sys.modules.get("httpx._main", 0) is None:
        del sys.modules["httpx._main"]


def _load_asyncio_backend() -> None:
    """Import now what httpcore imports on its first request under asyncio (anyio's asyncio
    backend and streams: ~20 ms), so the client is made ready where it is made (`talk` makes
    it on a worker thread beside the PortAudio query) and the key request goes out at once."""
    import anyio._backends._asyncio  # noqa: F401
    import httpcore._backends.anyio  # noqa: F401


def tls_verification(base_url: str) -> ssl.SSLContext | bool:
    """What the client verifies TLS with: httpx's default (certifi's CAs) for an https base URL
    or behind a proxy from the environment. For a plain-http base URL (the local server) a
    context that trusts no certificate at all: this client sends only to `base_url` and follows
    no redirects, so it makes no TLS connection, and if it ever did one it would fail closed,
    never unverified. Loading the CA bundle costs 20-30 ms of CPU (bench_connect's import
    table) on the way to the call."""
    import urllib.request

    proxied = any(k in ("http", "https", "all") for k in urllib.request.getproxies())
    if urlsplit(base_url).scheme != "http" or proxied:
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates; trusts none


Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    session: dict[str, Any]
    raw: dict[str, Any]

    def __repr__(self) -> str:
        return f"ClientSecret(expires_at={self.expires_at}, value='ek_…')"


@dataclass(frozen=True)
class CallAnswer:
    sdp: str
    call_id: str | None
    location: str | None


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) from OpenAI's `{"error": {...}}` body, when it has one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None

    def text(name: str) -> str | None:
        value = error.get(name)
        return str(value) if value is not None else None

    return text("message"), text("code"), text("param")


def _out_of_quota(response: httpx.Response) -> bool:
    """429 `insufficient_quota` is permanent (billing), unlike a rate limit: never retried."""
    return _error_fields(response)[1] == "insufficient_quota"


def _retry_delay(response: httpx.Response, attempt: int) -> float:
    header = response.headers.get("retry-after")
    if header is not None:
        try:
            return min(max(float(header), 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    backoff: float = 0.5 * 2**attempt + random.uniform(0, 0.25)
    return min(backoff, MAX_RETRY_AFTER)


class RealtimeApi:
    """Async client for the REST side of the Realtime API at `base_url` (…/v1)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host_of(self.base_url)
        self.max_retries = max_retries
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"rtc-voice/{__version__}"},
            transport=transport,
            trust_env=True,
            verify=tls_verification(self.base_url),
        )
        if transport is None:
            _load_asyncio_backend()

    async def __aenter__(self) -> RealtimeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(
        self,
        path: str,
        *,
        key: str,
        step: str,
        retry_server_errors: bool,
        unauthorized_hint: str,
        **kwargs: Any,
    ) -> httpx.Response:
        """POST with the key; `step` names the request in network errors ("the key request")."""
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        attempt = 0
        while True:
            try:
                response = await self._client.post(url, headers=headers, **kwargs)
            except httpx.TimeoutException:
                raise NetworkError(
                    f"Timed out talking to {self.host}: no answer to {step}.",
                    hint="Check your connection, or raise network.connect_timeout.",
                ) from None
            except httpx.ConnectError as exc:
                reason = str(exc) or type(exc).__name__
                raise NetworkError(
                    f"Cannot reach {self.host}: {reason}.",
                    hint="Check the host in base_url and your network, or use --local.",
                ) from None
            except httpx.HTTPError as exc:
                raise NetworkError(
                    f"Network error talking to {self.host} ({type(exc).__name__})."
                ) from None
            status = response.status_code
            retryable = (status == 429 and not _out_of_quota(response)) or (
                status >= 500 and retry_server_errors
            )
            if retryable and attempt < self.max_retries:
                await self._sleep(_retry_delay(response, attempt))
                attempt += 1
                continue
            if status < 400:
                return response
            raise self._translate(response, unauthorized_hint, attempt)

    def _translate(
        self, response: httpx.Response, unauthorized_hint: str, retries: int
    ) -> ApiError:
        status = response.status_code
        message, code, param = _error_fields(response)
        text = message or f"{self.host} answered HTTP {status} {response.reason_phrase}"
        text = text.strip()
        if not text.endswith((".", "!", "?")):
            text += "."
        fields: dict[str, Any] = {"status": status, "code": code, "param": param}
        if status == 401:
            return AuthenticationError(text, hint=unauthorized_hint, **fields)
        if status == 429 and code == "insufficient_quota":
            return RateLimitError(
                f"The OpenAI account has no quota left: {text}",
                hint="Add credit or raise the limit at "
                "https://platform.openai.com/settings/organization/billing, then try again.",
                **fields,
            )
        if status == 429:
            tried = f" after {retries + 1} attempts" if retries else ""
            return RateLimitError(
                f"Rate limited by {self.host}{tried}: {text}",
                hint="Wait a little and try again, or check your plan and billing details.",
                **fields,
            )
        if status >= 500:
            tried = f" after {retries + 1} attempts" if retries else ""
            return ServerError(
                f"{self.host} had a server error (HTTP {status}){tried}: {text}",
                hint="This is on the server's side; try again in a minute.",
                **fields,
            )
        hint = f"Check the setting behind '{param}'." if param else None
        if status == 404 and not self.base_url.endswith("/v1"):
            hint = f"The base URL usually ends in /v1; it is {self.base_url} (--base-url)."
        if code == "beta_api_shape_disabled":
            hint = "This server only speaks the GA Realtime API."
        return BadRequestError(text, hint=hint, **fields)

    async def create_client_secret(self, api_key: str, body: dict[str, Any]) -> ClientSecret:
        """POST /realtime/client_secrets with the standard key; returns the minted ek_ key."""
        response = await self._send(
            "/realtime/client_secrets",
            step="the key request (POST /realtime/client_secrets)",
            key=api_key,
            retry_server_errors=True,
            unauthorized_hint="Run `rtc-voice auth login` with a valid key, or check "
            "OPENAI_API_KEY.",
            json=body,
        )
        try:
            data = response.json()
            value, expires_at = data["value"], data["expires_at"]
            session = data.get("session") or {}
            if not isinstance(value, str) or not isinstance(expires_at, int):
                raise TypeError
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            raise ProtocolError(
                f"{self.host} answered the key request with something that is not a client secret.",
                hint="Check that base_url points at an OpenAI-compatible /v1 endpoint.",
            ) from None
        return ClientSecret(value=value, expires_at=expires_at, session=session, raw=data)

    async def create_call(self, ephemeral_key: str, offer_sdp: str) -> CallAnswer:
        """POST /realtime/calls with the raw SDP offer and the ek_ key; returns the answer."""
        response = await self._send(
            "/realtime/calls",
            step="the call request (POST /realtime/calls)",
            key=ephemeral_key,
            retry_server_errors=False,
            unauthorized_hint="The ephemeral key is invalid or expired; mint a new one.",
            content=offer_sdp.encode(),
            headers={"Content-Type": "application/sdp", "Accept": "application/sdp"},
        )
        answer = response.text
        if not answer.startswith("v=0"):
            raise ProtocolError(
                f"{self.host} answered the call request without an SDP answer.",
                hint="Check that base_url points at an OpenAI-compatible /v1 endpoint.",
            )
        location = response.headers.get("location")
        call_id = location.rstrip("/").rsplit("/", 1)[-1] if location else None
        if call_id is not None and not call_id.startswith("rtc_"):
            call_id = None
        return CallAnswer(sdp=answer, call_id=call_id, location=location)

    async def hangup(self, api_key: str, call_id: str) -> None:
        """POST /realtime/calls/{id}/hangup with the standard key."""
        await self._send(
            f"/realtime/calls/{call_id}/hangup",
            step="the hang-up request",
            key=api_key,
            retry_server_errors=False,
            unauthorized_hint="Hang-up needs a valid standard API key.",
        )
