"""10 concurrent calls against the local server (in its own process) on this machine.

Reports offer -> session.created (p50/p95) and whether reply audio stays real time: the worst
lateness of any outgoing 20 ms frame against its schedule (target: none later than 40 ms).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from typing import Any

CALLS = 10


def serve(port_out: Any, stats_out: Any, stop: Any) -> None:
    from rtc_voice.localserver import LocalServer

    async def main() -> None:
        late: dict[str, float] = {}  # call id -> worst lateness, however the call ended
        server = LocalServer(max_call_seconds=600)
        original = server._forget

        def forget(call: Any) -> None:
            late[call.call_id] = call.stats.max_late_ms
            original(call)

        server._forget = forget  # type: ignore[method-assign]
        await server.start()
        port_out.send(server.base_url)
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        for call in list(server.calls.values()):
            late[call.call_id] = call.track.max_late_ms
        await server.stop()
        stats_out.send(list(late.values()))

    asyncio.run(main())


async def one_call(
    base_url: str, index: int, barrier: asyncio.Barrier | None
) -> tuple[float, float]:
    from rtc_voice.api import RealtimeApi
    from rtc_voice.audio.tracks import PcmTrack
    from rtc_voice.protocol import client as events
    from rtc_voice.rtc.peer import connect

    async with RealtimeApi(base_url) as api:
        secret = await api.create_client_secret("sk-bench", {"session": {"type": "realtime"}})
        conn = await connect(api, secret.value, PcmTrack(), connect_timeout=30, loopback_only=True)
    assert conn.timings.session is not None and conn.timings.offer is not None
    ready = conn.timings.session - conn.timings.offer
    if barrier is not None:
        await barrier.wait()
    conn.send(events.user_message(f"call {index} checking in"))
    conn.send(events.response_create())
    started = time.monotonic()
    async with asyncio.timeout(60):
        while getattr(await conn.events.get(), "type", "") != "output_audio_buffer.stopped":
            pass
    reply = time.monotonic() - started
    await conn.close()
    return ready, reply


async def run(base_url: str, together: bool) -> list[tuple[float, float]]:
    barrier = asyncio.Barrier(CALLS) if together else None
    return await asyncio.gather(*(one_call(base_url, i, barrier) for i in range(CALLS)))


def main() -> int:
    for together in (True, False):
        measure(together)
    return 0


def measure(together: bool) -> None:
    port_in, port_out = mp.Pipe(duplex=False)
    stats_in, stats_out = mp.Pipe(duplex=False)
    stop = mp.Event()
    proc = mp.Process(target=serve, args=(port_out, stats_out, stop))
    proc.start()
    base_url = port_in.recv()
    results = asyncio.run(run(base_url, together))
    stop.set()
    late = stats_in.recv()
    proc.join(30)
    ready = sorted(r for r, _ in results)
    p95 = ready[min(len(ready) - 1, round(0.95 * (len(ready) - 1)))]
    worst = max(late) if late else float("nan")
    label = "all connected, then replies" if together else "replies while others connect"
    print(f"-- {label}")
    print(
        f"{CALLS} concurrent calls: offer -> session.created "
        f"p50 {statistics.median(ready) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {ready[-1] * 1000:.0f} ms"
    )
    print(
        f"reply audio: worst frame lateness {worst:.1f} ms across {len(late)} calls "
        f"(target <= 40 ms: {'met' if worst <= 40 else 'MISSED'}); "
        f"reply round trip median {statistics.median(r for _, r in results):.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
