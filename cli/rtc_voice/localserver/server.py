"""The local server's HTTP side (aiohttp): client secrets, calls, hang-up, OpenAI-shaped errors.

aiohttp because aiortc's own examples use it and both share one asyncio loop with no extra
framework. CORS is open so a browser page written from OpenAI's WebRTC guide works against it
by changing only the base URL.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from rtc_voice.localserver.call import LocalCall, shutdown_all
from rtc_voice.localserver.netem import Impairment
from rtc_voice.localserver.sessions import (
    JSON,
    ParamError,
    default_session,
    merge_session,
    new_id,
    validate_client_secret_body,
)
from rtc_voice.rtc.ice import is_loopback_host

MAX_BODY = 256 * 1024
DEFAULT_PORT = 8765
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Expose-Headers": "Location",
}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type_: str = "invalid_request_error",
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=CORS)


@dataclass
class IssuedKey:
    expires_at: int
    session: JSON


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and header[7:].strip():
        return header[7:].strip()
    return None


_STANDARD_KEY = re.compile(r"^sk-[A-Za-z0-9_\-]+$")


def _shown(key: str) -> str:
    """A rejected key masked as OpenAI masks it (`sk-abc***…***wxyz`, as long as the key):
    its kind and last four characters, enough to recognise, not to use. A short key keeps
    only its kind."""
    prefix = key[:3] if key.startswith(("sk-", "ek_")) else ""
    tail = key[-4:] if len(key) >= 12 else ""
    return prefix + "*" * (len(key) - len(prefix) - len(tail)) + tail


def _incorrect_key(key: str) -> web.Response:
    """OpenAI's answer to a key it does not know, word for word but for the masked key."""
    return error_response(
        401,
        f"Incorrect API key provided: {_shown(key)}. "
        "You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _standard_key_refusal(
    request: web.Request, refusal: str, required: str | None = None
) -> web.Response | None:
    """The error to answer with unless the request carries a standard key: shaped like one
    (sk-…), and the very key the server was started with when it was given one."""
    key = _bearer(request)
    if key is None:
        return _no_key()
    if key.startswith("ek_"):
        return error_response(401, refusal, code="invalid_api_key")
    if not _STANDARD_KEY.match(key) or (
        required is not None and not secrets.compare_digest(key, required)
    ):
        return _incorrect_key(key)
    return None


def _no_key() -> web.Response:
    return error_response(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


class LocalServer:
    """Start with `await server.start()`; `base_url` then ends in /v1. `await server.stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_call_seconds: float = 3600.0,
        log: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.time,
        api_key: str | None = None,
        network: Impairment | None = None,
        drop_after: float | None = None,
        drops: int = 1,
    ) -> None:
        """`api_key`: the one standard key to accept; None accepts any key shaped sk-….
        `network` impairs every call's outgoing RTP; `drop_after` cuts the first `drops`
        calls silently that many seconds after they are answered (a lost network)."""
        self.host = host
        self.api_key = api_key
        self.port = port
        self.max_call_seconds = max_call_seconds
        self.log = log
        self.clock = clock
        self.keys: dict[str, IssuedKey] = {}
        self.calls: dict[str, LocalCall] = {}
        self.network = network
        self.drop_after = drop_after
        self.drops_left = drops if drop_after is not None else 0
        self.started_calls: deque[LocalCall] = deque(maxlen=100)  # newest, for tests
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.router.add_post("/v1/realtime/client_secrets", self.client_secrets)
        app.router.add_post("/v1/realtime/calls", self.create_call)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self.hangup)
        for legacy in (
            "/v1/realtime",
            "/v1/realtime/sessions",
            "/v1/realtime/transcription_sessions",
        ):
            app.router.add_post(legacy, self.beta)
        app.router.add_get("/", self.index)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await shutdown_all(list(self.calls.values()))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- middleware: every failure is OpenAI-shaped JSON

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS":  # CORS preflight from a browser page
            return web.Response(status=204, headers=CORS)
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, f"Request body too large: the limit is {MAX_BODY} bytes.")
        except web.HTTPMethodNotAllowed:
            return error_response(
                405,
                f"Method {request.method} is not allowed for {request.path}.",
                code="method_not_allowed",
            )
        except web.HTTPNotFound:
            return error_response(
                404, f"Invalid URL ({request.method} {request.path})", code="unknown_url"
            )

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(
            text="rtc-voice local server: an offline stand-in for the OpenAI Realtime API "
            f"(GA). Base URL: {self.base_url}\n",
            headers=CORS,
        )

    async def beta(self, request: web.Request) -> web.Response:
        return error_response(
            400,
            "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
            code="beta_api_shape_disabled",
        )

    # --- POST /v1/realtime/client_secrets

    async def client_secrets(self, request: web.Request) -> web.Response:
        refusal = _standard_key_refusal(
            request,
            "Ephemeral keys cannot mint client secrets; use a standard API key.",
            self.api_key,
        )
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(
                400, "We could not parse the JSON body of your request.", code="invalid_json"
            )
        try:
            ttl, session = validate_client_secret_body(body)
        except ParamError as error:
            return error_response(400, error.message, code=error.code, param=error.param)
        expires_at = int(self.clock()) + ttl
        effective = merge_session(default_session(expires_at), session)
        value = "ek_" + secrets.token_hex(16)
        self.keys[value] = IssuedKey(expires_at, effective)
        self.log(f"minted ek_…{value[-4:]} for {effective['model']} ({ttl} s)")
        return web.json_response(
            {"value": value, "expires_at": expires_at, "session": effective}, headers=CORS
        )

    # --- POST /v1/realtime/calls

    async def create_call(self, request: web.Request) -> web.Response:
        key = _bearer(request)
        if key is None:
            return _no_key()
        content_type = request.content_type
        if not key.startswith("ek_"):
            return error_response(
                400,
                "A raw SDP offer needs an ephemeral key (ek_…) from /v1/realtime/client_secrets;"
                " with a standard API key, send multipart/form-data with 'sdp' and 'session'.",
                code="invalid_request_error",
            )
        issued = self.keys.get(key)
        if issued is None:
            return _incorrect_key(key)
        if issued.expires_at <= self.clock():
            return error_response(
                401, "The ephemeral key has expired; mint a new one.", code="invalid_api_key"
            )
        if content_type != "application/sdp":
            return error_response(
                400,
                f"Unsupported Content-Type '{content_type}'; send the offer as application/sdp.",
                code="invalid_request_error",
            )
        offer = (await request.read()).decode("utf-8", "replace")
        if not offer.startswith("v=0") or "m=audio" not in offer:
            return self._invalid_offer()
        call_id = new_id("rtc")
        # the session ends at the cap: session.created says when (clients roll over before it)
        ends = int(self.clock() + self.max_call_seconds)
        session = dict(issued.session, id=new_id("sess"), expires_at=ends)
        drop_after = None
        if self.drops_left > 0:
            self.drops_left -= 1
            drop_after = self.drop_after
        call = LocalCall(
            call_id,
            session,
            max_duration=self.max_call_seconds,
            log=self.log,
            on_end=self._forget,
            loopback_only=is_loopback_host(self.host),
            network=self.network,
            drop_after=drop_after,
        )
        try:
            answer = await call.answer(offer)
        except Exception as exc:  # aiortc raises ValueError and others on malformed offers
            await call.close(f"invalid offer ({type(exc).__name__})")
            return self._invalid_offer()
        self.calls[call_id] = call
        self.started_calls.append(call)
        self.log(
            f"{call_id} started: {session['model']}, voice {session['audio']['output']['voice']}"
        )
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={**CORS, "Location": f"/v1/realtime/calls/{call_id}"},
        )

    def _forget(self, call: LocalCall) -> None:
        self.calls.pop(call.call_id, None)

    def _invalid_offer(self) -> web.Response:
        return error_response(
            400,
            "Invalid SDP offer. Please try again with a WHIP-compliant offer.",
            code="invalid_offer",
        )

    # --- POST /v1/realtime/calls/{id}/hangup

    async def hangup(self, request: web.Request) -> web.Response:
        refusal = _standard_key_refusal(
            request, "Hanging up needs a standard API key.", self.api_key
        )
        if refusal is not None:
            return refusal
        call = self.calls.get(request.match_info["call_id"])
        if call is None:
            return error_response(
                404, f"Call {request.match_info['call_id']} not found.", code="call_not_found"
            )
        await call.close("hung up")
        return web.Response(status=200, headers=CORS)
