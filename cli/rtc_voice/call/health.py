"""Pure: is the call's network still there? Decided from what arrives, not from aiortc's states.

aiortc never reports `failed` or `disconnected` when a network goes silent: its states jump to
`closed` 24-36 s later, when ICE consent expires. So the call feeds this watch every audio
frame and every server event it receives, and asks `assess(now, ...)` a few times a second
(time is a parameter; no clock is read here). The verdict is "lost" when:

- ICE or the peer connection reports `failed` (at once);
- the server was streaming audio and it stopped for `audio_gap_s` (1 s): a server that sends
  continuously (OpenAI and the local server send 20 ms frames, silence included) never pauses
  that long on a working path, even at 60 ms jitter;
- a reply is running (the server owes us events) and nothing at all has arrived for
  `quiet_s` (2.5 s);
- otherwise, when nothing has arrived for `probe_after_s` (1.5 s: a server that pauses its
  audio between turns, or a call cut before its audio got going), the verdict is `Probe`: the
  call sends a harmless event the server must answer (an empty `session.update`), and no
  answer within `probe_wait_s` (1 s) is a lost network.

A server that pauses its audio when nobody speaks (DTX) is "streaming" only while the assistant
speaks, so silence between turns is not mistaken for a lost network: it is probed. The channel
closing is not decided here: the call sees it directly (the server hung up, or the session cap).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

AUDIO_GAP_S = 1.0
QUIET_S = 2.5
PROBE_AFTER_S = 1.5
PROBE_WAIT_S = 1.0
STEADY_FRAMES = 25  # this many frames within STEADY_WINDOW_S: the server is streaming
STEADY_WINDOW_S = 1.0
FAILED_STATES = ("failed",)


@dataclass(frozen=True)
class Lost:
    """The network is gone: `reason` is a sentence, `silent_since` when it went quiet."""

    reason: str
    silent_since: float


@dataclass(frozen=True)
class Probe:
    """Ask the server something it must answer (the caller then calls `probed(now)`)."""


class LinkWatch:
    def __init__(
        self, started: float, *, audio_gap_s: float = AUDIO_GAP_S, quiet_s: float = QUIET_S
    ) -> None:
        self.audio_gap_s = audio_gap_s
        self.quiet_s = quiet_s
        self.started = started
        self.last_audio: float | None = None
        self.last_event: float | None = None
        self._recent: deque[float] = deque(maxlen=STEADY_FRAMES)
        self.continuous = False  # audio kept flowing while the assistant was silent
        self.speaking = False  # the assistant's audio is playing (server says so)
        self._steady = False
        self.probe_sent: float | None = None
        self.probes = 0

    # --- what arrives

    def audio(self, now: float) -> None:
        """One frame of the server's audio arrived."""
        self.last_audio = now
        self._recent.append(now)
        self._steady = (
            len(self._recent) == STEADY_FRAMES and now - self._recent[0] <= STEADY_WINDOW_S
        )
        if self._steady and not self.speaking:
            self.continuous = True

    def event(self, now: float) -> None:
        """A server event arrived on the data channel."""
        self.last_event = now

    def assistant_speaking(self, speaking: bool) -> None:
        self.speaking = speaking

    def probed(self, now: float) -> None:
        """A probe went out at `now`."""
        self.probe_sent = now
        self.probes += 1

    # --- the verdict

    @property
    def heard(self) -> float:
        """When anything last arrived (the call's start before that)."""
        return max(t for t in (self.started, self.last_audio, self.last_event) if t is not None)

    def assess(
        self,
        now: float,
        *,
        ice_state: str = "completed",
        connection_state: str = "connected",
        reply_running: bool = False,
    ) -> Lost | Probe | None:
        if ice_state in FAILED_STATES or connection_state in FAILED_STATES:
            return Lost(f"the connection failed (ICE {ice_state})", self.heard)
        streaming = self._steady and (self.continuous or self.speaking)
        if streaming and self.last_audio is not None and now - self.last_audio >= self.audio_gap_s:
            return Lost(
                f"no audio from the server for {now - self.last_audio:.1f} s", self.last_audio
            )
        heard = self.heard
        if reply_running and now - heard >= self.quiet_s:
            return Lost(f"nothing from the server for {now - heard:.1f} s during a reply", heard)
        unanswered = self.probe_sent is not None and self.probe_sent >= heard
        if unanswered and self.probe_sent is not None and now - self.probe_sent >= PROBE_WAIT_S:
            return Lost(f"no answer from the server for {now - heard:.1f} s", heard)
        if not unanswered and not streaming and now - heard >= PROBE_AFTER_S:
            return Probe()
        return None
