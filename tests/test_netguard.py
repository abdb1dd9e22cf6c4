"""The guard that keeps tests on 127.0.0.0/8 (tests/netguard.py) refuses and reports."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netguard import LOG_ENV, NetGuard

OUTSIDE = "192.0.2.1"  # TEST-NET-1: documentation only, never routed


def take(guard: NetGuard) -> list[str]:
    """The violations so far, cleared so this test itself does not fail on them."""
    seen, guard.violations[:] = list(guard.violations), []
    return seen


def test_connect_outside_loopback_is_refused_and_recorded(network_guard: NetGuard) -> None:
    with socket.socket() as sock, pytest.raises(OSError) as info:
        sock.connect((OUTSIDE, 9))
    assert info.value.errno == errno.ENETUNREACH
    with socket.socket() as sock:
        assert sock.connect_ex((OUTSIDE, 9)) == errno.ENETUNREACH
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(OSError):
        udp.sendto(b"x", (OUTSIDE, 9))
    assert take(network_guard) == [
        f"connect ('{OUTSIDE}', 9)",
        f"connect_ex ('{OUTSIDE}', 9)",
        f"sendto ('{OUTSIDE}', 9)",
    ]


async def test_asyncio_streams_and_datagrams_are_guarded(network_guard: NetGuard) -> None:
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(OUTSIDE, 9), 5)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    transport.sendto(b"stun?", (OUTSIDE, 3478))  # how aioice sends its checks
    transport.close()
    seen = take(network_guard)
    assert f"sendto ('{OUTSIDE}', 3478)" in seen
    assert any(v.startswith("connect") and OUTSIDE in v for v in seen)


async def test_loopback_still_works(network_guard: NetGuard) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for host in ("127.0.0.1", "localhost"):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            writer.close()
    assert network_guard.violations == []


def test_names_are_not_resolved_and_only_dot_invalid_is_allowed(network_guard: NetGuard) -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("no-such-host.invalid", 443)
    assert network_guard.violations == []
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("api.openai.com", 443)
    assert take(network_guard) == ["getaddrinfo 'api.openai.com'"]


def test_a_python_child_is_guarded_and_reports(network_guard: NetGuard) -> None:
    code = (
        "import socket\n"
        f"try:\n socket.create_connection(('{OUTSIDE}', 9), 5)\n"
        "except OSError as e:\n print(e.errno)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == str(errno.ENETUNREACH), done.stderr
    log = Path(os.environ[LOG_ENV])
    assert f"connect ('{OUTSIDE}', 9)" in log.read_text()
    log.unlink()  # seen; this test leaves no violation behind
