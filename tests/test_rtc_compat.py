"""rtc/compat.py canaries: each private aiortc/aioice name still exists, a local call offers only
127.0.0.1, and the loopback policy never leaks to another peer in the same process."""

from __future__ import annotations

import asyncio
import re

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from rtc_voice.api import RealtimeApi
from rtc_voice.audio.tracks import PcmTrack
from rtc_voice.localserver import LocalServer
from rtc_voice.rtc import compat
from rtc_voice.rtc.ice import rtc_configuration
from rtc_voice.rtc.peer import connect

pytestmark = pytest.mark.timeout(60)
CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", re.M)


def host_addresses(sdp: str) -> set[str]:
    return set(CANDIDATE.findall(sdp))


async def offer_addresses(loopback: bool) -> set[str]:
    pc = RTCPeerConnection(rtc_configuration(()))
    pc.addTransceiver("audio")
    try:
        if loopback:
            with compat.loopback_ice():
                await pc.setLocalDescription(await pc.createOffer())
        else:
            await pc.setLocalDescription(await pc.createOffer())
        return host_addresses(pc.localDescription.sdp)
    finally:
        await pc.close()


def machine_addresses() -> set[str]:
    return set(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))


async def test_every_patched_private_name_still_exists() -> None:
    found = await compat.canaries()
    assert found and all(found.values()), found
    assert compat.untested_versions() == []


async def test_a_local_call_offers_only_127_0_0_1_on_both_sides(local_server: LocalServer) -> None:
    async with RealtimeApi(local_server.base_url) as api:
        secret = await api.create_client_secret("sk-local", {"session": {"type": "realtime"}})
        conn = await connect(api, secret.value, PcmTrack(), connect_timeout=10, loopback_only=True)
    try:
        assert host_addresses(conn.pc.localDescription.sdp) == {"127.0.0.1"}
        assert host_addresses(conn.pc.remoteDescription.sdp) == {"127.0.0.1"}
    finally:
        await conn.close()
    assert not compat.loopback_ice_active()  # undone once the call's gathering is over


async def test_the_loopback_policy_does_not_leak_to_a_later_or_concurrent_peer() -> None:
    original = aioice.ice.get_host_addresses
    everywhere = machine_addresses()
    assert await offer_addresses(loopback=True) == {"127.0.0.1"}
    assert aioice.ice.get_host_addresses is original
    later = await offer_addresses(loopback=False)
    assert later == everywhere and "127.0.0.1" not in later

    # while one peer gathers inside the scope, another (outside it) sees every interface
    inside_started, release = asyncio.Event(), asyncio.Event()

    async def scoped() -> set[str]:
        with compat.loopback_ice():
            inside_started.set()
            await release.wait()
            pc = RTCPeerConnection(rtc_configuration(()))
            pc.addTransceiver("audio")
            await pc.setLocalDescription(await pc.createOffer())
            await pc.close()
            return host_addresses(pc.localDescription.sdp)

    task = asyncio.create_task(scoped())
    await inside_started.wait()
    assert compat.loopback_ice_active()
    outside = await offer_addresses(loopback=False)
    release.set()
    assert await task == {"127.0.0.1"}
    assert outside == everywhere
    assert aioice.ice.get_host_addresses is original


async def test_a_missing_private_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aioice.ice, "get_host_addresses")
    with pytest.raises(compat.CompatError, match=r"cannot keep a local call on 127\.0\.0\.1"):
        with compat.loopback_ice():
            pass

    class Receiver:  # what a future aiortc might look like: the buffer moved
        pass

    class Transceiver:
        kind = "audio"
        receiver = Receiver()

    class Peer:
        def getTransceivers(self) -> list[Transceiver]:
            return [Transceiver()]

    with pytest.raises(compat.CompatError, match="keeps its jitter buffer elsewhere"):
        compat.set_audio_jitter_buffer(Peer(), 0)


async def test_stats_are_a_plain_record_of_a_live_call(local_server: LocalServer) -> None:
    from tests.rtc_client import Client

    client = await Client.open(local_server.base_url)
    try:
        client.say("hello")
        await client.wait_for("output_audio_buffer.started")
        await asyncio.sleep(0.5)
        stats = await client.conn.stats()
    finally:
        await client.close()
    assert stats.packets_received > 5 and stats.packets_sent > 5
    assert stats.bytes_received > 0 and stats.bytes_sent > 0
    assert stats.packets_lost == 0  # loopback
    assert stats.jitter_ms is not None and stats.jitter_ms >= 0
