"""aiortc's `getStats()` as one plain record per reading (what the status line and logs show)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPUS_CLOCK_HZ = 48000  # RTP timestamp units of the audio stream


@dataclass(frozen=True)
class NetworkStats:
    at: float  # monotonic seconds when read
    round_trip_ms: float | None  # from the server's receiver reports
    jitter_ms: float | None  # of what we receive
    packets_received: int
    packets_lost: int  # of what we receive
    packets_sent: int
    remote_packets_lost: int | None  # of what we send, as the server reports
    bytes_sent: int
    bytes_received: int


async def read_stats(pc: Any, now: float) -> NetworkStats:
    """One reading of `pc` (an RTCPeerConnection); missing figures are None or 0."""
    report = await pc.getStats()
    rtt = jitter = remote_lost = None
    received = lost = sent = bytes_sent = bytes_received = 0
    for stats in report.values():
        kind = getattr(stats, "type", "")
        if kind == "inbound-rtp":
            received += int(stats.packetsReceived or 0)
            lost += int(stats.packetsLost or 0)
            if stats.jitter is not None:
                jitter = float(stats.jitter) * 1000 / OPUS_CLOCK_HZ
        elif kind == "remote-inbound-rtp":
            if stats.roundTripTime is not None:
                rtt = float(stats.roundTripTime) * 1000
            remote_lost = int(stats.packetsLost or 0)
        elif kind == "outbound-rtp":
            sent += int(stats.packetsSent or 0)
        elif kind == "transport":
            bytes_sent += int(stats.bytesSent or 0)
            bytes_received += int(stats.bytesReceived or 0)
    return NetworkStats(
        at=now,
        round_trip_ms=rtt,
        jitter_ms=jitter,
        packets_received=received,
        packets_lost=lost,
        packets_sent=sent,
        remote_packets_lost=remote_lost,
        bytes_sent=bytes_sent,
        bytes_received=bytes_received,
    )
