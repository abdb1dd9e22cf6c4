from __future__ import annotations

import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import keyring
import pytest
from typer.testing import CliRunner

from rtc_voice.localserver import LocalServer
from tests.netguard import LOG_ENV, NetGuard
from tests.pulse import PrivatePulse, PulseUnavailable
from tests.rtc_client import Client
from tests.support import Lines, MemoryKeyring, ScriptedServer, rtc_voice

START = re.compile(r"listening on (http://\S+/v1)")

_pulse: PrivatePulse | None = None
PULSE_PROBLEM: str | None = None  # why there are no virtual devices, when there are none


def pytest_configure(config: pytest.Config) -> None:
    """One private PulseAudio daemon for the whole run, before anything loads PortAudio; this
    process and every CLI it starts use it (through PULSE_SERVER), whatever else runs here."""
    global _pulse, PULSE_PROBLEM
    site = str(Path(__file__).parent / "netguard_site")  # Python children get the net guard
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (site, os.environ.get("PYTHONPATH", "")) if p
    )
    try:
        _pulse = PrivatePulse.start()
    except PulseUnavailable as exc:
        PULSE_PROBLEM = str(exc)
        return
    os.environ.update(_pulse.env)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _pulse is not None:
        _pulse.stop()


@pytest.fixture(scope="session")
def pulse() -> PrivatePulse:
    """The run's private PulseAudio daemon; fails in CI and skips elsewhere when there is none."""
    if _pulse is None:
        message = f"virtual audio devices are missing: {PULSE_PROBLEM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return _pulse


@pytest.fixture(autouse=True)
def network_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    """Fails the test if it, or a Python process it started, tried to leave 127.0.0.0/8."""
    log = tmp_path / "netguard.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    guard = NetGuard()
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()
    refused = guard.violations + (log.read_text().splitlines() if log.exists() else [])
    if refused:
        pytest.fail(f"the test tried to leave 127.0.0.0/8: {refused}", pytrace=False)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user settings, keys or config leak into a test; the config dir is a temp dir."""
    for name in list(os.environ):
        if name.startswith(("RTC_VOICE_", "OPENAI_")):
            monkeypatch.delenv(name)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    return xdg / "rtc-voice" / "config.toml"


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
async def local_server() -> AsyncIterator[LocalServer]:
    async with LocalServer(max_call_seconds=120) as server:
        yield server


@pytest.fixture
async def client(local_server: LocalServer) -> AsyncIterator[Client]:
    session = {
        "type": "realtime",
        "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
    }
    c = await Client.open(local_server.base_url, session)
    yield c
    await c.close()


@pytest.fixture
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.Popen(
        rtc_voice("serve", "--port", "0", *getattr(request, "param", ())),
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    first = Lines(proc.stderr).until(START.search, within=30)
    match = START.search(first[-1])
    assert match, "the server never said where it listens"
    yield proc, match.group(1)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
