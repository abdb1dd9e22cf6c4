"""The local server's HTTP side, over real HTTP on 127.0.0.1: shapes, auth and every error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from openai.types.realtime import ClientSecretCreateResponse
from openai.types.shared import ErrorObject

from rtc_voice.api import RealtimeApi
from rtc_voice.audio.tracks import PcmTrack
from rtc_voice.errors import AuthenticationError, BadRequestError
from rtc_voice.localserver import LocalServer
from rtc_voice.rtc.compat import loopback_ice
from rtc_voice.rtc.ice import rtc_configuration
from tests.rtc_client import SESSION_EXTRAS
from tests.support import validate_strict

STANDARD = {"Authorization": "Bearer sk-local-test"}


async def post(
    server: LocalServer, path: str, *, key: str | None = "sk-local-test", **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(
            server.base_url.removesuffix("/v1") + path, headers=headers, **kwargs
        )


async def offer_sdp() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(rtc_configuration(()))
    pc.addTransceiver(PcmTrack(), direction="sendrecv")
    pc.createDataChannel("oai-events")
    with loopback_ice():
        await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def post_offer(server: LocalServer, sdp: str | bytes, key: str | None) -> httpx.Response:
    """POST /v1/realtime/calls with a raw SDP body, as a browser page would."""
    return await post(
        server,
        "/v1/realtime/calls",
        key=key,
        content=sdp,
        headers={"Content-Type": "application/sdp"},
    )


async def mint(server: LocalServer, **session: Any) -> str:
    response = await post(
        server, "/v1/realtime/client_secrets", json={"session": {"type": "realtime", **session}}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


def assert_error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param


async def test_client_secret_response_matches_openai_type(local_server: LocalServer) -> None:
    response = await post(
        local_server,
        "/v1/realtime/client_secrets",
        json={
            "expires_after": {"anchor": "created_at", "seconds": 60},
            "session": {
                "type": "realtime",
                "model": "gpt-realtime-2",
                "audio": {"output": {"voice": "cedar"}, "input": {"turn_detection": None}},
            },
        },
    )
    assert response.status_code == 200
    body = response.json()
    validate_strict(ClientSecretCreateResponse, body, allowed=SESSION_EXTRAS)
    assert body["value"].startswith("ek_")
    session = body["session"]
    assert session["model"] == "gpt-realtime-2"
    assert session["audio"]["output"]["voice"] == "cedar"
    assert session["audio"]["input"]["turn_detection"] is None
    assert 55 <= body["expires_at"] - int(__import__("time").time()) <= 60


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (
            {"session": {"type": "realtime", "temperature": 0.8}},
            "unknown_parameter",
            "session.temperature",
        ),
        ({"session": {"type": "realtime", "voice": "marin"}}, "unknown_parameter", "session.voice"),
        (
            {"session": {"type": "realtime", "modalities": ["audio"]}},
            "unknown_parameter",
            "session.modalities",
        ),
        (
            {"session": {"type": "realtime", "input_audio_format": "pcm16"}},
            "unknown_parameter",
            "session.input_audio_format",
        ),
        (
            {"session": {"type": "realtime", "audio": {"input": {"vad": {}}}}},
            "unknown_parameter",
            "session.audio.input.vad",
        ),
        ({"voice": "marin"}, "unknown_parameter", "voice"),
        ({"session": {"model": "gpt-realtime"}}, "missing_required_parameter", "session.type"),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 5}},
            "integer_below_min_value",
            "expires_after.seconds",
        ),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 7201}},
            "integer_above_max_value",
            "expires_after.seconds",
        ),
        (
            {"session": {"type": "realtime", "audio": {"output": {"voice": "robot"}}}},
            "invalid_value",
            "session.audio.output.voice",
        ),
    ],
)
async def test_client_secret_rejects_bad_bodies_like_openai(
    local_server: LocalServer, body: dict[str, Any], code: str, param: str
) -> None:
    response = await post(local_server, "/v1/realtime/client_secrets", json=body)
    assert_error(response, 400, code, param)
    assert local_server.keys == {}


async def test_client_secret_auth(local_server: LocalServer) -> None:
    assert_error(
        await post(local_server, "/v1/realtime/client_secrets", key=None, json={}), 401, None
    )
    ek = await mint(local_server)
    assert_error(
        await post(local_server, "/v1/realtime/client_secrets", key=ek, json={}),
        401,
        "invalid_api_key",
    )
    bad_json = await post(
        local_server,
        "/v1/realtime/client_secrets",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert_error(bad_json, 400, "invalid_json")


async def test_call_created_with_sdp_answer_and_location(local_server: LocalServer) -> None:
    ek = await mint(local_server)
    pc, sdp = await offer_sdp()
    response = await post_offer(local_server, sdp, ek)
    await pc.close()
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/sdp")
    assert response.text.startswith("v=0") and "m=audio" in response.text
    assert "m=application" in response.text
    location = response.headers["location"]
    assert location.startswith("/v1/realtime/calls/rtc_")
    assert location.rsplit("/", 1)[1] in local_server.calls
    assert "127.0.0.1" in response.text and "192." not in response.text


async def test_call_errors(local_server: LocalServer) -> None:
    pc, sdp = await offer_sdp()
    await pc.close()
    assert_error(await post_offer(local_server, sdp, None), 401, None)
    assert_error(await post_offer(local_server, sdp, "ek_" + "0" * 32), 401, "invalid_api_key")
    standard = await post_offer(local_server, sdp, "sk-local-test")
    assert_error(standard, 400, "invalid_request_error")
    assert "ephemeral key" in standard.json()["error"]["message"]
    ek = await mint(local_server)
    assert_error(await post_offer(local_server, b"hello", ek), 400, "invalid_offer")
    broken = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\ngarbage\r\n"
    assert_error(await post_offer(local_server, broken, ek), 400, "invalid_offer")
    assert local_server.calls == {}


async def test_expired_ephemeral_key_is_401(local_server: LocalServer) -> None:
    ek = await mint(local_server)
    local_server.keys[ek].expires_at = 0
    pc, sdp = await offer_sdp()
    await pc.close()
    async with RealtimeApi(local_server.base_url) as api:
        with pytest.raises(AuthenticationError, match="expired") as info:
            await api.create_call(ek, sdp)
    assert info.value.status == 401


@pytest.mark.parametrize(
    "path",
    [
        "/v1/realtime?model=gpt-4o-realtime-preview",
        "/v1/realtime/sessions",
        "/v1/realtime/transcription_sessions",
    ],
)
async def test_beta_endpoints_answer_400(local_server: LocalServer, path: str) -> None:
    assert_error(
        await post(local_server, path, json={"model": "gpt-4o-realtime-preview"}),
        400,
        "beta_api_shape_disabled",
    )


async def test_beta_endpoint_error_maps_to_bad_request_in_the_client(
    local_server: LocalServer,
) -> None:
    async with RealtimeApi(local_server.base_url.removesuffix("/realtime")) as api:
        api.base_url = local_server.base_url.removesuffix("/v1") + "/v1/realtime/sessions#"
        with pytest.raises(BadRequestError) as info:
            await api.create_client_secret("sk-x", {})
    assert info.value.code == "beta_api_shape_disabled"


async def test_unknown_path_method_and_oversized_body(local_server: LocalServer) -> None:
    assert_error(await post(local_server, "/v1/nope", json={}), 404, "unknown_url")
    async with httpx.AsyncClient(timeout=10) as http:
        root = local_server.base_url.removesuffix("/v1")
        got = await http.get(root + "/v1/realtime/calls", headers=STANDARD)
        assert_error(got, 405, "method_not_allowed")
        big = await http.post(
            root + "/v1/realtime/client_secrets",
            headers=STANDARD,
            content=b"{" + b" " * 300_000 + b"}",
        )
        assert_error(big, 413, None)
        preflight = await http.options(root + "/v1/realtime/calls")
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "Location" in preflight.headers["access-control-expose-headers"]


async def test_hangup(local_server: LocalServer) -> None:
    ek = await mint(local_server)
    pc, sdp = await offer_sdp()
    created = await post_offer(local_server, sdp, ek)
    path = created.headers["location"] + "/hangup"
    assert_error(await post(local_server, path, key=ek), 401, "invalid_api_key")
    assert (await post(local_server, path)).status_code == 200
    assert local_server.calls == {}
    assert_error(await post(local_server, path), 404, "call_not_found")
    await pc.close()


@pytest.mark.parametrize("bearer", ["this-is-not-a-key", "sk-", "sk-has spaces", "Sk-ABCDEF"])
async def test_a_bearer_not_shaped_like_a_standard_key_cannot_mint(
    local_server: LocalServer, bearer: str
) -> None:
    response = await post(
        local_server,
        "/v1/realtime/client_secrets",
        key=None,
        headers={"Authorization": f"Bearer {bearer}"},
        json={"session": {"type": "realtime"}},
    )
    assert_error(response, 401, "invalid_api_key")
    assert local_server.keys == {}


async def test_a_server_started_with_a_key_accepts_only_that_key() -> None:
    wanted = "sk-the-only-one-0123456789"
    async with LocalServer(api_key=wanted) as server:
        body = {"session": {"type": "realtime"}}
        other = await post(
            server, "/v1/realtime/client_secrets", key="sk-another-key-0123456789", json=body
        )
        assert_error(other, 401, "invalid_api_key")
        assert "0123456789" not in other.text  # the refused key is not echoed whole
        good = await post(server, "/v1/realtime/client_secrets", key=wanted, json=body)
        assert good.status_code == 200, good.text
        hangup = await post(server, "/v1/realtime/calls/rtc_x/hangup", key="sk-another-1234")
        assert_error(hangup, 401, "invalid_api_key")


FIND_YOUR_KEY = "You can find your API key at https://platform.openai.com/account/api-keys."


@pytest.mark.parametrize(
    ("bearer", "shown"),
    [
        ("sk-short", "sk-*****"),
        ("sk-another-key-0123456789", "sk-******************6789"),
        ("not-a-key-at-all", "************-all"),
        ("ek_" + "0" * 28 + "abcd", "ek_" + "*" * 28 + "abcd"),
    ],
)
async def test_a_wrong_key_is_refused_in_openais_words(bearer: str, shown: str) -> None:
    async with LocalServer(api_key="sk-the-only-one-0123456789") as server:
        if bearer.startswith("ek_"):
            response = await post_offer(server, "v=0", bearer)
        else:
            response = await post(server, "/v1/realtime/client_secrets", key=bearer, json={})
    assert_error(response, 401, "invalid_api_key")
    error = validate_strict(ErrorObject, response.json()["error"])
    assert error.message == f"Incorrect API key provided: {shown}. {FIND_YOUR_KEY}"
    assert "…" not in error.message and ".." not in error.message


async def test_expires_after_is_honoured_on_calls() -> None:
    now = [1_800_000_000.0]
    async with LocalServer(clock=lambda: now[0]) as server:
        response = await post(
            server,
            "/v1/realtime/client_secrets",
            json={
                "expires_after": {"anchor": "created_at", "seconds": 10},
                "session": {"type": "realtime"},
            },
        )
        ek = response.json()["value"]
        assert response.json()["expires_at"] == 1_800_000_010
        now[0] += 10
        pc, sdp = await offer_sdp()
        await pc.close()
        assert_error(await post_offer(server, sdp, ek), 401, "invalid_api_key")
