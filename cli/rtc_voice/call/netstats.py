"""Pure: the call's network health as a person would want it: figures per second from aiortc's
`getStats()` readings (round trip, jitter, loss each way, bitrate), local audio health
(speaker underruns, playout depth), and per turn the latency a person feels: from the end of
their speech to the first reply audio played. Snapshots for the screen, `rtc_voice.stats`
events for --json, and a summary for the transcript. Time is a parameter.

Turn latency: the server says a turn ended (`speech_stopped`) after `silence_duration_ms` of
silence, so the person stopped speaking that much earlier; the clock stops at the first audible
frame of the reply handed to the speaker, plus the speaker's buffered depth when known.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from rtc_voice.rtc.stats import NetworkStats

AUDIBLE_DBFS = -50.0  # a reply frame this loud is heard (the local server's idle frames are 0s)
SLOW_TURN_MS = 1000.0  # LiveKit's console turns a turn red at 1 s


@dataclass(frozen=True)
class HealthSnapshot:
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    loss_in_pct: float | None = None  # of what we receive, over the last interval
    loss_out_pct: float | None = None  # of what we send, as the server reports
    kbps_in: float | None = None
    kbps_out: float | None = None
    underruns: int = 0
    concealed_ms: float = 0.0  # lost audio faded over instead of a gap (this call and before)
    playout_ms: float | None = None
    last_turn_ms: float | None = None
    turn_p50_ms: float | None = None
    turn_p95_ms: float | None = None
    turns: int = 0
    reconnects: int = 0
    rollovers: int = 0

    def status(self) -> str:
        """One compact status item: `rtt 12 ms · loss 0.0% · turn 640 ms`."""
        parts = []
        if self.rtt_ms is not None:
            parts.append(f"rtt {self.rtt_ms:.0f} ms")
        if self.jitter_ms is not None:
            parts.append(f"jitter {self.jitter_ms:.0f} ms")
        if self.loss_in_pct is not None:
            parts.append(f"loss {self.loss_in_pct:.1f}%")
        if self.last_turn_ms is not None:
            parts.append(f"turn {self.last_turn_ms:.0f} ms")
        if self.reconnects:
            parts.append(f"{self.reconnects} reconnect{'s' if self.reconnects > 1 else ''}")
        return " · ".join(parts) if parts else "network: measuring…"

    @property
    def slow(self) -> bool:
        return self.last_turn_ms is not None and self.last_turn_ms >= SLOW_TURN_MS

    def as_event(self) -> dict[str, Any]:
        """The `{"type": "rtc_voice.stats", ...}` line --json prints every second. Figures are
        rounded as the call's summary rounds them: milliseconds and kbit/s to 0.1, percentages
        to 0.01; counts stay whole."""
        fields = asdict(self)
        for name, value in fields.items():
            if isinstance(value, float):
                fields[name] = round(value, 2 if name.endswith("_pct") else 1)
        return {"type": "rtc_voice.stats", **fields}


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


class NetworkHealth:
    def __init__(self, silence_duration_ms: float = 500.0) -> None:
        self.silence_s = silence_duration_ms / 1000
        self._previous: NetworkStats | None = None
        self._current = HealthSnapshot()
        self.turn_ms: list[float] = []
        self._speech_ended: float | None = None
        self.packets_received = 0
        self.packets_lost = 0
        self._base_received = 0  # totals of the calls before this one (each starts at 0)
        self._base_lost = 0
        self.concealed = 0  # frames, all calls
        self._base_concealed = 0
        self._history: deque[HealthSnapshot] = deque(maxlen=3600)

    # --- what happens

    def reading(self, stats: NetworkStats) -> HealthSnapshot:
        """A getStats() reading; figures are over the interval since the previous one."""
        prev = self._previous
        loss_in = kbps_in = kbps_out = None
        if prev is not None and stats.packets_received >= prev.packets_received:
            got = stats.packets_received - prev.packets_received
            lost = max(0, stats.packets_lost - prev.packets_lost)
            loss_in = 100 * lost / (got + lost) if got + lost else 0.0
            seconds = stats.at - prev.at
            if seconds > 0:
                kbps_in = (stats.bytes_received - prev.bytes_received) * 8 / seconds / 1000
                kbps_out = (stats.bytes_sent - prev.bytes_sent) * 8 / seconds / 1000
        loss_out = None
        if stats.remote_packets_lost is not None and stats.packets_sent:
            loss_out = 100 * stats.remote_packets_lost / stats.packets_sent
        self._previous = stats
        self.packets_received = self._base_received + stats.packets_received
        self.packets_lost = self._base_lost + stats.packets_lost
        self.concealed = self._base_concealed + stats.concealed_frames
        self._current = HealthSnapshot(
            rtt_ms=stats.round_trip_ms,
            jitter_ms=stats.jitter_ms,
            loss_in_pct=loss_in,
            loss_out_pct=loss_out,
            kbps_in=kbps_in,
            kbps_out=kbps_out,
        )
        return self._current

    def new_call(self) -> None:
        """The next call's counters start from zero; keep the totals."""
        self._base_received = self.packets_received
        self._base_lost = self.packets_lost
        self._base_concealed = self.concealed
        self._previous = None

    def speech_stopped(self, at: float) -> None:
        """The server ended the user's turn at `at`: they stopped speaking `silence` before."""
        self._speech_ended = at - self.silence_s

    @property
    def awaiting_reply(self) -> bool:
        return self._speech_ended is not None

    def reply_audio(
        self, at: float, level_dbfs: float, playout_ms: float | None = None
    ) -> float | None:
        """A frame of reply audio went to the speaker at `at`; returns the turn's latency in
        ms when this is the first audible one."""
        if self._speech_ended is None or level_dbfs < AUDIBLE_DBFS:
            return None
        heard = at + (playout_ms or 0.0) / 1000
        latency = max(0.0, (heard - self._speech_ended) * 1000)
        self.turn_ms.append(latency)
        self._speech_ended = None
        return latency

    def turn_cancelled(self) -> None:
        """The user spoke again (or typed) before a reply: no latency for that turn."""
        self._speech_ended = None

    # --- what is shown

    def snapshot(
        self,
        *,
        underruns: int = 0,
        playout_ms: float | None = None,
        reconnects: int = 0,
        rollovers: int = 0,
    ) -> HealthSnapshot:
        c = self._current
        return HealthSnapshot(
            rtt_ms=c.rtt_ms,
            jitter_ms=c.jitter_ms,
            loss_in_pct=c.loss_in_pct,
            loss_out_pct=c.loss_out_pct,
            kbps_in=c.kbps_in,
            kbps_out=c.kbps_out,
            underruns=underruns,
            concealed_ms=self.concealed * 20.0,
            playout_ms=playout_ms,
            last_turn_ms=self.turn_ms[-1] if self.turn_ms else None,
            turn_p50_ms=percentile(self.turn_ms, 50),
            turn_p95_ms=percentile(self.turn_ms, 95),
            turns=len(self.turn_ms),
            reconnects=reconnects,
            rollovers=rollovers,
        )

    def summary(self, **local: Any) -> dict[str, Any]:
        """For the end of the transcript: turn latency p50/p95, loss over the call, reconnects."""
        snap = self.snapshot(**local)
        total = self.packets_received + self.packets_lost
        return {
            "type": "network",
            "turns": snap.turns,
            "turn_latency_p50_ms": _round(snap.turn_p50_ms),
            "turn_latency_p95_ms": _round(snap.turn_p95_ms),
            "packets_received": self.packets_received,
            "packets_lost": self.packets_lost,
            "loss_pct": round(100 * self.packets_lost / total, 2) if total else None,
            "underruns": snap.underruns,
            "concealed_ms": snap.concealed_ms,
            "reconnects": snap.reconnects,
            "rollovers": snap.rollovers,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
