"""`rtc-voice token` against a real HTTP server on 127.0.0.1: request shape and every error path."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from rtc_voice.api import tls_verification
from rtc_voice.app import app
from rtc_voice.config import load_settings
from rtc_voice.errors import ExitCode
from rtc_voice.protocol.client import client_secret_request
from tests.support import (
    FAKE_KEY,
    Reply,
    ScriptedServer,
    openai_error,
    validate_client_secret_request,
)


def secret(value: str = "ek_abc123", ttl: int = 600) -> dict[str, object]:
    return {
        "value": value,
        "expires_at": int(time.time()) + ttl,
        "session": {"type": "realtime", "object": "realtime.session", "model": "gpt-realtime"},
    }


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


def mint(runner: CliRunner, server: ScriptedServer, *args: str) -> object:
    return runner.invoke(app, ["token", "--base-url", server.base_url, *args])


def test_prints_only_the_key_and_sends_a_valid_ga_body(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    http_server.script(Reply(200, secret("ek_live_1", 120)))
    result = mint(runner, http_server, "--ttl", "120", "--voice", "cedar", "--instructions", "Hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ek_live_1\n"
    assert "expires at" in result.stderr and "(in 1" in result.stderr

    (request,) = http_server.requests
    assert (request.method, request.path) == ("POST", "/v1/realtime/client_secrets")
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert "openai-beta" not in request.headers
    body = request.json()
    validate_client_secret_request(body)
    assert body["expires_after"] == {"anchor": "created_at", "seconds": 120}
    session = body["session"]
    assert session["type"] == "realtime" and session["model"] == "gpt-realtime"
    assert session["audio"]["output"] == {"voice": "cedar"}
    assert session["instructions"] == "Hi"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    for beta in ("voice", "modalities", "temperature", "input_audio_format"):
        assert beta not in session


@pytest.mark.parametrize(
    ("env", "check"),
    [
        (
            {"RTC_VOICE_TURN_DETECTION_TYPE": "none"},
            lambda s: s["audio"]["input"]["turn_detection"] is None,
        ),
        (
            {
                "RTC_VOICE_TURN_DETECTION_TYPE": "semantic_vad",
                "RTC_VOICE_TURN_DETECTION_EAGERNESS": "high",
            },
            lambda s: (
                s["audio"]["input"]["turn_detection"]
                == {"type": "semantic_vad", "eagerness": "high"}
            ),
        ),
        (
            {"RTC_VOICE_TRANSCRIPTION_MODEL": "off"},
            lambda s: "transcription" not in s["audio"]["input"],
        ),
        (
            {"RTC_VOICE_TRANSCRIPTION_LANGUAGE": "de"},
            lambda s: s["audio"]["input"]["transcription"]["language"] == "de",
        ),
        (
            {"RTC_VOICE_AUDIO_NOISE_REDUCTION": "off"},
            lambda s: "noise_reduction" not in s["audio"]["input"],
        ),
        ({"RTC_VOICE_OUTPUT_MODALITIES": "text"}, lambda s: s["output_modalities"] == ["text"]),
        ({}, lambda s: "instructions" not in s),
    ],
)
def test_every_setting_variant_builds_a_valid_body(env: dict[str, str], check: object) -> None:
    body = client_secret_request(load_settings(env=env))
    validate_client_secret_request(body)
    assert callable(check) and check(body["session"])


def test_json_prints_the_whole_response(runner: CliRunner, http_server: ScriptedServer) -> None:
    http_server.script(Reply(200, secret("ek_json")))
    result = mint(runner, http_server, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["value"] == "ek_json"
    assert json.loads(result.stdout)["session"]["model"] == "gpt-realtime"


def test_401_shows_openai_message_and_suggests_login(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    http_server.script(
        Reply(401, openai_error("Incorrect API key provided: sk-…nary.", "invalid_api_key"))
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.AUTH
    assert "Incorrect API key provided" in result.stderr and "auth login" in result.stderr
    assert result.stdout == ""


def test_400_shows_message_and_param(runner: CliRunner, http_server: ScriptedServer) -> None:
    http_server.script(
        Reply(
            400,
            openai_error("Unknown parameter: 'session.foo'.", "unknown_parameter", "session.foo"),
        )
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.BAD_REQUEST == 5
    assert "Unknown parameter: 'session.foo'." in result.stderr
    assert "session.foo" in result.stderr.split("Hint:")[1]
    assert len(http_server.requests) == 1


def test_429_is_retried_honouring_retry_after_then_succeeds(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    limited = Reply(
        429, openai_error("Rate limit reached.", "rate_limit_exceeded"), {"retry-after": "0"}
    )
    http_server.script(limited, limited, Reply(200, secret("ek_after_wait")))
    result = mint(runner, http_server)
    assert result.exit_code == 0, result.output
    assert result.stdout == "ek_after_wait\n"
    assert len(http_server.requests) == 3


def test_429_that_persists_gives_up_after_bounded_retries(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    http_server.script(
        Reply(
            429,
            openai_error("Rate limit reached for requests.", "rate_limit_exceeded"),
            {"retry-after": "0"},
        )
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.RATE_LIMITED == 6
    assert "after 4 attempts" in result.stderr and "Rate limit reached" in result.stderr
    assert len(http_server.requests) == 4


def test_429_insufficient_quota_is_permanent_and_not_retried(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    http_server.script(
        Reply(
            429,
            openai_error(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                type_="insufficient_quota",
            ),
            {"retry-after": "0"},
        )
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.RATE_LIMITED
    assert len(http_server.requests) == 1
    assert "no quota left: You exceeded your current quota" in result.stderr
    assert "billing" in result.stderr and "attempts" not in result.stderr


def test_5xx_is_retried_then_reported(runner: CliRunner, http_server: ScriptedServer) -> None:
    http_server.script(
        Reply(503, "upstream down", {"retry-after": "0", "Content-Type": "text/plain"})
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.SERVER == 7
    assert "HTTP 503" in result.stderr and "127.0.0.1" in result.stderr
    assert len(http_server.requests) == 4


def test_5xx_then_success(runner: CliRunner, http_server: ScriptedServer) -> None:
    http_server.script(
        Reply(500, openai_error("boom", None, type_="server_error"), {"retry-after": "0"}),
        Reply(200, secret("ek_second")),
    )
    result = mint(runner, http_server)
    assert (result.exit_code, result.stdout) == (0, "ek_second\n")


def test_connection_refused_names_the_host(runner: CliRunner) -> None:
    with ScriptedServer() as server:
        dead = server.base_url  # the port is closed once the server is gone
    result = runner.invoke(app, ["token", "--base-url", dead])
    assert result.exit_code == ExitCode.NETWORK == 8
    assert f"Cannot reach 127.0.0.1:{dead.split(':')[2].split('/')[0]}" in result.stderr


def test_unknown_host_names_the_host(runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "--base-url", "http://no-such-host.invalid/v1"])
    assert result.exit_code == ExitCode.NETWORK
    assert "no-such-host.invalid" in result.stderr


def test_timeout_names_the_host(
    runner: CliRunner, http_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTC_VOICE_NETWORK_CONNECT_TIMEOUT", "0.3")
    http_server.script(Reply(200, secret(), delay=1.5))
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.NETWORK
    assert "Timed out talking to 127.0.0.1" in result.stderr
    assert "no answer to the key request (POST /realtime/client_secrets)" in result.stderr


@pytest.mark.parametrize("ending", ["!", "?", "."])
def test_openai_messages_keep_their_own_final_punctuation(
    runner: CliRunner, http_server: ScriptedServer, ending: str
) -> None:
    http_server.script(Reply(400, openai_error(f"Sorry about that{ending}", None)))
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.BAD_REQUEST
    assert f"Error: Sorry about that{ending}\n" in result.stderr


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "<html>captive portal</html>", {"Content-Type": "text/html"}),
        Reply(200, {"client_secret": {"value": "ek_beta"}}),
    ],
)
def test_unexpected_body_is_a_protocol_error(
    runner: CliRunner, http_server: ScriptedServer, reply: Reply
) -> None:
    http_server.script(reply)
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.PROTOCOL == 9
    assert "not a client secret" in result.stderr


def test_beta_shape_error_is_explained(runner: CliRunner, http_server: ScriptedServer) -> None:
    http_server.script(
        Reply(
            400,
            openai_error(
                "The Realtime Beta API is no longer supported.", "beta_api_shape_disabled"
            ),
        )
    )
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.BAD_REQUEST
    assert "GA Realtime API" in result.stderr


def test_no_key_is_an_auth_error_before_any_request(
    runner: CliRunner, http_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    result = mint(runner, http_server)
    assert result.exit_code == ExitCode.AUTH
    assert http_server.requests == []


def test_a_base_url_without_v1_gets_a_hint_that_leads_somewhere(
    runner: CliRunner, http_server: ScriptedServer
) -> None:
    http_server.script(
        Reply(404, openai_error("Invalid URL (POST /realtime/client_secrets)", None))
    )
    bare = http_server.base_url.removesuffix("/v1")
    result = runner.invoke(app, ["token", "--base-url", bare])
    assert result.exit_code == ExitCode.BAD_REQUEST
    assert "Invalid URL (POST /realtime/client_secrets)" in result.stderr
    assert f"Hint: The base URL usually ends in /v1; it is {bare}" in result.stderr


# TLS: the client for a plain-http base URL (the local server) loads no CA bundle (~40 ms of
# CPU on the way to a call), and can still never make an unverified TLS connection.


def self_signed_tls_server_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and the cert file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


async def test_a_plain_http_client_trusts_no_certificate_and_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for proxy in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
        monkeypatch.delenv(proxy.upper(), raising=False)
    server_context, cert_file = self_signed_tls_server_context(tmp_path)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        context = tls_verification("http://127.0.0.1:8000/v1")
        assert isinstance(context, ssl.SSLContext)
        assert context.cert_store_stats()["x509_ca"] == 0  # no CA bundle loaded
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient(verify=context) as client:
                await client.get(url)
        # the same server, with its certificate trusted: it answers (the failure was the check)
        trusting = ssl.create_default_context(cafile=cert_file)
        async with httpx.AsyncClient(verify=trusting) as client:
            assert (await client.get(url)).text == "ok"
    finally:
        server.close()
        await server.wait_closed()


def test_https_and_proxied_clients_keep_httpx_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    for proxy in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
        monkeypatch.delenv(proxy.upper(), raising=False)
    assert tls_verification("https://api.openai.com/v1") is True
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example:3128")  # TLS to the proxy itself
    assert tls_verification("http://127.0.0.1:8000/v1") is True
